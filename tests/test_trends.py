"""Period keys: month, ISO week and day ranges across a year boundary, and malformed keys."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from loop.periods import (
    length_of,
    next_period,
    parse_period,
    period_of,
    period_range,
    previous_period,
)

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
