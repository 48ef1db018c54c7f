"""Effect verification: a tracked problem's complaints in equal windows before and after a fix, the rate
ratio with an exact conditional 95% interval, the same ratio for comparable problems without an action,
and a verdict in words a product owner reads."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Literal

from pydantic import BaseModel, Field
from statsmodels.stats.proportion import proportion_confint
from statsmodels.stats.rates import test_poisson_2indep

from loop.periods import PeriodLength, period_of, period_range, previous_period
from tools.sql import Conn

Verdict = Literal["pending", "improving", "effective", "not_effective", "regressed"]
Basis = Literal["exposure", "volume", "count"]
VERDICTS: tuple[Verdict, ...] = ("pending", "improving", "effective", "not_effective", "regressed")
BASIS_WORDS = {
    "exposure": "per the exposure recorded for each period",
    "volume": "as a share of each period's total complaint volume (no exposure recorded for every period)",
    "count": "as raw counts (some period has neither an exposure nor any complaint)",
}


@dataclass(frozen=True)
class EffectRules:
    """How windows are cut and when a verdict is allowed (Settings: VOC_ACTION_*)."""

    period: PeriodLength = "month"
    transition_gap: int = 1  # periods left out from the fix's own one on
    min_periods: int = 2  # periods after the fix before a fix can be called effective or not
    max_window: int = 6  # the windows are at most this long


class Window(BaseModel):
    """The periods compared on one side of the fix."""

    periods: list[str] = Field(description="Period keys, oldest first.")
    complaints: int = Field(description="The problem's complaints in them.")
    exposure: float | None = Field(
        None,
        description="What they are measured against: the exposures or the total volume; null for counts.",
    )


class Effect(BaseModel):
    """Whether a fix worked: the problem's rate after the fix against before, with its interval."""

    verdict: Verdict = Field(
        description="pending (too early), improving (lower, not yet beyond chance or the target), effective "
        "(lower beyond chance and the target met), not_effective (enough periods, no drop that counts), "
        "regressed (back after a verified fix)."
    )
    basis: Basis = Field(description="exposure, volume (share of all complaints) or count.")
    fixed_on: date
    transition: list[str] = Field(description="Periods left out between the windows.")
    before: Window
    after: Window
    rate_ratio: float | None = Field(None, description="The rate after divided by the rate before.")
    ci_low: float | None = Field(None, description="95% interval, exact conditional (binomial) method.")
    ci_high: float | None = None
    p_value: float | None = Field(None, description="Exact conditional Poisson test of ratio = 1, two-sided.")
    target_ratio: float = Field(description="The ratio the proposal's target asks for at most.")
    target_met: bool | None = None
    control_ratio: float | None = Field(
        None, description="The same ratio over comparable problems without an action."
    )
    control_problems: list[str] = Field(default_factory=list)
    relative_ratio: float | None = Field(None, description="rate_ratio / control_ratio.")
    regressed_in: str | None = Field(None, description="The period it came back in, for regressed.")
    summary: str = Field(description="The numbers and the verdict in words.")


def cut_windows(
    fixed_on: date, first: str, last: str, rules: EffectRules
) -> tuple[list[str], list[str], list[str]]:
    """(before, transition, after): equal windows around the fix within the warehouse's periods
    ``first``..``last``. The before window ends with the period before the fix's; the transition is
    ``transition_gap`` periods from the fix's own; both windows are as long as the shorter side allows."""
    fix_period = period_of(fixed_on, rules.period)
    everything = period_range(first, last, rules.period)
    earlier = [p for p in everything if p < fix_period]
    later = [p for p in everything if p >= fix_period]
    transition_len = rules.transition_gap
    if fix_period < first:
        # The fix predates the warehouse: its transition may reach into it.
        transition_len -= len(period_range(fix_period, previous_period(first, rules.period), rules.period))
        transition_len = max(transition_len, 0)
    transition, after = later[:transition_len], later[transition_len:]
    width = min(len(earlier), len(after), rules.max_window)
    return (earlier[len(earlier) - width :] if width else []), transition, after[:width]


def _round(x: float | None, digits: int = 3) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return round(float(x), digits)


def rate_ratio(
    after: int, after_exposure: float, before: int, before_exposure: float
) -> tuple[float | None, float | None, float | None, float | None]:
    """(ratio, ci_low, ci_high, p_value) of the after rate to the before rate.

    Conditional on the total, the after count is binomial; its exact (Clopper-Pearson) interval maps
    one to one onto the rate ratio, and the exact conditional test gives the p-value
    (statsmodels). Undefined (all None) when there were no complaints before."""
    if before <= 0:
        return None, None, None, None
    ratio = (after / after_exposure) / (before / before_exposure)
    n = after + before
    low_p, high_p = proportion_confint(after, n, alpha=0.05, method="beta")
    scale = before_exposure / after_exposure

    def to_ratio(p: float) -> float:
        return math.inf if p >= 1 else p / (1 - p) * scale

    test = test_poisson_2indep(after, after_exposure, before, before_exposure, method="exact-cond")
    return ratio, to_ratio(float(low_p)), to_ratio(float(high_p)), float(test.pvalue)


