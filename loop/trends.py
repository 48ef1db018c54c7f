"""Status per period (new, rising, steady, falling, dormant, regressed) and early-warning alerts."""

# How a period is judged, and why:
# - Counts of complaints are Poisson-like, so "rising" is a one-sided test, not a ratio: 3 -> 6
#   doubles but is well within chance (p = 0.25), 5 -> 40 is not (p = 4e-8).
# - Short history (fewer than `min_history` periods since the problem was first seen or came
#   back): the exact conditional test of two Poisson rates against the previous period
#   (statsmodels' test_poisson_2indep, method "exact-cond"); it is valid for any count, even 0.
# - Longer history: a control limit. The expected rate is an EWMA of the history (the ratio of
#   the exponentially weighted counts and exposures, so recent periods weigh most and a slow
#   drift becomes the new normal instead of a permanent alarm). The limit is a quantile of a
#   negative binomial with that mean whose dispersion adds two things: the history's own
#   over-dispersion, which counts only when the Pearson chi-square of a Poisson log-linear trend
#   fitted to the history is significant (so a steady climb is not taken for noise), estimated
#   by moments since a maximum-likelihood fit on a handful of periods is unstable; and the
#   uncertainty of the EWMA itself, without which a short history alarms twice too often.
# - Levels: each period is tested in both directions, so a one-sided level of 0.025 is a
#   two-sided 5% test, and the warning limit is the 97.5% quantile; an alarm needs 0.005 (the
#   99.5% quantile), as a bank tracks hundreds of problems every period and a 2.5% false-alarm
#   rate per series would bury the few real ones. The same thresholds serve both kinds of test.
#   A p-value at or below the threshold raises the level; the alert's `limit` is the largest
#   count that does not alarm, so `observed > limit` exactly when the level is alarm.
# - Exposure (customers served, interactions) turns counts into rates when every point of the
#   comparison has one; otherwise counts are compared as they are, and the alert says which.
# - Calibration (simulated, 36 months, control-limit periods): a stationary Poisson series warns
#   on 1.9% of periods and alarms on 0.4%; an over-dispersed one (negative binomial, alpha 0.1
#   to 0.5) alarms on 2-3%, because a dozen periods underestimate its dispersion. Seasonality is
#   not modelled.

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

import numpy as np
from scipy import stats
from statsmodels.genmod.families import Poisson
from statsmodels.genmod.generalized_linear_model import GLM
from statsmodels.stats.rates import test_poisson_2indep

from loop.periods import length_of, next_period

Status = Literal["new", "rising", "steady", "falling", "dormant", "regressed"]
Level = Literal["warning", "alarm"]
Kind = Literal["poisson_exact", "control_limit"]
Basis = Literal["rate", "count"]

WARNING_P = 0.025
ALARM_P = 0.005


@dataclass(frozen=True)
class Point:
    """One period's complaint count and, if known, its exposure (customers served, interactions)."""

    period: str
    count: int
    exposure: float | None = None


@dataclass(frozen=True)
class TrendRules:
    """Thresholds of the trend tests; the defaults are explained at the top of this module."""

    dormant_after: int = 2  # consecutive zero periods before a problem is dormant
    warning_p: float = WARNING_P  # one-sided p at or below which a rise warns (or a drop is falling)
    alarm_p: float = ALARM_P  # one-sided p at or below which a rise alarms
    min_history: int = 3  # earlier periods needed before the control limit replaces the exact test
    window: int = 12  # most recent periods of history the control limit is estimated from
    ewma_lambda: float = 0.3  # weight of the latest period in the expected rate
    dispersion_p: float = 0.05  # below this the history is over-dispersed: negative binomial

    def __post_init__(self) -> None:
        if self.dormant_after < 1:
            raise ValueError(f"dormant_after must be at least 1, got {self.dormant_after}")
        if not 0 < self.alarm_p < self.warning_p < 1:
            raise ValueError(
                f"need 0 < alarm_p < warning_p < 1, got alarm_p={self.alarm_p}, warning_p={self.warning_p}"
            )
        # The dispersion test fits a level and a trend: three periods leave it a degree of freedom.
        if self.min_history < 3:
            raise ValueError(f"min_history must be at least 3, got {self.min_history}")
        # A window as long as the dormancy streak always holds a complaint, so its rate is > 0.
        if self.window < max(self.min_history, self.dormant_after):
            raise ValueError(
                f"window ({self.window}) must be at least min_history ({self.min_history}) "
                f"and dormant_after ({self.dormant_after})"
            )
        if not 0 < self.ewma_lambda <= 1:
            raise ValueError(f"ewma_lambda must be in (0, 1], got {self.ewma_lambda}")
        if not 0 < self.dispersion_p < 1:
            raise ValueError(f"dispersion_p must be in (0, 1), got {self.dispersion_p}")


