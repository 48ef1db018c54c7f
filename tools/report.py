"""Writing a batch's outputs: results.jsonl, problems.json, errors.jsonl, run.json and reports."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from tools.schema import BatchResult, TrackedChange

TEMPLATES = Path(__file__).resolve().parent / "templates"
LEVELS = ("high", "medium", "low")
LEVEL_ZH = {"high": "高", "medium": "中", "low": "低"}
# "Since last time": the statuses worth a line, in the order the report lists them.
SINCE = (
    ("new", "新出现", "New"),
    ("rising", "上升", "Rising"),
    ("regressed", "再次出现", "Back again"),
    ("falling", "回落", "Falling"),
)
STATUS_ZH = {
    "new": "新出现",
    "rising": "上升",
    "steady": "平稳",
    "falling": "回落",
    "dormant": "沉寂",
    "regressed": "再次出现",
}
ALERT_ZH = {"warning": "预警", "alarm": "告警"}
VERDICT_ZH = {
    "pending": "待观察",
    "improving": "改善中",
    "effective": "有效",
    "not_effective": "无效",
    "regressed": "反弹",
}


def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html", "j2"], default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = lambda v: f"{100 * float(v):.1f}%"
    env.filters["num"] = lambda v: f"{int(v)}" if float(v).is_integer() else f"{float(v):g}"
    env.filters["pval"] = lambda v: f"{float(v):.3f}" if float(v) >= 1e-3 else f"{float(v):.1e}"
    return env


def since_last_time(changes: list[TrackedChange]) -> list[dict[str, Any]]:
    """The tracked changes grouped by status (new, rising, back again, falling), empty groups left out."""
    groups = []
    for status, zh, en in SINCE:
        items = [c for c in changes if c.status == status]
        if items:
            groups.append({"status": status, "zh": zh, "en": en, "items": items})
    return groups


def report_context(result: BatchResult, taxonomy_dims: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """The figures both report formats show."""
    negatives = [r for r in result.results if r.root_cause.is_negative_voice]
    dims = Counter(r.root_cause.dimension for r in negatives if r.root_cause.dimension)
    labels = Counter(r.root_cause.l2 for r in negatives if r.root_cause.l2)
    depts = Counter(r.attribution.department for r in negatives)
    grades = Counter(r.root_cause.grade for r in negatives)
    priorities = Counter(p.priority for p in result.problems)
    matrix = {
        s: {i: [p for p in result.problems if p.severity_level == s and p.impact.level == i] for i in LEVELS}
        for s in LEVELS
    }
    dim_names = dict(taxonomy_dims or [])
    dim_rows: list[dict[str, Any]] = []
    for dim_id, name in taxonomy_dims or [(d, d) for d in sorted(dims)]:
        top = [(lab, n) for lab, n in labels.most_common() if lab.startswith(f"{dim_id}-")][:3]
        dim_rows.append({"id": dim_id, "name": name, "count": dims.get(dim_id, 0), "top": top})
    total_neg = max(len(negatives), 1)
    return {
        "r": result,
        "s": result.stats,
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "negatives": len(negatives),
        "total_neg": total_neg,
        "dims": dim_rows,
        "dim_names": dim_names,
        "max_dim": max([d["count"] for d in dim_rows] + [1]),
        "departments": depts.most_common(12),
        "grades": [(g, grades.get(g, 0)) for g in ("特急", "紧急", "重要", "一般")],
        "priorities": [(p, priorities.get(p, 0)) for p in ("P1", "P2", "P3", "P4")],
        "matrix": matrix,
        "levels": LEVELS,
        "level_zh": LEVEL_ZH,
        "spiking": [p for p in result.problems if p.spike],
        "with_proposal": [p for p in result.problems if p.proposal],
        "errors": [e for e in result.errors if e.severity == "error"],
        "warnings": [e for e in result.errors if e.severity == "warning"],
        "text_of": {r.id: r.text for r in result.results},
        "t": result.stats.tracking,
        "since": since_last_time(result.stats.tracking.changes) if result.stats.tracking else [],
        "status_zh": STATUS_ZH,
        "alert_zh": ALERT_ZH,
        "verdict_zh": VERDICT_ZH,
    }


def render(result: BatchResult, fmt: str, taxonomy_dims: list[tuple[str, str]] | None = None) -> str:
    """Render the report as ``md``, ``html`` or ``json``."""
    if fmt == "json":
        return result.model_dump_json(indent=2, exclude={"results"})
    name = {"md": "report.md.j2", "html": "report.html.j2"}.get(fmt)
    if name is None:
        raise ValueError(f"unknown report format {fmt!r}; use md, html or json")
    return _env().get_template(name).render(**report_context(result, taxonomy_dims))


def write_outputs(
    result: BatchResult, out_dir: Path, taxonomy_dims: list[tuple[str, str]] | None = None
) -> dict[str, Path]:
    """Write every output file into ``out_dir`` and return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "results": out_dir / "results.jsonl",
        "problems": out_dir / "problems.json",
        "errors": out_dir / "errors.jsonl",
        "run": out_dir / "run.json",
        "report_md": out_dir / "report.md",
        "report_html": out_dir / "report.html",
    }
    with paths["results"].open("w", encoding="utf-8") as fh:
        for r in result.results:
            fh.write(r.model_dump_json() + "\n")
    problems = [p.model_dump(mode="json") for p in result.problems]
    doc = {
        "batch_id": result.batch_id,
        "problems": problems,
        "label_spikes": [s.model_dump(mode="json") for s in result.label_spikes],
    }
    paths["problems"].write_text(json.dumps(doc, ensure_ascii=False, indent=2), encoding="utf-8")
    with paths["errors"].open("w", encoding="utf-8") as fh:
        for e in result.errors:
            fh.write(e.model_dump_json() + "\n")
    paths["run"].write_text(result.stats.model_dump_json(indent=2), encoding="utf-8")
    paths["report_md"].write_text(render(result, "md", taxonomy_dims), encoding="utf-8")
    paths["report_html"].write_text(render(result, "html", taxonomy_dims), encoding="utf-8")
    return paths