def _denominators(conn: Conn, window: list[str]) -> tuple[Basis, dict[str, float]]:
    """What each period's complaints are measured against: the exposure when every period has one,
    else the period's total complaint volume when none is empty, else nothing (counts)."""
    rows = conn.execute("SELECT period, COUNT(*) FROM complaints GROUP BY period")
    totals = {r[0]: float(r[1]) for r in rows}
    exposures = {r[0]: float(r[1]) for r in conn.execute("SELECT period, exposure FROM periods")}
    if window and all(p in exposures for p in window):
        return "exposure", exposures
    if window and all(totals.get(p, 0) > 0 for p in window):
        return "volume", totals
    return "count", {p: 1.0 for p in window}


def came_back(
    conn: Conn, problem_id: str, effect: Effect, through: str, rules: EffectRules
) -> tuple[str, int, float, float] | None:
    """After a verified fix: do the latest ``min_periods`` periods (all after ``through``) hold
    significantly more than the after window did (one-sided exact conditional Poisson test, p <= 0.025)?
    (last period, complaints, expected at the after window's rate, p-value), or None."""
    last = conn.execute("SELECT MAX(period) FROM complaints").fetchone()[0]
    if last is None or not effect.after.periods:
        return None
    recent = [p for p in period_range(effect.after.periods[0], last, rules.period) if p > through]
    recent = recent[-rules.min_periods :]
    if len(recent) < rules.min_periods:
        return None
    basis, denominators = _denominators(conn, effect.after.periods + recent)
    own = _counts(conn, [problem_id])
    c_recent = sum(own.get(p, 0) for p in recent)
    e_recent = sum(denominators.get(p, 0.0) for p in recent)
    c_after = sum(own.get(p, 0) for p in effect.after.periods)
    e_after = sum(denominators.get(p, 0.0) for p in effect.after.periods)
    if c_recent == 0:
        return None
    test = test_poisson_2indep(
        c_recent, e_recent, c_after, e_after, method="exact-cond", alternative="larger"
    )
    expected = c_after / e_after * e_recent if e_after else 0.0
    if float(test.pvalue) <= 0.025:
        return recent[-1], c_recent, round(expected, 2), float(test.pvalue)
    return None


def _counts(conn: Conn, problems: list[str]) -> dict[str, int]:
    if not problems:
        return {}
    marks = ",".join("?" * len(problems))
    rows = conn.execute(
        f"SELECT period, COUNT(*) FROM complaints WHERE tracked_id IN ({marks}) GROUP BY period", problems
    ).fetchall()
    return {r[0]: int(r[1]) for r in rows}


def controls(conn: Conn, problem_id: str) -> list[str]:
    """Comparable problems without an action: same department or same dimension, not merged away, never
    given an action that is still in force (a cancelled one does not count)."""
    row = conn.execute("SELECT department, dimension FROM problems WHERE id = ?", (problem_id,)).fetchone()
    if row is None:
        return []
    rows = conn.execute(
        "SELECT id FROM problems WHERE merged_into IS NULL AND id != ? AND n > 0 "
        "AND ((department IS NOT NULL AND department = ?) OR (dimension IS NOT NULL AND dimension = ?)) "
        "AND id NOT IN (SELECT problem_id FROM actions WHERE status != 'cancelled') ORDER BY seq",
        (problem_id, row["department"], row["dimension"]),
    ).fetchall()
    return [r[0] for r in rows]