@dataclass(frozen=True)
class Alert:
    """An early warning: the period's count is above what its history makes likely."""

    period: str
    level: Level
    kind: Kind  # poisson_exact: against the previous period; control_limit: against the history
    basis: Basis  # rate: counts per exposure were compared; count: raw counts
    observed: int
    expected: float  # the count expected this period (the expected rate times this exposure)
    limit: int  # the largest count that would not alarm
    p_value: float  # one-sided: the chance of a count this high if nothing changed
    dispersion: float  # the history's over-dispersion (negative-binomial alpha); 0 when Poisson-like


@dataclass(frozen=True)
class PeriodStatus:
    """A period from the first complaint on: its count, status and alert (if any)."""

    period: str
    count: int
    status: Status
    alert: Alert | None = None


@dataclass(frozen=True)
class _Test:
    kind: Kind
    basis: Basis
    expected: float
    limit: int
    p_up: float
    p_down: float
    dispersion: float = 0.0


def assess(points: Sequence[Point], rules: TrendRules = TrendRules()) -> list[PeriodStatus]:
    """The status of every period from the first complaint on, with an alert where it rose.

    `points` are contiguous periods in order, zero-filled by the caller; a gap is an error
    because a missing period would read as a jump.
    """
    _validate(points)
    out: list[PeriodStatus] = []
    start: int | None = None  # where the current run began: first seen, or back after dormancy
    zeros = 0
    dormant = False
    for i, point in enumerate(points):
        if start is None and point.count == 0:
            continue
        zeros = zeros + 1 if point.count == 0 else 0
        status: Status
        test: _Test | None
        if start is None:
            start, status = i, "new"
            test = _exact(point, points[i - 1], rules) if i > 0 else None
        elif zeros >= rules.dormant_after:
            dormant = True
            out.append(PeriodStatus(point.period, point.count, "dormant"))
            continue
        elif dormant:
            # Back after dormancy: a new run, judged against the silent period before it.
            start, status, dormant = i, "regressed", False
            test = _exact(point, points[i - 1], rules)
        else:
            if i - start < rules.min_history:
                test = _exact(point, points[i - 1], rules)
            else:
                test = _control(point, points[max(start, i - rules.window) : i], rules)
            if test.p_up <= rules.warning_p:
                status = "rising"
            elif test.p_down <= rules.warning_p:
                status = "falling"
            else:
                status = "steady"
        out.append(PeriodStatus(point.period, point.count, status, _alert(point, test, rules)))
    return out


def _validate(points: Sequence[Point]) -> None:
    for point in points:
        if isinstance(point.count, bool) or not isinstance(point.count, int) or point.count < 0:
            raise ValueError(f"count of {point.period!r} must be a whole number >= 0, got {point.count!r}")
        if point.exposure is not None and not (math.isfinite(point.exposure) and point.exposure > 0):
            raise ValueError(f"exposure of {point.period!r} must be positive, got {point.exposure!r}")
    if not points:
        return
    length = length_of(points[0].period)
    for before, after in pairwise(points):
        expected = next_period(before.period, length)
        if after.period != expected:
            raise ValueError(
                f"periods must be contiguous: {after.period!r} follows {before.period!r}, "
                f"expected {expected!r} (zero-fill the gaps)"
            )


def _alert(point: Point, test: _Test | None, rules: TrendRules) -> Alert | None:
    if test is None or test.p_up > rules.warning_p:
        return None
    level: Level = "alarm" if test.p_up <= rules.alarm_p else "warning"
    return Alert(
        period=point.period,
        level=level,
        kind=test.kind,
        basis=test.basis,
        observed=point.count,
        expected=test.expected,
        limit=test.limit,
        p_value=test.p_up,
        dispersion=test.dispersion,
    )


def _exposures(points: Sequence[Point]) -> tuple[Basis, list[float]]:
    """Rates when every point has an exposure, else counts (an exposure of 1 each)."""
    known = [point.exposure for point in points if point.exposure is not None]
    if len(known) == len(points):
        return "rate", known
    return "count", [1.0] * len(points)


def _exact_p(count: int, exposure: float, prev: int, prev_exposure: float, alternative: str) -> float:
    if count == 0 and prev == 0:
        return 1.0  # nothing either side: no evidence of change (the test itself divides 0 by 0)
    # The statistic's rate ratio divides by a zero count; the exact p-value is still right.
    with np.errstate(divide="ignore", invalid="ignore"):
        result = test_poisson_2indep(
            count, exposure, prev, prev_exposure, method="exact-cond", alternative=alternative
        )
    return float(result.pvalue)


