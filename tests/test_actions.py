"""Actions and effect verification on the history generator's ``actions`` scenario: ten months sent one
by one, a fix that works (effective after enough periods, not before), one that does nothing
(not_effective) and one that comes back after it was verified (the action reopens and
``action.regressed`` is in the outbox); bad input changes nothing."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, closing
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from evals.history import History, generate
from graph.run import run_batch
from services.actions import ActionService
from services.errors import Conflict, NotFound, Unprocessable
from services.tracking import TrackingService
from tests.pg import copy_database, fresh_database
from tools.audit import Actor, AuditLog, AuditQuery
from tools.deps import Deps
from tools.ingest import rows_from_records
from tools.settings import Settings
from tools.sql import database

WHO = Actor("user:tester", "cli")
# The scenario's fixes: which theme, when it was fixed, after which month the action is marked done.
FIXES = {
    "double_debit": (date(2026, 3, 31), 3),
    "branch_queue": (date(2026, 4, 30), 4),
    "app_login": (date(2026, 4, 30), 4),
}


def at_home(deps: Deps, home: Path, database_url: str | None = None) -> Deps:
    update = {"home": home, "database_url": database_url}
    return dataclasses.replace(deps, settings=deps.settings.model_copy(update=update))


def tracked_id(settings: Settings, history: History, theme: str) -> str:
    """The tracked problem holding most of a theme's complaints."""
    with database(settings, "warehouse").connect() as conn:
        rows = conn.execute("SELECT id, tracked_id FROM complaints WHERE tracked_id IS NOT NULL").fetchall()
    votes = Counter(tp for cid, tp in rows if history.theme_of.get(cid) == theme)
    assert votes, f"no tracked problem holds theme {theme}"
    return votes.most_common(1)[0][0]


def outbox(settings: Settings, event: str) -> list[dict[str, Any]]:
    with database(settings, "warehouse").connect() as conn:
        rows = conn.execute("SELECT payload FROM outbox WHERE event = ? ORDER BY seq", (event,)).fetchall()
    return [json.loads(r[0]) for r in rows]


@dataclass
class Scenario:
    settings: Settings
    history: History
    service: ActionService
    actions: dict[str, str] = field(default_factory=dict)  # theme -> action id
    # theme -> month (1-based) -> (status, verdict) after that month's batch
    seen: dict[str, dict[int, tuple[str, str | None]]] = field(default_factory=dict)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def scenario(
    request: pytest.FixtureRequest, deps: Deps, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scenario]:
    """The whole loop on each storage backend: SQLite files, and a fresh Postgres database."""
    with ExitStack() as stack:
        url = stack.enter_context(fresh_database()) if request.param == "postgres" else None
        yield _scenario(deps, tmp_path_factory.mktemp("actions") / "home", url)


def _scenario(deps: Deps, home: Path, database_url: str | None) -> Scenario:
    history = generate(months=10, per_month=40, seed=0, scenario="actions")
    local = at_home(deps, home, database_url)
    service = ActionService(local.settings, AuditLog(database(local.settings, "audit")))
    s = Scenario(local.settings, history, service)
    for month, rows in enumerate(history.by_month(), start=1):
        run_batch(rows_from_records(rows), local, track=True)
        for theme, (fixed_on, done_after) in FIXES.items():
            if month != done_after:
                continue
            problem = tracked_id(local.settings, history, theme)
            opened = service.open(WHO, problem)
            service.update(WHO, opened.id, "in_progress")
            service.update(WHO, opened.id, "done", fixed_on=fixed_on, note=f"{theme} 根因已整改")
            s.actions[theme] = opened.id
        for theme, action_id in s.actions.items():
            a = service.show(WHO, action_id)
            s.seen.setdefault(theme, {})[month] = (a.status, a.effect.verdict if a.effect else None)
    return s


