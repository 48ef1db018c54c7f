"""Reviewers' corrections for every door: confirm or correct a complaint's L2 label, department, grade or
tracked problem, import a file of them, undo one, and say what later runs learned from them.

A correction is checked against the taxonomy and the service matrix in force and stored in the warehouse
(``loop/feedback.py``) with who and when; each change is in the audit trail (``feedback.add``,
``feedback.undo``). Later runs in the same home load them at their start (``graph/learning.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from loop import feedback as store
from loop.warehouse import Warehouse
from services.errors import Conflict, FieldError, NotFound, Unprocessable
from tools.audit import Actor, AuditLog
from tools.ingest import RawRow
from tools.learning import FIELDS
from tools.matrix import ServiceMatrix, load_matrix
from tools.pii import mask_text
from tools.schema import RowError
from tools.settings import Settings
from tools.sql import database
from tools.taxonomy import GRADES, Taxonomy, load_taxonomy

MAX_ID = 200
# Column names a correction file may use for each field (lower-cased), besides the field's own.
COLUMNS = {
    "id": ("id", "complaint_id", "编号", "工单编号", "投诉编号"),
    "source": ("source", "来源"),
    "l2": ("l2", "label", "标签", "二级标签"),
    "dimension": ("dimension", "维度"),
    "department": ("department", "department_id", "部门", "责任部门"),
    "grade": ("grade", "等级", "投诉等级"),
    "problem": ("problem", "problem_id", "tracked_id", "问题"),
    "confirm": ("confirm", "confirmed", "确认"),
}


class CorrectionIn(BaseModel):
    """A reviewer's answer for one complaint: the fields to correct, or confirm=true to accept it as is."""

    id: str = Field(min_length=1, max_length=MAX_ID, description="The complaint's id within its source.")
    source: str | None = Field(
        None, max_length=100, description="The warehouse source; needed when the id is in several."
    )
    l2: str | None = Field(None, max_length=64, description="L2 label id or name from the taxonomy.")
    dimension: str | None = Field(
        None, max_length=16, description="Optional: the dimension you expect the L2 label in (checked)."
    )
    department: str | None = Field(None, max_length=100, description="Department id or name in the matrix.")
    grade: str | None = Field(None, max_length=8, description="特急, 紧急, 重要 or 一般.")
    problem: str | None = Field(None, max_length=32, description="Tracked problem it belongs to, TP-0001.")
    confirm: bool = Field(False, description="Accept the stored label, department and grade as they are.")


class CorrectionList(BaseModel):
    """Corrections, oldest first (undone ones too)."""

    corrections: list[dict[str, Any]] = Field(
        description="Each: id, source, complaint_id, l2, department_id, grade, problem_id, confirmed, "
        "previous (the answer before), warnings, by, door, at, undone_at, undone_by."
    )


class FeedbackStats(BaseModel):
    """What was learned from the corrections in force."""

    corrections: int = Field(description="Corrections in force.")
    undone: int
    complaints: int = Field(description="Complaints with a correction in force.")
    confirmed: int = Field(description="Corrections that confirmed the answer as it was.")
    with_warnings: int = Field(description="Corrections in force that contradict the data dictionary.")
    fields: dict[str, int] = Field(
        description="Complaints taught each field (l2, department_id, grade, problem_id)."
    )
    exemplars_per_label: dict[str, int] = Field(
        description="Corrected complaints with a vector, per L2 label."
    )
    department_evidence: dict[str, int] = Field(
        description="Corrected complaints with a vector, per department."
    )
    contradictions: list[dict[str, Any]] = Field(description="id, complaint_id and warnings of each.")
    last_run: dict[str, Any] | None = Field(
        description="The last tracked run that loaded corrections: batch_id, at, loaded, self, duplicate, "
        "near_duplicate."
    )


class CorrectionOut(BaseModel):
    """What happened to one correction."""

    status: Literal["stored", "unchanged"] = Field(
        description="stored: a new correction; unchanged: already the answer in force (nothing stored)."
    )
    correction: dict[str, Any] = Field(description="The correction (the one in force when unchanged).")
    warnings: list[str] = Field(
        default_factory=list, description="Where it contradicts the data dictionary (kept anyway)."
    )


class ImportReport(BaseModel):
    """A correction file's outcome: good rows are stored even when others are refused."""

    stored: int
    unchanged: int = Field(description="Rows whose answer was already in force (a file imported again).")
    rejected: list[RowError] = Field(description="Refused rows: row, id, field and reason.")
    warnings: list[RowError] = Field(description="Stored rows that contradict the data dictionary.")
    corrections: list[str] = Field(description="Ids of the corrections stored.")