def _exact(point: Point, prev: Point, rules: TrendRules) -> _Test:
    """The exact conditional Poisson test of this period against the previous one."""
    basis, (exposure, prev_exposure) = _exposures([point, prev])
    return _Test(
        kind="poisson_exact",
        basis=basis,
        expected=prev.count * exposure / prev_exposure,
        limit=_exact_limit(prev.count, exposure, prev_exposure, rules.alarm_p),
        p_up=_exact_p(point.count, exposure, prev.count, prev_exposure, "larger"),
        p_down=_exact_p(point.count, exposure, prev.count, prev_exposure, "smaller"),
    )


def _exact_limit(prev: int, exposure: float, prev_exposure: float, alarm_p: float) -> int:
    """The largest count whose exact test against `prev` does not alarm.

    The one-sided p-value falls as the count grows, so the bound is found by doubling and then
    bisecting on the test itself: the limit means exactly what the alarm means.
    """

    def alarms(count: int) -> bool:
        return _exact_p(count, exposure, prev, prev_exposure, "larger") <= alarm_p

    quiet, loud = 0, 1  # a count of 0 never alarms
    while not alarms(loud):
        quiet, loud = loud, loud * 2
    while loud - quiet > 1:
        middle = (quiet + loud) // 2
        quiet, loud = (quiet, middle) if alarms(middle) else (middle, loud)
    return quiet


def _control(point: Point, history: Sequence[Point], rules: TrendRules) -> _Test:
    """This period against a control limit from the history of its run."""
    basis, exposures = _exposures([*history, point])
    counts = np.array([p.count for p in history], dtype=float)
    past = np.array(exposures[:-1])
    exposure = exposures[-1]
    # EWMA of the rate as a weighted mean (no start-up bias): weights (1 - lambda)^age.
    weights = (1 - rules.ewma_lambda) ** np.arange(len(history) - 1, -1, -1)
    rate = float(weights @ counts / (weights @ past))
    expected = rate * exposure
    dispersion = _dispersion(counts, past, rules.dispersion_p)
    # The expected rate is itself an estimate from a few periods. Its relative variance, with
    # var(count_i) = mu_i + dispersion * mu_i^2, adds to the count's own dispersion, and a
    # negative binomial with the summed alpha matches the predictive mean and variance; leaving
    # it out alarms about twice as often as the level promises on a short history.
    squared, weighted = weights**2, float(weights @ past)
    uncertainty = (float(squared @ past) / rate + dispersion * float(squared @ past**2)) / weighted**2
    alpha = dispersion + uncertainty
    # scipy's nbinom(n, p) has mean n(1-p)/p: n = 1/alpha and p = 1/(1 + alpha*mu) give mean mu
    # and variance mu + alpha*mu^2. Unfrozen calls: freezing a scipy distribution is slow.
    size, prob = 1 / alpha, 1 / (1 + alpha * expected)
    return _Test(
        kind="control_limit",
        basis=basis,
        expected=expected,
        limit=int(stats.nbinom.ppf(1 - rules.alarm_p, size, prob)),
        p_up=float(stats.nbinom.sf(point.count - 1, size, prob)),  # P(X >= observed)
        p_down=float(stats.nbinom.cdf(point.count, size, prob)),  # P(X <= observed)
        dispersion=dispersion,
    )


def _dispersion(counts: np.ndarray, exposures: np.ndarray, threshold: float) -> float:
    """Negative-binomial alpha of the history, or 0 when it is consistent with a Poisson rate.

    The history is fitted with a Poisson log-linear trend first, so that a steady climb (10, 20,
    30) is not mistaken for noise that would widen the limit and hide the climb. Pearson's
    chi-square of that fit tests for extra-Poisson variation; only when it is significant is
    alpha estimated, by moments around the fitted means: var = mu + alpha * mu^2, with the
    squared residuals scaled by k / (k - 2) for the two fitted parameters (without it, alpha
    from a dozen periods is too small and over-dispersed series alarm even more often).
    """
    time = np.arange(len(counts), dtype=float)
    with warnings.catch_warnings():
        # A run fading to zero drives the slope towards -inf (convergence and separation
        # warnings), but its fitted means still approach the counts, which is all we read.
        warnings.simplefilter("ignore")
        fit = GLM(
            counts, np.column_stack([np.ones_like(time), time]), family=Poisson(), offset=np.log(exposures)
        ).fit()
    means = np.asarray(fit.mu, dtype=float)
    if not np.all(np.isfinite(means)) or np.any(means <= 0):
        return 0.0
    squares = (counts - means) ** 2
    periods = len(counts)
    if stats.chi2.sf(float((squares / means).sum()), periods - 2) >= threshold:
        return 0.0
    variance = float(squares.sum()) * periods / (periods - 2)
    return max(0.0, (variance - float(means.sum())) / float((means**2).sum()))
