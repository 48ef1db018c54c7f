"""Reading the warehouse: tracked problems with their series, one problem in full, alerts, periods."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, Field

from loop.warehouse import Warehouse
from tools.schema import TrackStatus
from tools.sql import Conn, Row

AlertLevel = Literal["warning", "alarm"]


class SeriesPoint(BaseModel):
    period: str
    complaints: int
    customers: int = Field(
        description="Distinct customers (a complaint without a customer id counts as one)."
    )
    share: float = Field(description="Share of all complaints kept for the period.")
    grade_mix: dict[str, int] = Field(default_factory=dict)
    priority: str | None = Field(None, description="The most frequent P1-P4 among the period's complaints.")
    department: str | None = Field(None, description="The department most of them went to.")
    status: TrackStatus | None = None


class TrackedProblem(BaseModel):
    """A problem followed across periods under a stable id."""

    id: str
    name: str
    status: TrackStatus | None = Field(None, description="Its status in the latest period.")
    l2: str | None = None
    dimension: str | None = None
    department: str | None = None
    first_seen: str
    last_seen: str | None = None
    complaints: int = 0
    series: list[SeriesPoint] = Field(default_factory=list)


class Lineage(BaseModel):
    kind: Literal["split_from", "merged_into"]
    problem_id: str
    related_id: str
    period: str
    similarity: float


class AlertView(BaseModel):
    """An early warning: a count above what the history leads one to expect."""

    id: str
    problem_id: str | None = None
    label: str | None = None
    period: str
    level: AlertLevel
    observed: int
    expected: float
    limit: float = Field(description="The largest count that would not have alarmed.")
    p_value: float
    kind: Literal["poisson_exact", "control_limit"]
    basis: Literal["rate", "count"] = "count"


class StoredExample(BaseModel):
    id: str
    source: str
    period: str
    text: str = Field(description="Masked text.")
    grade: str
    priority: str
    evidence: list[str] = Field(default_factory=list, description="Words behind its root cause.")


class ProblemDetail(TrackedProblem):
    """One tracked problem in full."""

    lineage: list[Lineage] = Field(default_factory=list)
    alerts: list[AlertView] = Field(default_factory=list)
    examples: list[StoredExample] = Field(default_factory=list, description="Its most recent complaints.")


class PeriodInfo(BaseModel):
    period: str
    complaints: int
    exposure: float | None = Field(None, description="Customers served or interactions, when recorded.")


def _series(rows: list[Row]) -> list[SeriesPoint]:
    return [
        SeriesPoint(
            period=r["period"],
            complaints=r["complaints"],
            customers=r["customers"],
            share=r["share"],
            grade_mix=json.loads(r["grade_mix"]),
            priority=r["priority"],
            department=r["department"],
            status=r["status"],
        )
        for r in rows
    ]


def _problem(conn: Conn, row: Row) -> TrackedProblem:
    series = _series(
        conn.execute(
            "SELECT * FROM series WHERE subject = 'problem' AND key = ? ORDER BY period", (row["id"],)
        ).fetchall()
    )
    seen = [p.period for p in series if p.complaints]
    latest = next((p for p in reversed(series) if p.department), None)
    return TrackedProblem(
        id=row["id"],
        name=row["name"],
        status=series[-1].status if series else None,
        l2=row["l2"],
        dimension=row["dimension"],
        department=latest.department if latest else row["department"],
        first_seen=seen[0] if seen else row["first_period"],
        last_seen=seen[-1] if seen else None,
        complaints=sum(p.complaints for p in series),
        series=series,
    )


class PeriodOverview(BaseModel):
    """One period of the warehouse at a glance."""

    period: str
    complaints: int
    negative: int = Field(description="Negative voices (complaints proper).")
    urgent: int = Field(description="Negative voices ranked P1 or P2.")
    dimensions: dict[str, int] = Field(default_factory=dict, description="Negative voices per dimension.")

    @property
    def negative_share(self) -> float:
        return self.negative / self.complaints if self.complaints else 0.0


class TrackingReader:
    """Read-only views of the warehouse for the doors."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    def problems(
        self,
        status: str | None = None,
        department: str | None = None,
        dimension: str | None = None,
        period: str | None = None,
    ) -> list[TrackedProblem]:
        """Tracked problems (merged ones excluded), biggest in the latest period first."""
        with self.warehouse.connect() as conn:
            rows = conn.execute(
                "SELECT * FROM problems WHERE merged_into IS NULL AND n > 0 ORDER BY seq"
            ).fetchall()
            out = [_problem(conn, r) for r in rows]
        if period:
            out = [p for p in out if any(s.period == period for s in p.series)]
            for p in out:
                p.status = next(s.status for s in p.series if s.period == period)
        if status:
            out = [p for p in out if p.status == status]
        if department:
            out = [p for p in out if department in (p.department, None)]
        if dimension:
            out = [p for p in out if p.dimension == dimension]

        def latest(p: TrackedProblem) -> int:
            return p.series[-1].complaints if p.series else 0

        return sorted(out, key=lambda p: (-latest(p), p.id))

    def problem(self, problem_id: str, examples: int = 5) -> ProblemDetail | None:
        with self.warehouse.connect() as conn:
            row = conn.execute("SELECT * FROM problems WHERE id = ?", (problem_id,)).fetchone()
            if row is None:
                return None
            base = _problem(conn, row)
            lineage = [
                Lineage(**dict(r))
                for r in conn.execute(
                    "SELECT * FROM lineage WHERE problem_id = ? OR related_id = ? ORDER BY period",
                    (problem_id, problem_id),
                )
            ]
            alerts = [
                _alert(r)
                for r in conn.execute(
                    "SELECT * FROM alerts WHERE problem_id = ? ORDER BY period", (problem_id,)
                )
            ]
            recent = [
                StoredExample(
                    id=r["id"],
                    source=r["source"],
                    period=r["period"],
                    text=r["text"],
                    grade=r["grade"],
                    priority=r["priority"],
                    evidence=json.loads(r["evidence"]),
                )
                for r in conn.execute(
                    "SELECT id, source, period, text, grade, priority, evidence FROM complaints "
                    "WHERE tracked_id = ? "
                    "ORDER BY period DESC, received_at DESC, id LIMIT ?",
                    (problem_id, examples),
                )
            ]
        return ProblemDetail(**base.model_dump(), lineage=lineage, alerts=alerts, examples=recent)

    def alerts(self, period: str | None = None, level: str | None = None) -> list[AlertView]:
        """Alerts, newest period first, optionally of one period or one level."""
        with self.warehouse.connect() as conn:
            query, args = "SELECT * FROM alerts", []
            clauses = []
            if period:
                clauses.append("period = ?")
                args.append(period)
            if level:
                clauses.append("level = ?")
                args.append(level)
            if clauses:
                query += " WHERE " + " AND ".join(clauses)
            rows = conn.execute(query + " ORDER BY period DESC, level, observed DESC, id", args).fetchall()
        return [_alert(r) for r in rows]

    def periods(self) -> list[PeriodInfo]:
        with self.warehouse.connect() as conn:
            counts = dict(conn.execute("SELECT period, COUNT(*) FROM complaints GROUP BY period").fetchall())
            exposures = self.warehouse.exposures(conn)
        keys = sorted(set(counts) | set(exposures))
        return [PeriodInfo(period=k, complaints=counts.get(k, 0), exposure=exposures.get(k)) for k in keys]

    def overview(self) -> list[PeriodOverview]:
        """Every period's volume, negative voices, P1/P2 count and dimension mix, oldest first."""
        with self.warehouse.connect() as conn:
            rows = conn.execute(
                "SELECT period, COUNT(*), SUM(negative), "
                "SUM(CASE WHEN negative = 1 AND priority IN ('P1', 'P2') THEN 1 ELSE 0 END) "
                "FROM complaints GROUP BY period ORDER BY period"
            ).fetchall()
            mix: dict[str, dict[str, int]] = {}
            for period, dim, n in conn.execute(
                "SELECT period, dimension, COUNT(*) FROM complaints WHERE negative = 1 "
                "GROUP BY period, dimension"
            ):
                mix.setdefault(period, {})[dim or "-"] = n
        return [
            PeriodOverview(
                period=r[0],
                complaints=r[1],
                negative=r[2] or 0,
                urgent=r[3] or 0,
                dimensions=mix.get(r[0], {}),
            )
            for r in rows
        ]

    def stats(self) -> dict[str, Any]:
        with self.warehouse.connect() as conn:
            return self.warehouse.counts(conn)


def _alert(r: Row) -> AlertView:
    return AlertView(
        id=r["id"],
        problem_id=r["problem_id"],
        label=r["label"],
        period=r["period"],
        level=r["level"],
        observed=r["observed"],
        expected=r["expected"],
        limit=r["limit"],
        p_value=r["p_value"],
        kind=r["kind"],
        basis=r["basis"],
    )