class UndoOut(BaseModel):
    """Corrections undone; the complaint is back to its earlier answer from the next run."""

    undone: list[str]
    complaint_id: str
    source: str


@dataclass
class _Checked:
    source: str
    complaint_id: str
    text_hash: str
    values: dict[str, str]
    previous: dict[str, Any]
    warnings: list[str]
    confirmed: bool


class FeedbackService:
    """Corrections in the warehouse (``VOC_HOME/warehouse.db``), checked against the data in force."""

    def __init__(self, settings: Settings, audit: AuditLog) -> None:
        self.settings = settings
        self.audit = audit

    @cached_property
    def warehouse(self) -> Warehouse:
        return Warehouse(database(self.settings, "warehouse"))

    @cached_property
    def taxonomy(self) -> Taxonomy:
        return load_taxonomy(self.settings.path("taxonomy"))

    @cached_property
    def matrix(self) -> ServiceMatrix:
        return load_matrix(self.settings.path("service_matrix"))

    # -- checks ------------------------------------------------------------------------------

    def _label(self, value: str) -> str | None:
        for lab in self.taxonomy.labels:
            if value in (lab.id, lab.name):
                return lab.id
        return None

    def _department(self, value: str) -> str | None:
        folded = value.strip().lower()
        for d in self.matrix.departments:
            if folded in (d.id.lower(), d.name.lower()):
                return d.id
        return None

    def _locate(self, conn: Any, cid: str, source: str | None) -> Any:
        if source is not None:
            row = conn.execute(
                "SELECT * FROM complaints WHERE source = ? AND id = ?", (source, cid)
            ).fetchone()
            if row is None:
                raise NotFound(
                    "no such complaint in that source of the warehouse (complaints are kept by tracked runs)",
                    fields=[FieldError(loc="id", msg="unknown complaint id in this source")],
                )
            return row
        rows = conn.execute("SELECT * FROM complaints WHERE id = ? ORDER BY source", (cid,)).fetchall()
        if not rows:
            raise NotFound(
                "no such complaint in the warehouse (complaints are kept by tracked runs: voc analyze "
                "without --no-track)",
                fields=[FieldError(loc="id", msg="unknown complaint id")],
            )
        if len(rows) > 1:
            sources = ", ".join(mask_text(r["source"]) for r in rows[:10])
            raise Unprocessable(
                f"this id is in several sources ({sources}); name one with --source (or a source field)",
                fields=[FieldError(loc="source", msg="needed: the id is in several sources")],
            )
        return rows[0]

    def _check(self, conn: Any, item: CorrectionIn) -> _Checked:
        errors: list[FieldError] = []
        values: dict[str, str] = {}
        if item.l2 is not None:
            if (lab := self._label(item.l2.strip())) is None:
                errors.append(FieldError(loc="l2", msg="unknown L2 label (see voc data export)"))
            else:
                values["l2"] = lab
        if item.department is not None:
            if (dept := self._department(item.department)) is None:
                errors.append(FieldError(loc="department", msg="unknown department in the service matrix"))
            else:
                values["department_id"] = dept
        if item.grade is not None:
            if item.grade.strip() not in GRADES:
                errors.append(FieldError(loc="grade", msg=f"expected one of {', '.join(GRADES)}"))
            else:
                values["grade"] = item.grade.strip()
        if item.dimension is not None and item.dimension.strip() not in self.taxonomy.dimension_ids:
            errors.append(FieldError(loc="dimension", msg="unknown dimension"))
        if item.problem is not None:
            pid = item.problem.strip().upper()
            found = conn.execute("SELECT id, merged_into FROM problems WHERE id = ?", (pid,)).fetchone()
            if found is None:
                errors.append(FieldError(loc="problem", msg="unknown tracked problem (see voc problems)"))
            else:
                values["problem_id"] = found["merged_into"] or found["id"]
        if not values and not item.confirm and not errors:
            errors.append(
                FieldError(loc="l2", msg="nothing to correct: give l2, department, grade, problem or confirm")
            )
        try:
            row = self._locate(conn, item.id, item.source)
        except (NotFound, Unprocessable) as exc:
            if not errors:
                raise
            errors = (exc.fields or []) + errors
        if errors:
            refused = "; ".join(e.loc for e in errors)
            raise Unprocessable(f"the correction was refused: {refused}", fields=errors)
        previous = {"l2": row["l2"], "department_id": row["department_id"], "grade": row["grade"]}
        previous["problem_id"] = row["tracked_id"]
        if item.confirm:
            for f in ("l2", "department_id", "grade"):
                if row[f] is not None:
                    values.setdefault(f, row[f])
        return _Checked(
            source=row["source"],
            complaint_id=row["id"],
            text_hash=row["text_hash"],
            values=values,
            previous=previous,
            warnings=self._contradictions(item, values, row),
            confirmed=item.confirm,
        )

    def _contradictions(self, item: CorrectionIn, values: dict[str, str], row: Any) -> list[str]:
        """Where the answer goes against the data dictionary: an L2 label outside the dimension the
        reviewer named, a department the matrix does not give the label to when some department owns
        it, or a grade below the label's default while the stored grade was more serious."""
        out = []
        l2 = values.get("l2") or row["l2"]
        label = next((lab for lab in self.taxonomy.labels if lab.id == l2), None)
        if item.dimension and label is not None and label.dimension != item.dimension.strip():
            out.append(f"l2 {label.id} is in dimension {label.dimension}, not {item.dimension.strip()}")
        dept = values.get("department_id")
        if dept and label is not None:
            owners = [d.id for d in self.matrix.departments if label.id in d.owns_labels]
            if owners and dept not in owners:
                out.append(
                    f"the service matrix gives {label.id} to {', '.join(owners)}, not {dept} "
                    "(departments' owns_labels)"
                )
        grade = values.get("grade")
        if grade and label is not None and GRADES.index(grade) > GRADES.index(label.default_grade):
            out.append(f"grade {grade} is below {label.id}'s default grade {label.default_grade}")
        return out

    # -- changes -----------------------------------------------------------------------------

    def _store(self, conn: Any, via: Actor, c: _Checked) -> CorrectionOut:
        history = store.for_complaint(conn, c.source, c.complaint_id)
        taught = store.taught_values(history)
        if c.values and all(taught.get(k) == v for k, v in c.values.items()):
            current = next(h for h in reversed(history) if h.undone_at is None)
            return CorrectionOut(status="unchanged", correction=current.as_json(), warnings=current.warnings)
        previous = {**c.previous, **{f"taught_{k}": v for k, v in taught.items()}}
        made = store.create(
            conn,
            store.NewCorrection(
                source=c.source,
                complaint_id=c.complaint_id,
                text_hash=c.text_hash,
                values=c.values,
                confirmed=c.confirmed,
                previous=previous,
                warnings=c.warnings,
            ),
            via.name,
            via.door,
        )
        return CorrectionOut(status="stored", correction=made.as_json(), warnings=made.warnings)

    def _audit(self, via: Actor, out: CorrectionOut) -> None:
        if out.status != "stored":
            return
        cor = out.correction
        self.audit.record_done(
            via,
            "feedback.add",
            cor["id"],
            fields=".".join(f for f in FIELDS if cor.get(f)) or "none",
            confirmed=bool(cor["confirmed"]),
            warnings=len(out.warnings),
        )

    def add(self, via: Actor, item: CorrectionIn) -> CorrectionOut:
        """Check and store one correction; a refused one changes nothing and names the field."""
        with self.warehouse.connect() as conn:
            out = self._store(conn, via, self._check(conn, item))
        self._audit(via, out)
        return out

    def import_rows(self, via: Actor, rows: list[RawRow]) -> ImportReport:
        """Store every good row of a correction file; refused rows are named (row, id, field, reason)."""
        report = ImportReport(stored=0, unchanged=0, rejected=[], warnings=[], corrections=[])
        done: list[CorrectionOut] = []
        with self.warehouse.connect() as conn:
            for raw in rows:
                if raw.data is None:
                    field, reason = raw.problem or ("row", "unreadable row")
                    report.rejected.append(RowError(row=raw.row, field=field, reason=reason))
                    continue
                rec = _columns(raw.data)
                cid = str(rec.get("id") or "").strip()
                if not cid:
                    report.rejected.append(RowError(row=raw.row, field="id", reason="missing complaint id"))
                    continue
                shown_id = mask_text(cid)[:MAX_ID]
                try:
                    item = CorrectionIn.model_validate({**rec, "id": cid})
                    checked = self._check(conn, item)
                except (Unprocessable, NotFound) as exc:
                    for f in exc.fields or [FieldError(loc="row", msg=exc.message)]:
                        report.rejected.append(RowError(row=raw.row, id=shown_id, field=f.loc, reason=f.msg))
                    continue
                except ValidationError as exc:  # a value too long or of the wrong type
                    errs = exc.errors()
                    where = str(errs[0]["loc"][0]) if errs and errs[0].get("loc") else "row"
                    msg = str(errs[0]["msg"]) if errs else "invalid row"
                    report.rejected.append(RowError(row=raw.row, id=shown_id, field=where, reason=msg))
                    continue
                out = self._store(conn, via, checked)
                done.append(out)
                if out.status == "stored":
                    report.stored += 1
                    report.corrections.append(out.correction["id"])
                    for w in out.warnings:
                        warned = RowError(row=raw.row, id=shown_id, field="correction", reason=w)
                        report.warnings.append(warned.model_copy(update={"severity": "warning"}))
                else:
                    report.unchanged += 1
        for out in done:
            self._audit(via, out)
        self.audit.record_done(
            via,
            "feedback.import",
            None,
            stored=report.stored,
            unchanged=report.unchanged,
            rejected=len({e.row for e in report.rejected}),
        )
        return report

    def undo(self, via: Actor, ref: str, source: str | None = None) -> UndoOut:
        """Undo a correction (COR-0001), or every correction in force for a complaint id."""
        with self.warehouse.connect() as conn:
            one = store.get(conn, ref.strip().upper()) if ref.strip().upper().startswith("COR-") else None
            if one is not None:
                if one.undone_at is not None:
                    raise Conflict(f"{one.id} was undone already")
                targets, src, cid = [one], one.source, one.complaint_id
            else:
                row = self._locate(conn, ref.strip(), source)
                src, cid = row["source"], row["id"]
                targets = [c for c in store.for_complaint(conn, src, cid) if c.undone_at is None]
                if not targets:
                    raise NotFound("this complaint has no correction in force")
            for c in targets:
                store.undo(conn, c.id, via.name)
        for c in targets:
            self.audit.record_done(via, "feedback.undo", c.id)
        return UndoOut(undone=[c.id for c in targets], complaint_id=cid, source=src)

    # -- reads -------------------------------------------------------------------------------

    def show(self, via: Actor, ref: str, source: str | None = None) -> CorrectionList:
        """A correction by id, or a complaint's corrections (undone ones too), oldest first."""
        with self.warehouse.connect() as conn:
            one = store.get(conn, ref.strip().upper()) if ref.strip().upper().startswith("COR-") else None
            if one is not None:
                found = [one]
            else:
                row = self._locate(conn, ref.strip(), source)
                found = store.for_complaint(conn, row["source"], row["id"])
        self.audit.record_done(via, "feedback.read", found[0].id if found else None, items=len(found))
        return CorrectionList(corrections=[c.as_json() for c in found])

    def stats(self, via: Actor) -> FeedbackStats:
        """What was learned: corrections by field, exemplars added per label, departments taught,
        contradictions, and what the last tracked run took from them."""
        with self.warehouse.connect() as conn:
            counts = store.counts(conn)
            learned = store.load_learned(conn, self._embedder_name(), {})
            last = store.last_run(conn)
            warned = [
                {"id": c.id, "complaint_id": c.complaint_id, "warnings": c.warnings}
                for c in store.active(conn)
                if c.warnings
            ]
        exemplars: dict[str, int] = {}
        for lab in learned.exemplars("l2")[1]:
            exemplars[lab] = exemplars.get(lab, 0) + 1
        departments: dict[str, int] = {}
        for dept in learned.exemplars("department_id")[1]:
            departments[dept] = departments.get(dept, 0) + 1
        self.audit.record_done(via, "feedback.read", None, items=counts["corrections"])
        return FeedbackStats(
            **counts,
            exemplars_per_label=dict(sorted(exemplars.items())),
            department_evidence=dict(sorted(departments.items())),
            contradictions=warned,
            last_run=last,
        )

    def _embedder_name(self) -> str:
        with self.warehouse.reading() as conn:
            row = conn.execute(
                "SELECT embedder FROM complaints GROUP BY embedder ORDER BY COUNT(*) DESC LIMIT 1"
            ).fetchone()
        return row[0] if row else self.settings.embedder


def _columns(data: dict[str, Any]) -> dict[str, Any]:
    """A file row's fields under their CorrectionIn names; blank cells are absent."""
    out: dict[str, Any] = {}
    lowered = {str(k).strip().lower(): v for k, v in data.items()}
    for name, aliases in COLUMNS.items():
        for a in aliases:
            v = lowered.get(a)
            if v is None or (isinstance(v, str) and not v.strip()):
                continue
            out[name] = v if name == "confirm" else str(v).strip()
            break
    if "confirm" in out:
        out["confirm"] = str(out["confirm"]).strip().lower() in ("1", "true", "yes", "y", "是")
    return out
