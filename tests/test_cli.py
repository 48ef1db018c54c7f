"""The ``voc`` command as a user runs it: real files in, real reports out, nothing leaked."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app
from tests.conftest import SAMPLE, files_containing, planted_values
from tools.deps import Deps

runner = CliRunner()

CARD = "6222021234567894"
ID18 = "110105198803152315"
MOBILE = "13812345678"


def _write_batch(path: Path) -> None:
    rows = [
        {"id": "a1", "text": f"我的信用卡{CARD}昨天被盗刷了两笔，联系电话{MOBILE}", "channel": "电话"},
        {
            "id": "a2",
            "text": "手机银行升级以后一直闪退，登录不上",
            "channel": "APP",
            "received_at": "2026-10-03 09:00",
        },
        {"id": "a3", "text": f"身份证{ID18}办卡被拒，要求说明原因", "channel": "网点"},
        {"id": "a4", "text": "", "channel": "电话"},
        {"id": "a2", "text": "重复的编号", "channel": "电话"},
        {"id": "a5", "text": "客服热线转人工排队半小时", "received_at": "not-a-date"},
        {"id": "a6", "text": "x" * 20000},
        {"id": "a7", "text": "热线一直转不到人工客服，机器人听不懂", "channel": "火星"},
    ]
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["id", "text", "channel", "received_at"])
        writer.writeheader()
        for r in rows:
            writer.writerow(r)


def test_help_teaches_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("analyze", "demo", "kb"):
        assert command in result.output
    result = runner.invoke(app, ["analyze", "--help"])
    assert "--service-matrix" in result.output and "--taxonomy" in result.output


def test_analyze_writes_every_output_and_lists_bad_rows(deps: Deps, voc_home: Path, tmp_path: Path) -> None:
    batch = tmp_path / "batch.csv"
    _write_batch(batch)
    out = tmp_path / "out"
    result = runner.invoke(app, ["analyze", str(batch), "--out", str(out), "--home", str(voc_home)])
    assert result.exit_code == 0, result.output
    for name in ("results.jsonl", "problems.json", "errors.jsonl", "report.md", "report.html", "run.json"):
        assert (out / name).is_file(), name
    results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in results) == ["a1", "a2", "a3", "a7"]
    for r in results:
        assert {"id", "attribution", "root_cause", "severity", "priority", "problem_id", "engine"} <= set(r)
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    # CSV row numbers are spreadsheet rows: the header is row 1.
    got = {(e["row"], e["field"], e["severity"]) for e in errors}
    assert got == {
        (5, "text", "error"),
        (6, "id", "error"),
        (7, "received_at", "error"),
        (8, "text", "error"),
        (9, "channel", "warning"),
    }
    run = json.loads((out / "run.json").read_text())
    assert run["counts"]["accepted"] == 4 and run["counts"]["rejected"] == 4
    assert run["counts"]["pii_masked"] >= 3
    assert "analysed" in result.output and "report.html" in result.output
    # Raw personal data never reaches an output file, the checkpoints or the Chroma store.
    assert files_containing(out, [CARD, ID18, MOBILE]) == []
    assert files_containing(voc_home, [CARD, ID18, MOBILE]) == []
    # Error bodies never echo submitted text.
    assert "x" * 50 not in (out / "errors.jsonl").read_text()


def test_unreadable_input_and_bad_data_file_exit_with_a_clear_message(voc_home: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["analyze", str(tmp_path / "missing.csv"), "--home", str(voc_home)])
    assert result.exit_code == 2
    assert "missing.csv" in result.output
    bad = tmp_path / "matrix.yaml"
    bad.write_text("version: '1'\nchannels: []\n", encoding="utf-8")
    batch = tmp_path / "b.jsonl"
    batch.write_text('{"id": "1", "text": "信用卡年费不合理"}\n', encoding="utf-8")
    result = runner.invoke(
        app,
        [
            "analyze",
            str(batch),
            "--service-matrix",
            str(bad),
            "--home",
            str(voc_home),
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 3
    assert "matrix.yaml" in result.output


def test_kb_search_finds_the_fraud_policy(deps: Deps, voc_home: Path) -> None:
    result = runner.invoke(app, ["kb", "search", "信用卡被盗刷怎么处理", "--home", str(voc_home), "-k", "3"])
    assert result.exit_code == 0, result.output
    assert "kb:KB-" in result.output


def test_demo_on_the_bundled_sample(deps: Deps, voc_home: Path, tmp_path: Path, planted: dict) -> None:
    out = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--out", str(out), "--home", str(voc_home)])
    assert result.exit_code == 0, result.output
    problems = json.loads((out / "problems.json").read_text())["problems"]
    results = {json.loads(x)["id"]: json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()}
    errors = [json.loads(x) for x in (out / "errors.jsonl").read_text().splitlines()]
    warned = {e["row"] for e in errors if e["severity"] == "warning"}
    rejected = {e["row"] for e in errors if e["severity"] == "error"}
    assert rejected | warned == {m["line"] for m in planted["malformed"]}
    assert len(rejected) == 5 and len(warned) == 1
    # The app-crash theme spiking in October is found, with its owner, at the top of the list.
    spiking = [p for p in problems if p["spike"]]
    app_ids = set(planted["themes"]["A"]["ids_2610"])
    assert any(len(app_ids & set(p["member_ids"])) >= 20 for p in spiking)
    assert problems[0]["priority"] == "P1"
    assert all(p["proposal"] and p["proposal"]["sources"] for p in problems[:3])
    fraud = set(planted["themes"]["B"]["ids_2609"] + planted["themes"]["B"]["ids_2610"])
    assert sum(results[i]["root_cause"]["grade"] == "特急" for i in fraud if i in results) >= len(fraud) * 0.6
    html = (out / "report.html").read_text()
    assert "整改建议" in html and "人机物法环" in html and "严重性 × 影响面" in html
    assert files_containing(out, planted_values(planted)) == []
    assert files_containing(voc_home, planted_values(planted)) == []
    assert SAMPLE.name in result.output