def test_a_fix_that_works_is_effective_after_enough_periods_and_not_before(scenario: Scenario) -> None:
    seen = scenario.seen["branch_queue"]
    # Fixed at the end of month 4; month 4 is the transition, so month 5 is one period after: too few.
    assert seen[4][0] == "done" and seen[4][1] == "pending"
    assert seen[5] == ("done", "improving")
    assert seen[6] == ("verified", "effective")
    assert seen[10][0] == "verified"
    a = scenario.service.show(WHO, scenario.actions["branch_queue"])
    e = a.effect
    assert e is not None and e.verdict == "effective"
    assert e.basis == "volume" and e.transition == ["2026-04"]
    assert len(e.before.periods) == len(e.after.periods) == 3
    assert e.before.periods[-1] == "2026-03" and e.after.periods[0] == "2026-05"
    assert e.rate_ratio is not None and e.ci_high is not None and e.ci_high < 1
    assert e.rate_ratio <= e.target_ratio and e.target_met
    assert e.control_ratio is not None and e.control_problems
    assert "Verdict: effective" in e.summary
    verified = [p for p in outbox(scenario.settings, "action.verified") if p["action_id"] == a.id]
    assert len(verified) == 1 and verified[0]["rate_ratio"] is not None
    assert [h.to_status for h in a.history] == ["open", "in_progress", "done", "verified"]
    assert a.history[-1].actor == "system:verification"


def test_a_fix_that_does_nothing_is_not_effective(scenario: Scenario) -> None:
    a = scenario.service.show(WHO, scenario.actions["app_login"])
    assert a.status == "not_effective"
    e = a.effect
    assert e is not None and e.verdict == "not_effective"
    assert e.rate_ratio is not None and (e.rate_ratio >= 1 or (e.ci_low or 0) > e.target_ratio)
    assert "effective" not in {v for _, v in scenario.seen["app_login"].values()}


def test_a_problem_back_after_a_verified_fix_reopens_its_action(scenario: Scenario) -> None:
    seen = scenario.seen["double_debit"]
    assert "verified" in [status for status, _ in seen.values()]
    action_id = scenario.actions["double_debit"]
    a = scenario.service.show(WHO, action_id)
    assert a.status == "reopened"
    assert a.effect is not None and a.effect.verdict == "regressed"
    assert a.effect.regressed_in is not None and a.effect.regressed_in >= "2026-08"
    assert [h.to_status for h in a.history][-2:] == ["verified", "reopened"]
    rows = [p for p in outbox(scenario.settings, "action.regressed") if p["action_id"] == action_id]
    assert len(rows) == 1
    row = rows[0]
    assert row["problem_id"] == a.problem_id and row["status"] == "reopened"
    assert row["observed"] > row["expected"] and row["period"] == a.effect.regressed_in
    # Events carry ids and figures only.
    assert "text" not in row and "note" not in row


def test_every_change_is_in_the_history_and_the_audit_trail(scenario: Scenario) -> None:
    events = AuditLog(database(scenario.settings, "audit")).query(AuditQuery(action="action", limit=1000))
    by_action = Counter((e.action, e.target) for e in events)
    for action_id in scenario.actions.values():
        assert by_action[("action.open", action_id)] == 1
        assert by_action[("action.update", action_id)] == 2
    verifications = [e for e in events if e.action == "action.verify"]
    assert {e.actor for e in verifications} == {"system:verification"}
    assert {e.detail["status"] for e in verifications} >= {"verified", "not_effective", "reopened"}
    created = outbox(scenario.settings, "action.created")
    assert {p["action_id"] for p in created} == set(scenario.actions.values())


