"""engine auto: rules on every complaint, only the unsure ones to the (scripted) model."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import app
from graph.run import run_batch
from tests.fake_openai import COMPLAINT, FakeOpenAI, Reply, last_user_text
from tools.deps import Deps
from tools.ingest import rows_from_records
from tools.llm import LLM
from tools.schema import BatchResult

# Enough of the bundled sample for a spread of confidence, small enough to run in seconds.
ROWS = 48


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture(scope="module")
def records(sample_records: list[dict]) -> list[dict]:
    return sample_records[:ROWS]


@pytest.fixture(scope="module")
def rules(deps: Deps, records: list[dict]) -> BatchResult:
    return run_batch(rows_from_records(records), deps, source="cascade-test", fresh=True, track=False)


def engine_deps(deps: Deps, server: FakeOpenAI, engine: str, **settings: Any) -> Deps:
    s = deps.settings.model_copy(
        update={"engine": engine, "llm_base_url": server.base_url, "llm_model": "fake-model", **settings}
    )
    llm = LLM(s, sleep=lambda _: None)
    return dataclasses.replace(deps, settings=s, llm=llm, versions={**deps.versions, **llm.versions()})


def sent_texts(server: FakeOpenAI) -> list[str]:
    """The complaint bodies the tracing calls carried."""
    return [body for r in server.calls("RecordTraces") for _, body in COMPLAINT.findall(last_user_text(r))]


def reached(server: FakeOpenAI, result: BatchResult) -> set[str]:
    """Ids of the complaints whose text reached the server."""
    bodies = sent_texts(server)
    return {r.id for r in result.results if any(r.text in b for b in bodies)}


def test_only_unsure_complaints_reach_the_model_the_rest_keep_the_rules_result(
    deps: Deps, server: FakeOpenAI, records: list[dict], rules: BatchResult
) -> None:
    d = engine_deps(deps, server, "auto", cascade_threshold=0.75)
    unsure = {r.id for r in rules.results if r.root_cause.confidence < 0.75}
    assert 0 < len(unsure) < len(records)
    result = run_batch(rows_from_records(records), d, source="cascade-test", fresh=True, track=False)
    assert reached(server, result) == unsure
    assert len(sent_texts(server)) == len(unsure)  # each once
    by_rules = {r.id: r for r in rules.results}
    for r in result.results:
        if r.id in unsure:
            assert r.engine == "llm"
            continue
        assert r.engine == "rules"
        assert "kept by rules" in (r.engine_note or "")
        assert r.root_cause == by_rules[r.id].root_cause
        assert r.attribution == by_rules[r.id].attribution
        assert r.grade_confidence == by_rules[r.id].grade_confidence
    k = result.stats.cascade
    assert k is not None
    assert (k.threshold, k.threshold_source) == (0.75, "VOC_CASCADE_THRESHOLD")
    assert (k.kept, k.sent, k.fell_back) == (len(records) - len(unsure), len(unsure), 0)
    assert k.calls == len(server.calls("RecordTraces"))
    assert k.calls_saved > 0
    assert k.tokens_per_complaint
    assert k.tokens_saved == pytest.approx(k.kept * k.tokens_per_complaint, abs=k.kept)
    assert result.stats.engine_use == {"rules": k.kept, "llm": k.sent}


def test_an_outage_in_auto_falls_back_to_rules_for_the_sent_complaints(
    deps: Deps, server: FakeOpenAI, records: list[dict], rules: BatchResult
) -> None:
    server.responder = lambda request: Reply(500, {"error": {"message": "down"}})
    d = engine_deps(deps, server, "auto", cascade_threshold=0.75)
    result = run_batch(rows_from_records(records), d, source="cascade-test", fresh=True, track=False)
    unsure = {r.id for r in rules.results if r.root_cause.confidence < 0.75}
    by_rules = {r.id: r for r in rules.results}
    assert {r.engine for r in result.results} == {"rules"}
    for r in result.results:
        assert r.root_cause == by_rules[r.id].root_cause
        assert r.attribution == by_rules[r.id].attribution
        if r.id in unsure:
            assert "HTTP 500 after 3 attempts" in (r.engine_note or "")
    k = result.stats.cascade
    assert k is not None
    assert (k.sent, k.fell_back) == (len(unsure), len(unsure))
    assert result.stats.fallbacks >= len(unsure)  # problem naming and proposals fell back too


def test_engine_llm_still_sends_every_complaint(deps: Deps, server: FakeOpenAI, records: list[dict]) -> None:
    d = engine_deps(deps, server, "llm", cascade_threshold=0.75)
    result = run_batch(rows_from_records(records), d, source="cascade-test", fresh=True, track=False)
    assert reached(server, result) == {r.id for r in result.results}
    assert result.stats.cascade is None
    assert result.stats.engine_use == {"llm": len(records)}


def test_default_threshold_comes_from_the_calibration_curve(deps: Deps, server: FakeOpenAI) -> None:
    from agents.cascade import threshold

    assert deps.calibration is not None and deps.calibration.curve
    limit, source = threshold(engine_deps(deps, server, "auto"))
    assert 0 < limit < 1
    assert source.startswith(f"calibration {deps.calibration.version}")
    point = next(p for p in deps.calibration.curve if p.threshold == limit)
    assert point.kept_accuracy is not None and point.kept_accuracy >= deps.settings.cascade_target


def test_cli_summary_and_run_json_state_the_cascade(
    server: FakeOpenAI, records: list[dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = tmp_path / "batch.jsonl"
    batch.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records[:12]), encoding="utf-8")
    monkeypatch.setenv("VOC_LLM_BASE_URL", server.base_url)
    monkeypatch.setenv("VOC_LLM_MODEL", "fake-model")
    monkeypatch.setenv("VOC_HOME", str(tmp_path / "home"))
    out = tmp_path / "out"
    args = ["analyze", str(batch), "--out", str(out), "--no-track", "--engine", "auto"]
    done = CliRunner().invoke(app, [*args, "--cascade-threshold", "0"])
    assert done.exit_code == 0, done.output
    assert "Cascade" in done.output and "12 kept by rules · 0 sent to the model" in done.output
    assert server.calls("RecordTraces") == []
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert run["cascade"]["kept"] == 12 and run["cascade"]["sent"] == 0
    assert "分流 Cascade" in (out / "report.md").read_text(encoding="utf-8")


def test_the_curve_and_the_thresholds_read_off_it() -> None:
    from tools.calibration import (
        Calibration,
        FieldMap,
        cascade_curve,
        cascade_threshold,
        review_threshold,
        threshold_from_curve,
    )

    # 100 rows: confidence k/100, right when k >= 40, and one early right row every tenth.
    conf = [k / 100 for k in range(100)]
    right = [k >= 40 or k % 10 == 0 for k in range(100)]
    curve = cascade_curve(conf, right)
    assert curve == cascade_curve(conf, right)  # deterministic
    at = {p.threshold: p for p in curve}
    assert (at[0.0].kept, at[0.0].below, at[0.0].kept_accuracy) == (100, 0, 0.64)
    assert (at[0.4].kept, at[0.4].kept_accuracy, at[0.4].below_accuracy) == (60, 1.0, 0.1)
    assert at[1.0].kept == 0 and at[1.0].kept_accuracy is None
    # The lowest step from which the kept accuracy stays at or above the target.
    assert threshold_from_curve(curve, 0.95) == 0.38
    assert threshold_from_curve(curve, 1.0) == 0.4

    fields = {name: FieldMap(a=1, b=0, rows=100, accuracy=0.64) for name in ("label", "department", "grade")}
    cal = Calibration(version="test", recipe={}, fields=fields, curve=curve)  # type: ignore[arg-type]
    assert cascade_threshold(cal, None, 1.0) == (0.4, "calibration test, kept accuracy >= 1.0")
    assert cascade_threshold(cal, 0.3, 1.0)[0] == 0.3  # the setting wins
    assert cascade_threshold(None, None, 0.85)[0] == 0.85
    # Review: the highest step, not above the cascade's, below which at most half were right.
    limit, source = review_threshold(cal, None, 0.5, 0.4)
    assert limit == 0.4 and source.startswith("calibration test")
    assert review_threshold(cal, None, 0.5, 0.3)[0] == 0.3
    assert review_threshold(cal, 0.2, 0.5, 0.4)[0] == 0.2
