"""Series per tracked problem and per root-cause label, rebuilt from the warehouse's complaints, with a
status and any alert per period (so a resent or deleted batch can never leave a count behind).

Each alert that the rebuild finds for the first time (or that rose from warning to alarm) is queued
as a ``problem.alert`` event in the same transaction, and :func:`announce_new` queues a
``problem.new`` event for each urgent (P1/P2) tracked problem a batch opened.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass

from loop import outbox
from loop.periods import PeriodLength, period_range
from loop.trends import Point, TrendRules, assess
from loop.warehouse import Warehouse
from tools.pii import mask_text
from tools.sql import Conn

PRIORITY_ORDER = ("P1", "P2", "P3", "P4")
URGENT = ("P1", "P2")  # the priorities a new tracked problem is announced at (problem.new)
LEVEL_ORDER = ("warning", "alarm")


@dataclass
class _Cell:
    complaints: int = 0
    customers: set[str] | None = None
    anonymous: int = 0
    grades: Counter[str] | None = None
    priorities: Counter[str] | None = None
    departments: Counter[str] | None = None

    def add(self, customer: str | None, grade: str, priority: str, department: str | None) -> None:
        self.complaints += 1
        if customer:
            (self.customers if self.customers is not None else self._init()).add(customer)
        else:
            self.anonymous += 1  # no id: each complaint counts as its own customer
        self.grades = self.grades or Counter()
        self.priorities = self.priorities or Counter()
        self.departments = self.departments or Counter()
        self.grades[grade] += 1
        self.priorities[priority] += 1
        if department:
            self.departments[department] += 1

    def _init(self) -> set[str]:
        self.customers = set()
        return self.customers

    def row(self) -> tuple[int, int, str, str | None, str | None]:
        customers = len(self.customers or ()) + self.anonymous
        grades = dict(sorted((self.grades or Counter()).items()))
        pri = self.priorities or Counter()
        # The most frequent priority; a tie goes to the more urgent one.
        priority = min(pri, key=lambda p: (-pri[p], PRIORITY_ORDER.index(p))) if pri else None
        dep = self.departments or Counter()
        department = min(dep, key=lambda d: (-dep[d], d)) if dep else None
        return self.complaints, customers, json.dumps(grades, ensure_ascii=False), priority, department


def rebuild(conn: Conn, length: PeriodLength, rules: TrendRules) -> None:
    """Recompute every series, status and alert from the complaints the warehouse holds; queue a
    ``problem.alert`` event for every alert that is new (or graver than before)."""
    before = {r[0]: r[1] for r in conn.execute("SELECT id, level FROM alerts")}
    conn.execute("DELETE FROM series")
    conn.execute("DELETE FROM alerts")
    bounds = conn.execute("SELECT MIN(period), MAX(period) FROM complaints").fetchone()
    if bounds[0] is None:
        return
    periods = period_range(bounds[0], bounds[1], length)
    totals = dict(conn.execute("SELECT period, COUNT(*) FROM complaints GROUP BY period").fetchall())
    exposures = dict(conn.execute("SELECT period, exposure FROM periods").fetchall())
    cells: dict[tuple[str, str], dict[str, _Cell]] = defaultdict(lambda: defaultdict(_Cell))
    rows = conn.execute(
        "SELECT tracked_id, l2, negative, period, customer_hash, grade, priority, department FROM complaints"
    )
    for tracked, l2, negative, period, customer, grade, priority, department in rows:
        if tracked:
            cells[("problem", tracked)][period].add(customer, grade, priority, department)
        if negative and l2:
            cells[("label", l2)][period].add(customer, grade, priority, department)
    series_rows = []
    alert_rows = []
    for (subject, key), by_period in sorted(cells.items()):
        first = min(by_period)
        span = periods[periods.index(first) :]
        points = [
            Point(period=p, count=by_period[p].complaints if p in by_period else 0, exposure=exposures.get(p))
            for p in span
        ]
        for st in assess(points, rules):
            cell = by_period.get(st.period, _Cell())
            complaints, customers, grades, priority, department = cell.row()
            total = totals.get(st.period, 0)
            share = round(complaints / total, 4) if total else 0.0
            series_rows.append(
                (
                    subject,
                    key,
                    st.period,
                    complaints,
                    customers,
                    share,
                    grades,
                    priority,
                    department,
                    st.status,
                )
            )
            if st.alert is not None:
                a = st.alert
                alert_rows.append(
                    (
                        f"AL-{key}-{st.period}",
                        key if subject == "problem" else None,
                        key if subject == "label" else None,
                        st.period,
                        a.level,
                        a.observed,
                        a.expected,
                        a.limit,
                        a.p_value,
                        a.kind,
                        a.basis,
                    )
                )
    conn.executemany(
        "INSERT INTO series (subject, key, period, complaints, customers, share, grade_mix, priority, "
        "department, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        series_rows,
    )
    conn.executemany(
        'INSERT INTO alerts (id, problem_id, label, period, level, observed, expected, "limit", p_value, '
        "kind, basis) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        alert_rows,
    )
    for row in alert_rows:
        alert_id, level = row[0], row[4]
        old = before.get(alert_id)
        if old is not None and LEVEL_ORDER.index(level) <= LEVEL_ORDER.index(old):
            continue
        outbox.emit(
            conn,
            "problem.alert",
            {
                "alert_id": alert_id,
                "problem_id": row[1],
                "label": row[2],
                "period": row[3],
                "level": level,
                "previous_level": old,
                "observed": row[5],
                "expected": row[6],
                "limit": row[7],
                "p_value": row[8],
                "kind": row[9],
                "basis": row[10],
            },
        )


def announce_new(conn: Conn, opened: list[str], batch_id: str, source: str) -> list[str]:
    """Queue ``problem.new`` for each tracked problem ``opened`` by this batch that is still its own
    (not merged away) and urgent (P1 or P2 in some period); call after :func:`rebuild`. Returns the
    ids announced.

    The payload carries ids, counts, priorities, periods and the masked department name; not the
    problem's name, which is made of words from complaints (a receiver reads it through the audited
    ``/v1/problems/{id}``).
    """
    announced = []
    for pid in opened:
        problem = conn.execute(
            "SELECT id, l2, dimension, department_id, department, first_period, merged_into "
            "FROM problems WHERE id = ?",
            (pid,),
        ).fetchone()
        if problem is None or problem[6] is not None:
            continue
        rows = conn.execute(
            "SELECT period, complaints, customers, priority FROM series "
            "WHERE subject = 'problem' AND key = ? ORDER BY period",
            (pid,),
        ).fetchall()
        priorities = [r[3] for r in rows if r[3] in PRIORITY_ORDER]
        if not priorities:
            continue
        priority = min(priorities, key=PRIORITY_ORDER.index)
        if priority not in URGENT:
            continue
        department = problem[4]
        complaints, known, anonymous = conn.execute(
            "SELECT COUNT(*), COUNT(DISTINCT customer_hash), "
            "SUM(CASE WHEN customer_hash IS NULL THEN 1 ELSE 0 END) FROM complaints WHERE tracked_id = ?",
            (pid,),
        ).fetchone()
        outbox.emit(
            conn,
            "problem.new",
            {
                "problem_id": pid,
                "priority": priority,
                "first_period": problem[5],
                "periods": [r[0] for r in rows if r[1]],
                "complaints": int(complaints),
                "customers": int(known) + int(anonymous or 0),
                "dimension": problem[2],
                "l2": problem[1],
                "department_id": mask_text(problem[3]) if problem[3] else None,
                "department": mask_text(department) if department else None,
                "batch_id": batch_id,
                "source": mask_text(source),
            },
            key=pid,
        )
        announced.append(pid)
    return announced


def refresh(warehouse: Warehouse, length: PeriodLength, rules: TrendRules) -> None:
    """Rebuild after a change outside a batch (an exposure recorded, a batch deleted or purged)."""
    with warehouse.connect() as conn:
        warehouse.recount_problems(conn)
        rebuild(conn, length, rules)
