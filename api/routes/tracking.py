"""``/v1/problems``, ``/v1/alerts``, ``/v1/periods``: problems tracked across periods, early warnings and
each period's exposure."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query

from api.dependencies import Reader, TrackingDep, Writer
from api.errors import responses
from loop.queries import AlertLevel, PeriodInfo, ProblemDetail
from services.security import actor_of
from services.tracking import Alerts, ExposureIn, Periods, TrackedProblems
from tools.schema import TrackStatus

router = APIRouter(prefix="/v1", tags=["tracking"])

READ = responses(401, 403, 422, 429, 503)
PERIOD = "A period key of VOC_PERIOD's length: 2026-09 (month), 2026-W36 (week) or 2026-09-03 (day)."
PeriodQuery = Annotated[str | None, Query(min_length=1, max_length=16, description=PERIOD)]
ProblemId = Annotated[
    str, Path(min_length=1, max_length=32, description="A tracked problem id, e.g. TP-0012.")
]
PeriodPath = Annotated[str, Path(min_length=1, max_length=16, description=PERIOD)]


@router.get(
    "/problems",
    response_model=TrackedProblems,
    responses=READ,
    summary="Problems tracked across periods, the biggest in the latest period first",
)
def list_problems(
    who: Reader,
    tracking: TrackingDep,
    status: Annotated[
        TrackStatus | None,
        Query(
            description="Only problems with this status in the latest period (or in `period`): new, "
            "rising, steady, falling, dormant (no complaints for VOC_DORMANT_AFTER periods), "
            "regressed (back after being dormant)."
        ),
    ] = None,
    department: Annotated[
        str | None, Query(min_length=1, max_length=100, description="Only this department, e.g. 网络金融部.")
    ] = None,
    dimension: Annotated[
        str | None, Query(min_length=1, max_length=8, description="Only this root-cause dimension, e.g. 机.")
    ] = None,
    period: PeriodQuery = None,
) -> TrackedProblems:
    """A tracked problem is one thing customers keep complaining about, followed period after period
    under a stable id (TP-0001, ...); every tracked batch adds to them. Each carries its series per
    period (complaints, distinct customers, share, grade mix, priority, department, status). With
    `period`, the problems seen by then, with their status in that period. Recorded in the audit
    trail (problems.read)."""
    return tracking.problems(
        actor_of(who), status=status, department=department, dimension=dimension, period=period
    )


@router.get(
    "/problems/{problem_id}",
    response_model=ProblemDetail,
    responses=responses(401, 403, 404, 422, 429, 503),
    summary="One tracked problem: series, lineage, alerts, recent complaints",
)
def get_problem(problem_id: ProblemId, who: Reader, tracking: TrackingDep) -> ProblemDetail:
    """Its series, the problem it split from or merged into, its alerts and its five most recent
    complaints (masked). Recorded in the audit trail (problems.read)."""
    return tracking.problem(actor_of(who), problem_id)


@router.get("/alerts", response_model=Alerts, responses=READ, summary="Early warnings, newest period first")
def list_alerts(
    who: Reader,
    tracking: TrackingDep,
    period: PeriodQuery = None,
    level: Annotated[
        AlertLevel | None, Query(description="warning (one-sided p <= 0.025) or alarm (p <= 0.005).")
    ] = None,
) -> Alerts:
    """Tracked problems (`problem_id`) and root-cause labels (`label`) whose count in a period (a rate
    once every period compared has an exposure) is above what their history predicts: `observed`
    against `expected`, `limit` the largest count that would not have alarmed. Recorded in the audit
    trail (alerts.read)."""
    return tracking.alerts(actor_of(who), period=period, level=level)


@router.get(
    "/periods",
    response_model=Periods,
    responses=responses(401, 403, 429),
    summary="Periods with their complaint counts and exposure",
)
def list_periods(who: Reader, tracking: TrackingDep) -> Periods:
    return tracking.periods()


@router.put(
    "/periods/{period}",
    response_model=PeriodInfo,
    responses=responses(401, 403, 422, 429),
    summary="Record a period's exposure and rebuild statuses and alerts",
)
def set_exposure(
    period: PeriodPath, body: Annotated[ExposureIn, Body()], who: Writer, tracking: TrackingDep
) -> PeriodInfo:
    """Exposure is what a period's complaints are measured against (customers served or
    interactions). Once every period compared has one, statuses and alerts compare rates instead of
    counts. Every series, status and alert is rebuilt at once. Recorded in the audit trail
    (periods.set)."""
    return tracking.set_exposure(actor_of(who), period, body.exposure)
