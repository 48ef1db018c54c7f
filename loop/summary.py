"""What a batch's report says about time: each problem's trend and the "since last time" changes."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from loop.tracker import TrackOutcome
from tools.schema import TrackedChange, TrackingSummary, TrendPoint
from tools.sql import Conn

# Statuses worth a line in "since last time"; steady and dormant ones are not news.
NEWS = ("new", "rising", "regressed", "falling")
RECENT = 6
LABEL_MIN = 3


def trends_for(conn: Conn, ids: Iterable[str], period: str) -> dict[str, dict[str, Any]]:
    """Each tracked problem's status in ``period`` and its last periods, as ``Trend`` JSON."""
    wanted = sorted(set(ids))
    out: dict[str, dict[str, Any]] = {}
    for tp in wanted:
        rows = conn.execute(
            "SELECT period, complaints, status FROM series WHERE subject = 'problem' AND key = ? "
            "AND period <= ? ORDER BY period DESC LIMIT ?",
            (tp, period, RECENT),
        ).fetchall()
        if not rows:
            continue
        alert = conn.execute(
            "SELECT level FROM alerts WHERE problem_id = ? AND period = ?", (tp, rows[0]["period"])
        ).fetchone()
        out[tp] = {
            "status": rows[0]["status"],
            "period": rows[0]["period"],
            "alert": alert["level"] if alert else None,
            "series": [
                TrendPoint(period=r["period"], complaints=r["complaints"]).model_dump()
                for r in reversed(rows)
            ],
        }
    return out


def changes(conn: Conn, period: str, label_name: Callable[[str], str | None]) -> list[TrackedChange]:
    """Problems and labels that are new, rising, back again or falling in ``period``."""
    marks = ",".join("?" * len(NEWS))
    rows = conn.execute(
        f"SELECT s.subject, s.key, s.status, s.complaints, s.department, p.name, "
        f"(SELECT complaints FROM series q WHERE q.subject = s.subject AND q.key = s.key "
        f" AND q.period < s.period ORDER BY q.period DESC LIMIT 1) AS previous, a.level, a.p_value "
        f"FROM series s LEFT JOIN problems p ON s.subject = 'problem' AND p.id = s.key "
        f"LEFT JOIN alerts a ON a.period = s.period AND (a.problem_id = s.key OR a.label = s.key) "
        f"WHERE s.period = ? AND s.status IN ({marks})",
        (period, *NEWS),
    ).fetchall()
    order = {status: i for i, status in enumerate(NEWS)}
    out = [
        TrackedChange(
            id=r["key"],
            kind=r["subject"],
            name=r["name"] or label_name(r["key"]) or r["key"],
            status=r["status"],
            period=period,
            complaints=r["complaints"],
            previous=r["previous"] or 0,
            department=r["department"],
            alert=r["level"],
            p_value=r["p_value"],
        )
        for r in rows
    ]
    # A label with a complaint or two is not news unless a test flagged it.
    out = [c for c in out if c.kind == "problem" or c.alert or c.complaints >= LABEL_MIN]
    return sorted(out, key=lambda c: (order[c.status], c.kind != "problem", -c.complaints, c.id))


def summarise(
    conn: Conn,
    outcome: TrackOutcome,
    source: str,
    period: str | None,
    stored: int,
    vectors_reused: int,
    labels: dict[str, str],
) -> TrackingSummary | None:
    """The batch's ``TrackingSummary``; None for a batch with no complaints."""
    if period is None:
        return None
    totals = conn.execute(
        "SELECT (SELECT COUNT(*) FROM complaints), "
        "(SELECT COUNT(*) FROM problems WHERE merged_into IS NULL AND n > 0)"
    ).fetchone()
    return TrackingSummary(
        source=source,
        period=period,
        periods=outcome.periods,
        stored=stored,
        new_versions=len(outcome.new_versions),
        vectors_reused=vectors_reused,
        warehouse_complaints=totals[0],
        tracked_problems=totals[1],
        opened=outcome.opened,
        merged=[list(pair) for pair in outcome.merged],
        changes=changes(conn, period, labels.get),
    )
