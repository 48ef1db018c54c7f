"""Tracked problems over time for every door: read the warehouse's problems, alerts and periods, record
a period's exposure, with an audit trail."""

from __future__ import annotations

import math
from functools import cached_property

from pydantic import BaseModel, Field

from loop.periods import parse_period
from loop.queries import AlertView, PeriodInfo, PeriodOverview, ProblemDetail, TrackedProblem, TrackingReader
from loop.series import refresh
from loop.trends import TrendRules
from loop.warehouse import Warehouse
from services.actions import reverify
from services.errors import AuditUnavailable, FieldError, NotFound, Unprocessable
from tools.audit import Actor, AuditError, AuditLog
from tools.settings import Settings
from tools.sql import database

STATUSES = ("new", "rising", "steady", "falling", "dormant", "regressed")
LEVELS = ("warning", "alarm")
SHAPES = {"month": "YYYY-MM, e.g. 2026-09", "week": "YYYY-Www, e.g. 2026-W36", "day": "YYYY-MM-DD"}
MAX_EXPOSURE = 1e15


class TrackedProblems(BaseModel):
    """Tracked problems, the biggest in the latest period first."""

    problems: list[TrackedProblem]


class Alerts(BaseModel):
    """Early warnings, newest period first."""

    alerts: list[AlertView]


class Periods(BaseModel):
    """The periods the warehouse holds complaints or an exposure for, oldest first."""

    periods: list[PeriodInfo]


class ExposureIn(BaseModel):
    """What a period's complaints are measured against."""

    exposure: float = Field(
        gt=0,
        le=MAX_EXPOSURE,
        description="Customers served or interactions in the period. When every period compared has "
        "one, trends and alerts compare complaint rates instead of counts.",
    )


class TrackingService:
    """Tracked problems, their series, statuses and alerts, as the warehouse (``VOC_HOME/warehouse.db``)
    holds them after every tracked batch; and each period's exposure, which turns counts into rates.

    Reads are recorded in the audit trail before they are answered (``problems.read``, ``alerts.read``;
    ids and counts only) and refused with 503 when they cannot be, like batch reads: the examples of a
    problem are complaints. Recording an exposure rebuilds every series, status and alert at once
    (``periods.set``). The list of periods (counts and exposures only) is not recorded.
    """

    def __init__(self, settings: Settings, audit: AuditLog) -> None:
        self.settings = settings
        self.audit = audit

    @cached_property
    def warehouse(self) -> Warehouse:
        # Opened on first use: building the services must not create files a door never reads.
        return Warehouse(database(self.settings, "warehouse"))

    @property
    def reader(self) -> TrackingReader:
        return TrackingReader(self.warehouse)

    # -- checks ------------------------------------------------------------------------------

    def check_period(self, period: str | None, field: str = "period") -> str | None:
        """A period key of this warehouse's length (``VOC_PERIOD``), or 422 naming the field (never
        the value: it was typed by the caller)."""
        if period is None:
            return None
        try:
            parse_period(period, self.settings.period)
        except ValueError:
            shape = SHAPES[self.settings.period]
            raise Unprocessable(
                f"{field} is not a {self.settings.period} period key ({shape})",
                fields=[FieldError(loc=field, msg=f"expected a {self.settings.period} period key: {shape}")],
            ) from None
        return period

    @staticmethod
    def _check_choice(value: str | None, field: str, allowed: tuple[str, ...]) -> None:
        if value is not None and value not in allowed:
            raise Unprocessable(
                f"{field} must be one of {', '.join(allowed)}",
                fields=[FieldError(loc=field, msg=f"expected one of {', '.join(allowed)}")],
            )

    def _read(self, via: Actor, action: str, target: str | None, **detail: int | str) -> None:
        """No trace, no data: record a read before it is answered."""
        try:
            self.audit.record(via, action, target, **detail)
        except AuditError:
            raise AuditUnavailable(
                "the audit log cannot be written; tracking data is not served without it"
            ) from None

    # -- reads -------------------------------------------------------------------------------

    def problems(
        self,
        via: Actor,
        *,
        status: str | None = None,
        department: str | None = None,
        dimension: str | None = None,
        period: str | None = None,
    ) -> TrackedProblems:
        """Tracked problems (merged ones excluded), the biggest in the latest period first; with
        ``period``, those seen by then, with their status in that period, the biggest then first."""
        self._check_choice(status, "status", STATUSES)
        self.check_period(period)
        found = self.reader.problems(status=status, department=department, dimension=dimension, period=period)
        if period:
            found.sort(key=lambda p: (-sum(s.complaints for s in p.series if s.period == period), p.id))
        self._read(via, "problems.read", None, items=len(found))
        return TrackedProblems(problems=found)

    def problem(self, via: Actor, problem_id: str) -> ProblemDetail:
        """One tracked problem in full: series, lineage, alerts, its most recent (masked) complaints."""
        found = self.reader.problem(problem_id)
        if found is None:
            raise NotFound("no such tracked problem (ids look like TP-0001)")
        self._read(via, "problems.read", found.id, examples=len(found.examples), alerts=len(found.alerts))
        return found

    def alerts(self, via: Actor, *, period: str | None = None, level: str | None = None) -> Alerts:
        """Alerts of tracked problems and root-cause labels, newest period first."""
        self._check_choice(level, "level", LEVELS)
        self.check_period(period)
        found = self.reader.alerts(period=period, level=level)
        self._read(via, "alerts.read", None, items=len(found))
        return Alerts(alerts=found)

    def overview(self, via: Actor) -> list[PeriodOverview]:
        """Every period's volume, negative voices, P1/P2 count and dimension mix, oldest first."""
        found = self.reader.overview()
        self._read(via, "overview.read", None, items=len(found))
        return found

    def periods(self) -> Periods:
        return Periods(periods=self.reader.periods())

    # -- the one change ----------------------------------------------------------------------

    def set_exposure(self, via: Actor, period: str, exposure: float) -> PeriodInfo:
        """Record a period's exposure and rebuild every series, status and alert with it."""
        self.check_period(period)
        if not (math.isfinite(exposure) and 0 < exposure <= MAX_EXPOSURE):
            raise Unprocessable(
                "exposure must be a positive number",
                fields=[FieldError(loc="exposure", msg=f"expected a number > 0 and <= {MAX_EXPOSURE:g}")],
            )
        self.warehouse.set_exposure(period, exposure)
        refresh(self.warehouse, self.settings.period, TrendRules(dormant_after=self.settings.dormant_after))
        # The effect of every fix is measured against the exposures too: judge them again.
        reverify(self.settings, self.audit, self.warehouse, via.door)
        alerts = len(self.reader.alerts(period=period))
        self.audit.record_done(via, "periods.set", period, exposure=exposure, alerts=alerts)
        info = next(p for p in self.reader.periods() if p.period == period)
        return info