def measure(
    conn: Conn,
    problem_id: str,
    fixed_on: date,
    target_ratio: float,
    rules: EffectRules,
) -> Effect:
    """The effect of a fix made on ``fixed_on`` on ``problem_id``, from what the warehouse holds now."""
    bounds = conn.execute("SELECT MIN(period), MAX(period) FROM complaints").fetchone()
    first, last = bounds[0], bounds[1]
    before: list[str] = []
    transition: list[str] = []
    after: list[str] = []
    if first is not None:
        before, transition, after = cut_windows(fixed_on, first, last, rules)
    totals = {
        r[0]: int(r[1]) for r in conn.execute("SELECT period, COUNT(*) FROM complaints GROUP BY period")
    }
    exposures = {r[0]: float(r[1]) for r in conn.execute("SELECT period, exposure FROM periods")}
    window = before + after
    basis: Basis
    if window and all(p in exposures for p in window):
        basis, denominators = "exposure", exposures
    elif window and all(totals.get(p, 0) > 0 for p in window):
        basis, denominators = "volume", {p: float(n) for p, n in totals.items()}
    else:
        basis, denominators = "count", {p: 1.0 for p in window}
    own = _counts(conn, [problem_id])
    peers = controls(conn, problem_id)
    ctrl = _counts(conn, peers)

    def side(periods: list[str], counts: dict[str, int]) -> tuple[int, float]:
        return sum(counts.get(p, 0) for p in periods), sum(denominators.get(p, 0.0) for p in periods)

    c_before, e_before = side(before, own)
    c_after, e_after = side(after, own)
    ratio = low = high = p_value = None
    control_ratio = None
    if after:
        ratio, low, high, p_value = rate_ratio(c_after, e_after, c_before, e_before)
        k_before, _ = side(before, ctrl)
        k_after, _ = side(after, ctrl)
        if peers and k_before > 0:
            control_ratio = (k_after / e_after) / (k_before / e_before)
    target_met = None if ratio is None else ratio <= target_ratio
    verdict: Verdict
    enough = len(after) >= rules.min_periods
    if ratio is None or low is None or high is None:
        verdict = "pending"
    elif enough and high < 1 and target_met:
        verdict = "effective"
    elif enough and (ratio >= 1 or low > target_ratio):
        verdict = "not_effective"
    elif ratio < 1:
        verdict = "improving"
    else:
        verdict = "pending"
    effect = Effect(
        verdict=verdict,
        basis=basis,
        fixed_on=fixed_on,
        transition=transition,
        before=Window(
            periods=before, complaints=c_before, exposure=None if basis == "count" else _round(e_before, 2)
        ),
        after=Window(
            periods=after, complaints=c_after, exposure=None if basis == "count" else _round(e_after, 2)
        ),
        rate_ratio=_round(ratio),
        ci_low=_round(low),
        ci_high=_round(high) if high is not None and math.isfinite(high) else None,
        p_value=None if p_value is None else float(f"{p_value:.3g}"),
        target_ratio=round(target_ratio, 3),
        target_met=target_met,
        control_ratio=_round(control_ratio),
        control_problems=peers,
        relative_ratio=_round(ratio / control_ratio) if ratio is not None and control_ratio else None,
        summary="",
    )
    effect.summary = describe(effect, rules)
    return effect


def _span(periods: list[str]) -> str:
    if not periods:
        return "no period"
    return periods[0] if len(periods) == 1 else f"{periods[0]}…{periods[-1]}"


def describe(e: Effect, rules: EffectRules) -> str:
    """The effect in words: windows, counts, basis, ratio and interval, control, verdict."""
    unit = rules.period
    parts = [f"Fixed on {e.fixed_on.isoformat()}."]
    if e.transition:
        parts.append(f"{_span(e.transition)} left out as the transition.")
    if not e.after.periods:
        parts.append(
            f"The warehouse holds no {unit} before the fix and after its transition to compare yet: "
            "too early to tell."
        )
        return " ".join(parts)
    n = len(e.after.periods)
    parts.append(
        f"Before: {e.before.complaints} complaints in {_span(e.before.periods)}; after: {e.after.complaints} "
        f"in {_span(e.after.periods)} ({n} {unit}{'s' if n != 1 else ''} each side), compared "
        f"{BASIS_WORDS[e.basis]}."
    )
    if e.rate_ratio is None:
        parts.append("There were no complaints before the fix, so there is nothing to compare.")
    else:
        high = "∞" if e.ci_high is None else f"{e.ci_high:.2f}"
        parts.append(
            f"The rate after is {e.rate_ratio:.2f} times the rate before (95% interval "
            f"{(e.ci_low or 0):.2f}–{high}); the target asks for at most {e.target_ratio:.2f}"
            f"{' and is met' if e.target_met else ', not met'}."
        )
    if e.control_ratio is not None:
        parts.append(
            f"Comparable problems without an action ({len(e.control_problems)}, same department or "
            f"dimension) moved by {e.control_ratio:.2f}"
            + (f"; relative to them, {e.relative_ratio:.2f}." if e.relative_ratio is not None else ".")
        )
    else:
        parts.append("No comparable problem without an action to compare with.")
    words = {
        "pending": f"too early to tell (at least {rules.min_periods} {unit}s after the fix are needed)",
        "improving": "improving: lower, but not yet beyond chance, long enough or down to the target",
        "effective": "effective: the drop is beyond chance and the target is met",
        "not_effective": "not effective: enough periods after the fix and no drop, or none that can reach "
        "the target",
        "regressed": f"regressed: the problem came back in {e.regressed_in}",
    }
    parts.append(f"Verdict: {words[e.verdict]}.")
    return " ".join(parts)
