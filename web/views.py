"""What each page shows, assembled from the shared services (the same ones ``/v1`` uses)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from loop.actions import MOVES, Action
from loop.queries import AlertView, PeriodOverview, ProblemDetail, TrackedProblem
from services.actions import PERSON_STATUSES
from services.config import Principal
from services.factory import Services
from services.jobs import Job
from services.security import actor_of
from web import charts

DIMENSIONS = ("人", "机", "物", "法", "环")
STATUSES = ("new", "rising", "steady", "falling", "dormant", "regressed")
PRIORITIES = ("P1", "P2", "P3", "P4")
SPARK_PERIODS = 12


@dataclass
class ProblemRow:
    problem: TrackedProblem
    latest: int
    previous: int
    priority: str | None
    spark: Markup

    @property
    def change(self) -> int:
        return self.latest - self.previous


def problem_row(p: TrackedProblem, periods: list[str]) -> ProblemRow:
    counts = {s.period: s.complaints for s in p.series}
    window = periods[-SPARK_PERIODS:]
    values = [float(counts.get(k, 0)) for k in window]
    latest = counts.get(periods[-1], 0) if periods else 0
    previous = counts.get(periods[-2], 0) if len(periods) > 1 else 0
    priority = next((s.priority for s in reversed(p.series) if s.priority), None)
    label = f"{p.id}: " + ", ".join(f"{k} {int(v)}" for k, v in zip(window[-6:], values[-6:], strict=True))
    return ProblemRow(p, latest, previous, priority, charts.sparkline(values, label=label))


@dataclass
class Overview:
    periods: list[PeriodOverview]
    current: PeriodOverview | None
    previous: PeriodOverview | None
    volume_chart: Markup
    share_chart: Markup
    mix_chart: Markup
    alerts: list[AlertView]
    names: dict[str, str]
    top: list[ProblemRow]


def overview(services: Services, who: Principal, months: int = 24) -> Overview:
    via = actor_of(who)
    rows = services.tracking.overview(via)[-months:]
    keys = [r.period for r in rows]
    current = rows[-1] if rows else None
    previous = rows[-2] if len(rows) > 1 else None
    alerts = services.tracking.alerts(via, period=current.period).alerts if current else []
    found = services.tracking.problems(via, period=current.period).problems if current else []
    names = {p.id: p.name for p in found}
    return Overview(
        periods=rows,
        current=current,
        previous=previous,
        volume_chart=charts.line_chart(
            keys,
            {
                "投诉量 volume": [float(r.complaints) for r in rows],
                "负面 negative": [float(r.negative) for r in rows],
                "P1/P2": [float(r.urgent) for r in rows],
            },
        ),
        share_chart=charts.line_chart(
            keys, {"负面占比 negative share": [r.negative_share for r in rows]}, percent=True, height=160
        ),
        mix_chart=charts.stacked_shares(
            keys, {d: [r.dimensions.get(d, 0) for r in rows] for d in DIMENSIONS}
        ),
        alerts=alerts,
        names=names,
        top=[r for r in (problem_row(p, keys) for p in found) if r.latest > 0][:10],
    )


@dataclass
class ProblemFilters:
    status: str | None = None
    department: str | None = None
    dimension: str | None = None
    priority: str | None = None
    period: str | None = None
    q: str | None = None

    def active(self) -> dict[str, str]:
        return {k: v for k, v in self.__dict__.items() if v}


@dataclass
class ProblemList:
    rows: list[ProblemRow]
    total: int
    filters: ProblemFilters
    departments: list[str]
    periods: list[str]


def problem_list(services: Services, who: Principal, filters: ProblemFilters) -> ProblemList:
    via = actor_of(who)
    periods = [p.period for p in services.tracking.periods().periods]
    everything = services.tracking.problems(via).problems
    departments = sorted({p.department for p in everything if p.department})
    found = services.tracking.problems(
        via,
        status=filters.status,
        department=filters.department,
        dimension=filters.dimension,
        period=filters.period,
    ).problems
    shown = periods if not filters.period else [k for k in periods if k <= filters.period]
    rows = [problem_row(p, shown) for p in found]
    if filters.priority:
        rows = [r for r in rows if r.priority == filters.priority]
    if filters.q:
        needle = filters.q.strip().lower()
        rows = [
            r
            for r in rows
            if needle
            in " ".join(
                str(x or "") for x in (r.problem.id, r.problem.name, r.problem.l2, r.problem.department)
            ).lower()
        ]
    return ProblemList(rows, len(everything), filters, departments, periods)


@dataclass
class ProblemPage:
    problem: ProblemDetail
    chart: Markup
    periods: list[str]
    actions: list[tuple[Action, Markup | None]] = field(default_factory=list)
    proposal: dict[str, Any] | None = None


def problem_page(services: Services, who: Principal, problem_id: str) -> ProblemPage:
    detail = services.tracking.problem(actor_of(who), problem_id)
    periods = [p.period for p in services.tracking.periods().periods]
    first = detail.first_seen
    keys = [k for k in periods if k >= first] or periods
    counts = {s.period: s.complaints for s in detail.series}
    markers: dict[str, str] = {}
    for a in detail.alerts:
        if markers.get(a.period) != "alarm":
            markers[a.period] = a.level
    chart = charts.line_chart(
        keys,
        {"投诉量 complaints": [float(counts.get(k, 0)) for k in keys]},
        markers=markers,
        width=1200,
        height=260,
    )
    actions, proposal = problem_actions(services, who, detail.id)
    return ProblemPage(detail, chart, keys, actions, proposal)


@dataclass
class BatchRow:
    job: Job

    @property
    def percent(self) -> int:
        if self.job.status == "done":
            return 100
        return int(100 * self.job.done / self.job.total) if self.job.total else 0

    @property
    def running(self) -> bool:
        return self.job.status in ("queued", "running")


def batches(services: Services, who: Principal) -> list[BatchRow]:
    return [BatchRow(j) for j in services.batches.recent(who)]


def progress(services: Services, who: Principal, batch_id: str) -> dict[str, Any]:
    """What the batches page polls while a batch runs (no complaint text, only figures)."""
    job = services.batches.job(batch_id, who)
    row = BatchRow(job)
    return {
        "id": job.id,
        "status": job.status,
        "stage": job.stage,
        "done": job.done,
        "total": job.total,
        "percent": row.percent,
        "running": row.running,
    }


# -- actions -------------------------------------------------------------------------------------

BOARD_ORDER = ("reopened", "open", "in_progress", "done", "not_effective", "verified", "cancelled")
STATUS_NAMES = {
    "open": "待处理 open",
    "in_progress": "整改中 in progress",
    "done": "已整改待验证 done",
    "verified": "已验证有效 verified",
    "not_effective": "整改无效 not effective",
    "cancelled": "已取消 cancelled",
    "reopened": "已重开 reopened",
}
VERDICT_NAMES = {
    "pending": "待观察 pending",
    "improving": "好转中 improving",
    "effective": "有效 effective",
    "not_effective": "无效 not effective",
    "regressed": "反弹 regressed",
}


@dataclass
class Board:
    columns: list[tuple[str, list[Action]]]
    owners: list[str]
    owner: str | None
    overdue: int
    problems: list[TrackedProblem]


def board(services: Services, who: Principal, owner: str | None) -> Board:
    via = actor_of(who)
    found = services.actions.list(via).actions
    owners = sorted({a.owner for a in found if a.owner})
    if owner:
        found = [a for a in found if a.owner == owner]
    columns = []
    for status in BOARD_ORDER:
        items = sorted((a for a in found if a.status == status), key=lambda a: (not a.overdue, a.due, a.id))
        columns.append((status, items))
    problems = services.tracking.problems(via).problems if who.allows("write") else []
    return Board(columns, owners, owner, sum(1 for a in found if a.overdue), problems)


def effect_chart(action: Action) -> Markup | None:
    """The problem's rate before and after the fix, per period on each side."""
    e = action.effect
    if e is None or not e.before.periods or not e.after.periods:
        return None

    def rate(w: Any) -> float:
        if e.basis == "count" or not w.exposure:
            return w.complaints / max(len(w.periods), 1)
        if e.basis == "volume":
            return 100 * w.complaints / w.exposure
        return 10000 * w.complaints / w.exposure

    unit = {"count": "件/期 per period", "volume": "% 占全部投诉", "exposure": "件/万 per 10k"}[e.basis]
    return charts.before_after(rate(e.before), rate(e.after), unit=unit)


@dataclass
class ActionPage:
    action: Action
    chart: Markup | None
    moves: tuple[str, ...]


def action_page(services: Services, who: Principal, action_id: str) -> ActionPage:
    found = services.actions.show(actor_of(who), action_id)
    moves = tuple(m for m in MOVES.get(found.status, ()) if m in PERSON_STATUSES)
    return ActionPage(found, effect_chart(found), moves)


def problem_actions(
    services: Services, who: Principal, problem_id: str
) -> tuple[list[tuple[Action, Markup | None]], dict[str, Any] | None]:
    found, proposal = services.actions.for_problem(actor_of(who), problem_id)
    return [(a, effect_chart(a)) for a in found], proposal
