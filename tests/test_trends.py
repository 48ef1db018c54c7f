"""Trend statuses and early-warning alerts on series a user would recognise, and period keys."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date, datetime

import pytest

# The module, not the function: pytest would collect a name starting with test_.
from statsmodels.stats import rates

from loop.periods import (
    length_of,
    next_period,
    parse_period,
    period_of,
    period_range,
    previous_period,
)
from loop.trends import ALARM_P, WARNING_P, Point, TrendRules, assess


def series(counts: list[int], exposures: list[float] | None = None) -> list[Point]:
    """Monthly points from 2026-01 on."""
    periods = ["2026-01"]
    while len(periods) < len(counts):
        periods.append(next_period(periods[-1]))
    return [
        Point(period, count, exposures[i] if exposures else None)
        for i, (period, count) in enumerate(zip(periods, counts, strict=True))
    ]


def statuses(counts: list[int], rules: TrendRules | None = None) -> list[str]:
    return [s.status for s in assess(series(counts), rules or TrendRules())]


# --- short history: the exact conditional Poisson test against the previous period ---


def test_a_doubling_on_small_counts_is_not_an_alert() -> None:
    result = assess(series([3, 6]))
    assert [(s.status, s.alert) for s in result] == [("new", None), ("steady", None)]
    # Why: given 9 complaints in the two months, 6 or more landing in the second happens by
    # chance with p = 65/256 = 0.254, ten times the warning level.
    p = rates.test_poisson_2indep(6, 1, 3, 1, method="exact-cond", alternative="larger").pvalue
    assert p == pytest.approx(65 / 256)
    assert p > WARNING_P


def test_five_to_forty_is_an_alarm() -> None:
    new, jump = assess(series([5, 40]))
    assert new.status == "new" and new.alert is None
    assert jump.status == "rising"
    alert = jump.alert
    assert alert is not None
    assert (alert.level, alert.kind, alert.basis) == ("alarm", "poisson_exact", "count")
    assert (alert.period, alert.observed, alert.expected) == ("2026-02", 40, 5.0)
    assert alert.p_value < 1e-7  # 3.9e-8
    # 18 is the most the exact test lets through after 5 before it alarms.
    assert alert.limit == 18 and alert.observed > alert.limit


def test_a_smaller_rise_warns_without_alarming() -> None:
    # 20 -> 36: p = 0.022, between the alarm (0.005) and warning (0.025) levels.
    alert = assess(series([20, 36]))[1].alert
    assert alert is not None
    assert alert.level == "warning"
    assert ALARM_P < alert.p_value <= WARNING_P
    assert alert.observed <= alert.limit


def test_a_sharp_drop_is_falling_and_raises_nothing() -> None:
    result = assess(series([40, 5]))
    assert [(s.status, s.alert) for s in result] == [("new", None), ("falling", None)]


# --- longer history: an EWMA expectation and a control limit ---


def test_a_steady_noisy_series_stays_steady() -> None:
    result = assess(series([20, 24, 18, 22, 19, 23]))
    assert [s.status for s in result] == ["new", "steady", "steady", "steady", "steady", "steady"]
    assert all(s.alert is None for s in result)


def test_a_jump_far_above_the_control_limit_after_six_steady_periods_is_an_alarm() -> None:
    last = assess(series([20, 24, 18, 22, 19, 23, 60]))[-1]
    assert last.status == "rising"
    alert = last.alert
    assert alert is not None
    assert (alert.level, alert.kind, alert.basis) == ("alarm", "control_limit", "count")
    # The EWMA (lambda 0.3) of the six months expects 21.2; the 99.5% quantile is 36 (34 for a
    # Poisson with that mean, widened by the EWMA's own uncertainty).
    assert alert.expected == pytest.approx(21.21, abs=0.01)
    assert alert.limit == 36
    assert alert.observed == 60 > alert.limit
    assert alert.dispersion == 0.0  # the history is plain Poisson noise
    assert alert.p_value < 1e-8  # 1.5e-9


def test_the_limit_is_where_a_warning_becomes_an_alarm() -> None:
    history = [20, 24, 18, 22, 19, 23]
    at_limit = assess(series([*history, 36]))[-1].alert
    above = assess(series([*history, 37]))[-1].alert
    assert at_limit is not None and above is not None
    assert (at_limit.level, at_limit.limit) == ("warning", 36)
    assert (above.level, above.limit) == ("alarm", 36)


def test_a_steady_climb_is_rising_not_noise() -> None:
    # Each step alone is within chance of the last, but the climb is not: the trend is taken
    # out before the history's noise is measured, so it does not widen the limit.
    assert statuses([10, 20, 30, 40, 50, 60]) == [
        "new",
        "steady",
        "steady",
        "rising",
        "rising",
        "rising",
    ]


def test_an_over_dispersed_history_widens_the_limit() -> None:
    # A problem that swings between 5 and 40 every other month: 60 is within its swings, and
    # 80 warns without alarming, where a Poisson limit around the same 20 would alarm above 33.
    history = [5, 30, 8, 40, 12, 35, 10]
    assert assess(series([*history, 60]))[-1].status == "steady"
    alert = assess(series([*history, 80]))[-1].alert
    assert alert is not None
    assert (alert.level, alert.kind) == ("warning", "control_limit")
    assert alert.expected == pytest.approx(20.16, abs=0.01)
    assert alert.dispersion == pytest.approx(0.56, abs=0.01)  # negative-binomial alpha
    assert alert.limit == 90


# --- dormant, regressed, new ---


def test_a_series_that_stops_goes_dormant_and_regresses_when_it_comes_back() -> None:
    counts = [4, 5, 6, 5, 4, 0, 0, 0, 3, 5]
    assert statuses(counts) == [
        "new",
        "steady",
        "steady",
        "steady",
        "steady",
        "falling",  # 0 against an expected 4.7 is beyond chance (p = 0.009)
        "dormant",  # the second zero month, as dormant_after = 2
        "dormant",
        "regressed",
        "steady",  # history restarts at the return: 5 against 3, not against the old level
    ]
    later = statuses(counts, TrendRules(dormant_after=3))
    assert later[5:9] == ["falling", "steady", "dormant", "regressed"]


def test_a_series_appearing_in_month_six_is_new_there_with_nothing_before() -> None:
    result = assess(series([0, 0, 0, 0, 0, 4, 5]))
    assert [(s.period, s.status, s.alert) for s in result] == [
        ("2026-06", "new", None),
        ("2026-07", "steady", None),
    ]


def test_a_new_problem_arriving_in_volume_is_alarmed_against_the_silent_month_before() -> None:
    (only,) = assess(series([0, 0, 0, 0, 0, 12]))
    assert only.status == "new"
    assert only.alert is not None
    assert (only.alert.level, only.alert.kind) == ("alarm", "poisson_exact")
    assert only.alert.p_value == pytest.approx(0.5**12)
    # With nothing before it the first period cannot be compared.
    assert assess(series([12]))[0].alert is None


# --- exposure ---


def test_a_doubled_count_on_doubled_exposure_is_not_rising() -> None:
    by_count = assess(series([20, 45]))[1]
    by_rate = assess(series([20, 45], [1000.0, 2000.0]))[1]
    assert by_count.status == "rising"
    assert by_count.alert is not None and by_count.alert.basis == "count"
    assert (by_rate.status, by_rate.alert) == ("steady", None)


def test_a_growing_customer_base_keeps_a_proportional_series_steady() -> None:
    counts = [10, 20, 30, 40, 50, 60]
    exposures = [100.0, 200.0, 300.0, 400.0, 500.0, 600.0]
    assert {s.status for s in assess(series(counts, exposures))[1:]} == {"steady"}


def test_rates_are_compared_only_when_every_point_has_an_exposure() -> None:
    with_rates = assess(series([20, 60], [1000.0, 1000.0]))[1].alert
    missing_one = assess([Point("2026-01", 20, 1000.0), Point("2026-02", 60, None)])[1].alert
    assert with_rates is not None and with_rates.basis == "rate"
    assert missing_one is not None and missing_one.basis == "count"


# --- the contract ---


def test_the_result_is_json_serialisable() -> None:
    result = assess(series([20, 24, 18, 22, 19, 23, 60]))
    text = json.dumps([asdict(s) for s in result])
    assert json.loads(text)[-1]["alert"]["kind"] == "control_limit"


def test_periods_must_be_contiguous() -> None:
    with pytest.raises(ValueError, match="'2026-03' follows '2026-01'"):
        assess([Point("2026-01", 3), Point("2026-03", 5)])


@pytest.mark.parametrize(
    "point",
    [Point("2026-01", -1), Point("2026-01", 2, 0.0), Point("2026-01", 2, float("nan"))],
)
def test_bad_counts_and_exposures_are_refused(point: Point) -> None:
    with pytest.raises(ValueError, match="2026-01"):
        assess([point])


def test_rules_are_checked() -> None:
    with pytest.raises(ValueError, match="alarm_p"):
        TrendRules(warning_p=0.01, alarm_p=0.05)
    with pytest.raises(ValueError, match="dormant_after"):
        TrendRules(dormant_after=0)


def test_an_empty_series_has_no_statuses() -> None:
    assert assess([]) == []


# --- periods ---


def test_month_week_and_day_ranges_cross_the_year_boundary() -> None:
    assert period_range("2026-11", "2027-02") == ["2026-11", "2026-12", "2027-01", "2027-02"]
    # 2026 has 53 ISO weeks.
    assert period_range("2026-W52", "2027-W02", "week") == ["2026-W52", "2026-W53", "2027-W01", "2027-W02"]
    assert period_range("2026-12-30", "2027-01-02", "day") == [
        "2026-12-30",
        "2026-12-31",
        "2027-01-01",
        "2027-01-02",
    ]
    assert period_range("2026-09", "2026-09") == ["2026-09"]


def test_period_of_each_length() -> None:
    moment = datetime(2026, 9, 3, 14, 30)
    assert period_of(moment) == "2026-09"
    assert period_of(moment, "week") == "2026-W36"
    assert period_of(moment, "day") == "2026-09-03"
    # New Year's Day 2027 still belongs to the last ISO week of 2026.
    assert period_of(date(2027, 1, 1), "week") == "2026-W53"


def test_next_and_previous_period() -> None:
    assert next_period("2026-12") == "2027-01"
    assert previous_period("2027-01") == "2026-12"
    assert next_period("2026-W53", "week") == "2027-W01"
    assert previous_period("2027-W01", "week") == "2026-W53"
    assert next_period("2028-02-28", "day") == "2028-02-29"
    assert parse_period("2026-W36", "week") == date(2026, 8, 31)


def test_a_key_says_its_length() -> None:
    assert [length_of(k) for k in ("2026-09", "2026-W36", "2026-09-03")] == ["month", "week", "day"]


@pytest.mark.parametrize("key", ["2026-13", "2026/09", "2025-W53", "2026-02-30", "26-09", ""])
def test_a_malformed_key_is_a_value_error_naming_it(key: str) -> None:
    with pytest.raises(ValueError, match=f"'{key}'"):
        length_of(key)


def test_a_key_of_another_length_is_refused() -> None:
    with pytest.raises(ValueError, match="'2026-W36'.*YYYY-MM"):
        next_period("2026-W36")
    with pytest.raises(ValueError, match="'2027-01', after its end '2026-12'"):
        period_range("2027-01", "2026-12")
    with pytest.raises(ValueError, match="'year'"):
        period_of(date(2026, 1, 1), "year")  # type: ignore[arg-type]
