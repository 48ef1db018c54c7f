"""Reading complaint batches and preparing rows (tools/ingest.py)."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

from tools.ingest import InputFileError, prepare, read_rows
from tools.schema import Complaint, RowError

CHANNELS = {"电话": "电话", "热线": "电话", "APP": "APP"}
CARD = "6217002340001234568"  # Luhn-valid
MOBILE = "13812345678"
LONG_TEXT = "手机银行闪退" * 3334  # 20,004 characters


def canonical_channel(value: str) -> str | None:
    return CHANNELS.get(value)


def run(path: Path) -> tuple[list[Complaint], list[RowError]]:
    return prepare(read_rows(path), canonical_channel=canonical_channel, max_text_chars=5000)


def jline(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


def where(errors: list[RowError]) -> set[tuple[int, str, str]]:
    return {(e.row, e.field, e.severity) for e in errors}


def assert_no_text_in_reasons(errors: list[RowError], texts: list[str]) -> None:
    for e in errors:
        for t in texts:
            assert t[:20] not in e.reason, f"row {e.row} reason quotes the row text"
        assert CARD not in e.reason and MOBILE not in e.reason


# ── JSONL ─────────────────────────────────────────────────────────────────────

GOOD_TEXT = f"卡号{CARD}昨天被盗刷了五千元，打{MOBILE}没人接，要求尽快处理"
BAD_DATE_TEXT = "信用卡年费被重复扣收，要求退还"


@pytest.fixture
def jsonl_batch(tmp_path: Path) -> Path:
    lines = [
        # 1: good, with personal data, an alias channel and a date
        jline(
            {
                "id": "C-001",
                "text": GOOD_TEXT,
                "channel": "热线",
                "received_at": "2026-09-03 10:21:00",
                "customer_id": "U1",
            }
        ),
        # 2: missing text
        jline({"id": "C-002", "channel": "电话"}),
        # 3: whitespace-only text
        jline({"id": "C-003", "text": "   "}),
        # 4: invalid UTF-8 bytes inside the line
        b'{"id": "C-004", "text": "\xff\xfe\xd6\xd0\xce\xc4"}',
        # 5: blank line (skipped, but it still counts for line numbers)
        b"",
        # 6: text far over the limit
        jline({"id": "C-006", "text": LONG_TEXT}),
        # 7: duplicate of the first row's id
        jline({"id": "C-001", "text": "另一条投诉：网点排队两个小时"}),
        # 8: impossible date
        jline({"id": "C-008", "text": BAD_DATE_TEXT, "received_at": "2026-13-45"}),
        # 9: truncated JSON
        b'{"id": "C-009", "text": "\xe6\x89\x8b\xe6\x9c\xba\xe9\x93\xb6\xe8\xa1\x8c',
        # 10: good, unknown channel: a warning, the row is still analysed
        jline({"id": "C-010", "text": "网点柜员态度很差", "channel": "火星", "received_at": "2026-10-05"}),
        # 11: good, text holding a U+2028 line separator (valid unescaped in JSON)
        jline({"id": "C-011", "text": "手机银行升级后\u2028登录就闪退", "channel": "APP"}),
        # 12: good, ISO date with time zone
        jline({"id": "C-012", "text": "理财经理承诺保本", "received_at": "2026-10-31T23:59:00+08:00"}),
    ]
    path = tmp_path / "batch.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_jsonl_accepts_every_good_row(jsonl_batch: Path) -> None:
    accepted, _ = run(jsonl_batch)
    assert [(c.id, c.row) for c in accepted] == [("C-001", 1), ("C-010", 10), ("C-011", 11), ("C-012", 12)]


def test_jsonl_reports_each_bad_row_with_row_and_field(jsonl_batch: Path) -> None:
    _, errors = run(jsonl_batch)
    assert where(errors) == {
        (2, "text", "error"),
        (3, "text", "error"),
        (4, "row", "error"),
        (6, "text", "error"),
        (7, "id", "error"),
        (8, "received_at", "error"),
        (9, "row", "error"),
        (10, "channel", "warning"),
    }
    by_row = {e.row: e for e in errors}
    assert "missing" in by_row[2].reason
    assert "empty" in by_row[3].reason
    assert "UTF-8" in by_row[4].reason
    assert "5000" in by_row[6].reason
    assert "duplicate" in by_row[7].reason and "row 1" in by_row[7].reason
    assert "JSON" in by_row[9].reason
    assert by_row[7].id == "C-001" and by_row[8].id == "C-008"


def test_jsonl_error_reasons_never_quote_the_row_text(jsonl_batch: Path) -> None:
    _, errors = run(jsonl_batch)
    assert_no_text_in_reasons(errors, [GOOD_TEXT, LONG_TEXT, BAD_DATE_TEXT, "另一条投诉", "手机银行"])
    assert all("2026-13-45" not in e.reason for e in errors)


def test_jsonl_personal_data_is_masked_in_accepted_text(jsonl_batch: Path) -> None:
    accepted, _ = run(jsonl_batch)
    first = accepted[0]
    assert CARD not in first.text and MOBILE not in first.text
    assert "6217***********4568" in first.text and "138****5678" in first.text
    assert first.pii_masked == 2
    assert "盗刷" in first.text


def test_jsonl_period_channel_and_dates(jsonl_batch: Path) -> None:
    accepted, _ = run(jsonl_batch)
    by_id = {c.id: c for c in accepted}
    assert by_id["C-001"].received_at == datetime(2026, 9, 3, 10, 21)
    assert by_id["C-001"].period == "2026-09"
    assert by_id["C-001"].channel == "电话"  # 热线 is an alias
    assert by_id["C-010"].period == "2026-10"
    assert by_id["C-010"].channel is None  # unknown channel: inferred later from the text
    assert by_id["C-011"].channel == "APP" and by_id["C-011"].period is None
    assert by_id["C-012"].period == "2026-10"
    for c in accepted:
        assert c.period is None or re.fullmatch(r"\d{4}-\d{2}", c.period)


def test_max_text_chars_is_applied_after_normalisation(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    path.write_bytes(jline({"id": "x", "text": "投诉" * 30 + "　" * 100}) + b"\n")
    accepted, errors = prepare(read_rows(path), canonical_channel=canonical_channel, max_text_chars=60)
    assert [c.id for c in accepted] == ["x"] and errors == []


def test_personal_data_in_ids_and_metadata_is_masked(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    row = {
        "id": f"手机{MOBILE}",
        "text": "催收电话太多",
        "agent_note": f"客户卡号{CARD}",
        "metadata": {"tel": MOBILE},
    }
    path.write_bytes(jline(row) + b"\n")
    accepted, errors = run(path)
    assert errors == []
    dumped = accepted[0].model_dump_json()
    assert MOBILE not in dumped and CARD not in dumped
    assert set(accepted[0].metadata) == {"agent_note", "tel"}


def test_near_duplicate_rows_are_linked_to_the_first(tmp_path: Path) -> None:
    text = "我在手机银行转账的时候一直提示系统繁忙，试了三次都失败了，耽误了给供应商付款，希望尽快修复"
    path = tmp_path / "b.jsonl"
    path.write_bytes(
        b"\n".join([jline({"id": "a", "text": text}), jline({"id": "b", "text": text.replace("三", "四")})])
    )
    accepted, _ = run(path)
    assert [(c.id, c.duplicate_of) for c in accepted] == [("a", None), ("b", "a")]


# ── CSV ───────────────────────────────────────────────────────────────────────


def test_csv_rows_are_read_with_spreadsheet_row_numbers(tmp_path: Path) -> None:
    path = tmp_path / "batch.csv"
    path.write_bytes(
        f'\ufeffid,text,channel,received_at\nR1,"卡号{CARD}被盗刷，请冻结",电话,2026/09/03 10:21\n'.encode()
        + b"R2,\xc4\xe3\xba\xc3\xd2\xf8\xd0\xd0,APP,2026-09-04\n"  # GBK bytes: not UTF-8
        + "R3,网点排队太久,网点,2026-09-05\n".encode()
        + "R4,,电话,2026-09-06\n".encode()
    )
    accepted, errors = run(path)
    assert [(c.id, c.row) for c in accepted] == [("R1", 2), ("R3", 4)]
    assert CARD not in accepted[0].text
    assert accepted[0].period == "2026-09"
    assert where(errors) == {(3, "text", "error"), (4, "channel", "warning"), (5, "text", "error")}
    assert_no_text_in_reasons(errors, ["网点排队太久"])


def test_csv_without_text_column_is_an_input_file_error(tmp_path: Path) -> None:
    path = tmp_path / "batch.csv"
    path.write_text("id,content\n1,网点排队太久\n", encoding="utf-8")
    with pytest.raises(InputFileError, match="text"):
        read_rows(path)


# ── XLSX ──────────────────────────────────────────────────────────────────────


def test_xlsx_rows_with_datetime_cells(tmp_path: Path) -> None:
    wb = Workbook()
    ws = wb.active
    ws.append(["id", "text", "channel", "received_at", "customer_segment"])
    ws.append(["X1", f"客户卡号{CARD}被冻结", "APP", datetime(2026, 10, 5, 9, 30), "老年客户"])
    ws.append([1002, "积分兑换失败", "电话", "2026-09-30 08:00:00", None])
    ws.append([None, None, None, None, None])  # empty row: skipped
    ws.append(["X4", None, "APP", datetime(2026, 10, 6), None])
    ws.append(["X5", "营销活动返现没到账", None, "2026-13-45", None])
    path = tmp_path / "batch.xlsx"
    wb.save(path)

    accepted, errors = run(path)
    assert [(c.id, c.row) for c in accepted] == [("X1", 2), ("1002", 3)]
    x1 = accepted[0]
    assert x1.received_at == datetime(2026, 10, 5, 9, 30) and x1.period == "2026-10"
    assert x1.customer_segment == "老年客户"
    assert CARD not in x1.text
    assert accepted[1].period == "2026-09"
    assert where(errors) == {(5, "text", "error"), (6, "received_at", "error")}


def test_xlsx_without_text_header_is_an_input_file_error(tmp_path: Path) -> None:
    wb = Workbook()
    # 内容 would be read as text (data/column_aliases.yaml); 备注 (a remark) matches no field.
    wb.active.append(["id", "备注"])
    wb.active.append(["1", "网点排队太久"])
    path = tmp_path / "batch.xlsx"
    wb.save(path)
    with pytest.raises(InputFileError, match="no column for text"):
        read_rows(path)


def test_corrupt_xlsx_is_an_input_file_error(tmp_path: Path) -> None:
    path = tmp_path / "batch.xlsx"
    path.write_bytes(b"not a zip file")
    with pytest.raises(InputFileError, match="xlsx"):
        read_rows(path)


# ── JSON ──────────────────────────────────────────────────────────────────────

RECORDS = [
    {"id": "J1", "text": "客服电话打不通", "channel": "电话", "received_at": "2026-09-01"},
    {"id": "J2", "text": "手机银行登录闪退", "channel": "APP"},
    "not an object",
    {"id": "J4"},
]


@pytest.mark.parametrize("doc", [RECORDS, {"complaints": RECORDS}], ids=["array", "object"])
def test_json_array_and_complaints_object(tmp_path: Path, doc: object) -> None:
    path = tmp_path / "batch.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    accepted, errors = run(path)
    assert [(c.id, c.row) for c in accepted] == [("J1", 1), ("J2", 2)]
    assert accepted[0].period == "2026-09"
    assert where(errors) == {(3, "row", "error"), (4, "text", "error")}


@pytest.mark.parametrize(
    "content", [b'{"complaints": [{"id": 1', b'{"items": []}', b'[{"id": "1", "text": "\xff"}]']
)
def test_unreadable_json_document_is_an_input_file_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "batch.json"
    path.write_bytes(content)
    with pytest.raises(InputFileError, match="batch.json"):
        read_rows(path)


# ── file-level problems ───────────────────────────────────────────────────────


def test_unsupported_extension_is_an_input_file_error(tmp_path: Path) -> None:
    path = tmp_path / "batch.txt"
    path.write_text("id,text\n1,网点排队太久\n", encoding="utf-8")
    with pytest.raises(InputFileError, match=r"\.txt"):
        read_rows(path)


def test_missing_file_is_an_input_file_error(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="not found"):
        read_rows(tmp_path / "nope.jsonl")