def test_bad_input_is_a_clear_error_and_changes_nothing(scenario: Scenario) -> None:
    service = scenario.service

    def state() -> tuple[Any, ...]:
        with database(scenario.settings, "warehouse").connect() as conn:
            return tuple(
                [tuple(r) for r in conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()]
                for t in ("actions", "action_history", "outbox")
            )

    before = state()
    problem = scenario.service.show(WHO, scenario.actions["app_login"]).problem_id
    with pytest.raises(NotFound, match="no such tracked problem"):
        service.open(WHO, "TP-9999")
    with pytest.raises(Unprocessable, match="due is not a date") as bad:
        service.open(WHO, problem, due="2026-13-01")
    assert bad.value.fields and bad.value.fields[0].loc == "due"
    with pytest.raises(Unprocessable, match="due is in the past"):
        service.open(WHO, problem, due="2020-01-01")
    with pytest.raises(NotFound, match="no such action"):
        service.update(WHO, "ACT-9999", "done", fixed_on="2026-05-01", note="x")
    verified = scenario.actions["branch_queue"]
    with pytest.raises(Conflict, match="cannot become done"):
        service.update(WHO, verified, "done", fixed_on="2026-05-01", note="再修一次")
    with pytest.raises(Conflict, match="set by effect verification"):
        service.update(WHO, scenario.actions["app_login"], "verified")
    fresh = service.open(WHO, problem)
    before = state()
    with pytest.raises(Conflict, match="needs the fix date"):
        service.update(WHO, fresh.id, "done", note="根因")
    with pytest.raises(Conflict, match="needs the fix date"):
        service.update(WHO, fresh.id, "done", fixed_on="2026-05-01", note="  ")
    with pytest.raises(Conflict, match="in the future"):
        service.update(WHO, fresh.id, "done", fixed_on="2099-01-01", note="根因")
    with pytest.raises(Unprocessable, match="fixed_on is not a date"):
        service.update(WHO, fresh.id, "done", fixed_on="yesterday", note="根因")
    with pytest.raises(Unprocessable, match="status must be one of"):
        service.update(WHO, fresh.id, "finished")
    assert state() == before
    service.update(WHO, fresh.id, "cancelled", note="重复立项")
    assert service.show(WHO, fresh.id).status == "cancelled"


def test_an_unfinished_action_past_its_due_date_is_flagged_once(scenario: Scenario, deps: Deps) -> None:
    settings = scenario.settings
    problem = scenario.service.show(WHO, scenario.actions["branch_queue"]).problem_id
    opened = scenario.service.open(WHO, problem, due=date.today())
    later = ActionService(settings, AuditLog(database(settings, "audit")), today=lambda: date(2099, 1, 2))
    overdue = later.list(WHO, overdue=True).actions
    assert opened.id in [a.id for a in overdue] and all(a.overdue for a in overdue)
    later.list(WHO, overdue=True)
    later.show(WHO, opened.id)
    assert [p["action_id"] for p in outbox(settings, "action.overdue")].count(opened.id) == 1
    later.update(WHO, opened.id, "cancelled")
    assert opened.id not in [a.id for a in later.list(WHO, overdue=True).actions]


def test_recording_exposures_judges_every_fix_again_on_them(
    scenario: Scenario, deps: Deps, tmp_path: Path
) -> None:
    # On a copy of the scenario's warehouse, so the other tests keep theirs.
    home = tmp_path / "home"
    home.mkdir()
    with ExitStack() as stack:
        url = scenario.settings.database_url
        if url is None:
            src = sqlite3.connect(scenario.settings.home / "warehouse.db")
            dst = sqlite3.connect(home / "warehouse.db")
            with closing(src), closing(dst):
                src.backup(dst)
        else:
            url = stack.enter_context(copy_database(url))
        _judge_again_on_exposures(scenario, at_home(deps, home, url).settings)


def _judge_again_on_exposures(scenario: Scenario, settings: Settings) -> None:
    audit = AuditLog(database(settings, "audit"))
    tracking = TrackingService(settings, audit)
    for period in scenario.history.months:
        tracking.set_exposure(WHO, period, 100_000)
    service = ActionService(settings, audit)
    effect = service.show(WHO, scenario.actions["branch_queue"]).effect
    assert effect is not None and effect.basis == "exposure"
    assert effect.before.exposure == 100_000 * len(effect.before.periods)
