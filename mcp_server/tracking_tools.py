"""The MCP tracking tools: problems followed across periods, one of them in full, early warnings.

Their results are compact views of the services' (``services.tracking``): the same ids and counts as
``GET /v1/problems`` and ``voc problems``, shaped for an assistant to read."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from loop.queries import AlertLevel, AlertView, ProblemDetail, SeriesPoint, TrackedProblem
from mcp_server.registry import READ_ONLY, Entry
from mcp_server.runtime import actor, caller, in_thread
from tools.schema import TrackStatus

Period = Annotated[str | None, Field(max_length=16, description="e.g. 2026-10.")]


class TrackedView(BaseModel):
    """A problem followed across periods under a stable id."""

    id: str
    name: str
    status: str | None = Field(description="In the latest period, or the one asked for.")
    since: str | None = Field(description="First period of that status (rising since when).")
    root_cause: str | None = Field(description="L2 label id.")
    department: str | None
    first_seen: str
    last_seen: str | None
    series: dict[str, int] = Field(description="Complaints per period, oldest first.")

    @classmethod
    def of(cls, p: TrackedProblem, period: str | None = None) -> TrackedView:
        points = [s for s in p.series if period is None or s.period <= period]
        since = None
        for s in reversed(points):
            if s.status != p.status:
                break
            since = s.period
        return cls(
            id=p.id,
            name=p.name,
            status=p.status,
            since=since,
            root_cause=p.l2,
            department=p.department,
            first_seen=p.first_seen,
            last_seen=p.last_seen,
            series={s.period: s.complaints for s in p.series},
        )


class AlertLine(BaseModel):
    """An early warning: a period's count above what the history predicts."""

    problem_id: str | None
    label: str | None
    period: str
    level: AlertLevel
    observed: int
    expected: float
    limit: float
    p_value: float
    basis: str = Field(description="rate (per exposure) or count.")

    @classmethod
    def of(cls, a: AlertView) -> AlertLine:
        return cls(**a.model_dump(include=set(cls.model_fields)))


class AlertList(BaseModel):
    """Early warnings, newest period first."""

    alerts: list[AlertLine]


class TrackedList(BaseModel):
    """Tracked problems, the biggest in the period first."""

    problems: list[TrackedView]


class TrackedDetail(BaseModel):
    """One tracked problem in full."""

    problem: TrackedView
    periods: list[str] = Field(
        description="period: complaints, customers, share, grades, priority, owner, status."
    )
    lineage: list[str] = Field(description="split_from or merged_into, the other id, period.")
    alerts: list[AlertLine]
    examples: list[str] = Field(description="Most recent complaints, masked: period id grade priority: text.")

    @classmethod
    def of(cls, d: ProblemDetail) -> TrackedDetail:
        return cls(
            problem=TrackedView.of(d),
            periods=[_period(s) for s in d.series],
            lineage=[f"{x.problem_id} {x.kind} {x.related_id} {x.period}" for x in d.lineage],
            alerts=[AlertLine.of(a) for a in d.alerts],
            examples=[f"{e.period} {e.id} {e.grade} {e.priority}: {e.text}" for e in d.examples],
        )


def _period(s: SeriesPoint) -> str:
    grades = " ".join(f"{g} {n}" for g, n in s.grade_mix.items()) or "-"
    rest = ", ".join(x or "-" for x in (grades, s.priority, s.department, s.status))
    return f"{s.period}: {s.complaints} complaints, {s.customers} customers, {s.share:.1%}, {rest}"


async def list_tracked_problems(
    ctx: Context,
    status: TrackStatus | None = None,
    department: str | None = None,
    period: Period = None,
) -> TrackedList:
    """Problems followed across batches under stable ids (TP-0001), biggest in the latest period first:
    status (new, rising, steady, falling, dormant, regressed: back after dormancy), since when,
    counts per period."""
    svc, who = await caller(ctx, "read")
    via = actor(ctx, who)
    found = await in_thread(
        lambda: svc.tracking.problems(via, status=status, department=department, period=period)
    )
    return TrackedList(problems=[TrackedView.of(p, period) for p in found.problems])


async def get_tracked_problem(
    ctx: Context, problem_id: Annotated[str, Field(max_length=32)]
) -> TrackedDetail:
    """One tracked problem in full: per period its complaints, customers, share, grade mix,
    priority, department, status; what it split from or merged into; its alerts; its five latest
    complaints (masked), newest first."""
    svc, who = await caller(ctx, "read")
    via = actor(ctx, who)
    return TrackedDetail.of(await in_thread(lambda: svc.tracking.problem(via, problem_id)))


async def list_alerts(ctx: Context, period: Period = None, level: AlertLevel | None = None) -> AlertList:
    """Early warnings, newest period first: a tracked problem (problem_id) or label whose count (a
    rate, with exposures) beat its history: observed vs expected, limit = most not alarming. alarm
    p<=0.005, warning p<=0.025."""
    svc, who = await caller(ctx, "read")
    via = actor(ctx, who)
    found = await in_thread(lambda: svc.tracking.alerts(via, period=period, level=level))
    return AlertList(alerts=[AlertLine.of(a) for a in found.alerts])


TOOLS: list[Entry] = [
    (list_tracked_problems, "Tracked problems", READ_ONLY),
    (get_tracked_problem, "A tracked problem", READ_ONLY),
    (list_alerts, "Early-warning alerts", READ_ONLY),
]
