"""Period keys ("2026-09", "2026-W36", "2026-09-03") and contiguous ranges of them."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Literal, get_args

PeriodLength = Literal["month", "week", "day"]
LENGTHS: tuple[PeriodLength, ...] = get_args(PeriodLength)

# The formats are disjoint, so a key says its own length; the patterns only check the shape,
# the calendar (month 13, 31 February, week 53 of a 52-week year) is checked by `date`.
_PATTERNS: dict[PeriodLength, re.Pattern[str]] = {
    "month": re.compile(r"(\d{4})-(\d{2})"),
    "week": re.compile(r"(\d{4})-W(\d{2})"),
    "day": re.compile(r"(\d{4})-(\d{2})-(\d{2})"),
}
_SHAPES: dict[PeriodLength, str] = {"month": "YYYY-MM", "week": "YYYY-Www (ISO week)", "day": "YYYY-MM-DD"}


def _check_length(length: str) -> PeriodLength:
    for known in LENGTHS:
        if length == known:
            return known
    raise ValueError(f"unknown period length {length!r}; expected one of {', '.join(LENGTHS)}")


def _start(key: str, length: PeriodLength) -> date | None:
    """The first day of the period `key` names, or None when it is not a valid key of `length`."""
    match = _PATTERNS[length].fullmatch(key)
    if match is None:
        return None
    parts = [int(part) for part in match.groups()]
    try:
        if length == "month":
            return date(parts[0], parts[1], 1)
        if length == "week":
            return date.fromisocalendar(parts[0], parts[1], 1)
        return date(parts[0], parts[1], parts[2])
    except ValueError:
        return None


def length_of(key: str) -> PeriodLength:
    """The length a period key is written in; ValueError naming the key when it is none of them."""
    for length in LENGTHS:
        if _start(key, length) is not None:
            return length
    shapes = ", ".join(_SHAPES.values())
    raise ValueError(f"malformed period key {key!r}; expected one of {shapes}")


def parse_period(key: str, length: PeriodLength = "month") -> date:
    """The first day of the period; ValueError naming the key when it is not a `length` key."""
    length = _check_length(length)
    start = _start(key, length)
    if start is None:
        raise ValueError(f"malformed {length} period key {key!r}; expected {_SHAPES[length]}")
    return start


def period_of(dt: datetime | date, length: PeriodLength = "month") -> str:
    """The key of the period holding `dt` (its own calendar date: convert time zones first)."""
    length = _check_length(length)
    day = dt.date() if isinstance(dt, datetime) else dt
    if length == "month":
        return f"{day.year:04d}-{day.month:02d}"
    if length == "week":
        # The ISO year, not the calendar one: 2027-01-01 falls in 2026-W53.
        iso = day.isocalendar()
        return f"{iso.year:04d}-W{iso.week:02d}"
    return day.isoformat()


def next_period(key: str, length: PeriodLength = "month") -> str:
    """The period right after `key`."""
    start = parse_period(key, length)
    if length == "month":
        return period_of(date(start.year + start.month // 12, start.month % 12 + 1, 1), length)
    return period_of(start + timedelta(days=7 if length == "week" else 1), length)


def previous_period(key: str, length: PeriodLength = "month") -> str:
    """The period right before `key`."""
    # The day before a period's first day always lies in the previous period.
    return period_of(parse_period(key, length) - timedelta(days=1), length)


def period_range(first: str, last: str, length: PeriodLength = "month") -> list[str]:
    """Every period from `first` to `last`, both included, in order."""
    start, end = parse_period(first, length), parse_period(last, length)
    if start > end:
        raise ValueError(f"period range starts at {first!r}, after its end {last!r}")
    keys = [first]
    while keys[-1] != last:
        keys.append(next_period(keys[-1], length))
    return keys
