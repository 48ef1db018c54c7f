// Live progress for running batches: poll this server (never another host) once a second.
(function () {
  "use strict";
  function update(row) {
    var id = row.getAttribute("data-batch");
    fetch("/batches/" + encodeURIComponent(id) + "/progress", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (p) {
        if (!p) { return; }
        row.querySelector('[data-field="status"]').textContent = p.status;
        row.querySelector('[data-field="status"]').className = "badge b-" + p.status;
        row.querySelector('[data-field="stage"]').textContent = p.stage || "";
        row.querySelector('[data-field="bar"]').value = p.percent;
        row.querySelector('[data-field="done"]').textContent = p.done;
        row.querySelector('[data-field="total"]').textContent = p.total;
        if (!p.running) {
          row.removeAttribute("data-live");
          if (p.status === "done") {
            var cell = row.querySelector('[data-field="report"]');
            cell.textContent = "";
            var a = document.createElement("a");
            a.href = "/batches/" + encodeURIComponent(id) + "/report";
            a.textContent = "查看 open";
            cell.appendChild(a);
          }
        }
      })
      .catch(function () { /* the next tick tries again */ });
  }
  function tick() {
    var rows = document.querySelectorAll('tr[data-live="1"]');
    rows.forEach(update);
    if (rows.length) { window.setTimeout(tick, 1000); }
  }
  tick();
})();
