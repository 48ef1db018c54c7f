"""Other banks' complaint exports as they come: GBK, UTF-16 or BOM-marked CSV, Chinese headers,
a title row above the header; and, when nothing can be read, one line that says why."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from openpyxl import Workbook
from typer.testing import CliRunner

from cli.main import app
from tools.ingest import InputFileError, prepare, read_batch, read_rows, rows_from_bytes
from tools.text import normalize

runner = CliRunner()

HEADER = ["工单编号", "投诉内容", "受理渠道", "受理时间", "客户类型", "业务条线", "产品名称", "备注"]
ROWS = [
    [
        "GD-001",
        "信用卡年费没有提前告知就扣了，要求退还",
        "电话",
        "2026/09/03 10:21",
        "老年客户",
        "信用卡",
        "白金卡",
        "回访",
    ],
    [
        "GD-002",
        "手机银行转账一直提示系统繁忙，耽误还款",
        "APP",
        "2026-09-04",
        "普通客户",
        "零售",
        "手机银行",
        "",
    ],
    ["GD-003", "网点排队两个小时，只开一个窗口", "网点", "2026-09-05 09:00", "", "零售", "", ""],
]


def _csv(rows: list[list[str]], sep: str = ",") -> str:
    return "".join(sep.join(r) + "\r\n" for r in rows)


def _check(path: Path, encoding: str | None, **options: str) -> None:
    """Every row read and accepted, with the right fields."""
    batch = read_batch(path, **options)
    assert batch.info.encoding == encoding
    accepted, errors = prepare(batch.rows, canonical_channel=lambda v: v, max_text_chars=5000)
    assert errors == []
    assert [c.id for c in accepted] == ["GD-001", "GD-002", "GD-003"]
    first = accepted[0]
    assert first.text == normalize(ROWS[0][1])
    assert first.channel == "电话"
    assert first.received_at == datetime(2026, 9, 3, 10, 21) and first.period == "2026-09"
    assert (first.customer_segment, first.business_line, first.product) == ("老年客户", "信用卡", "白金卡")
    assert first.metadata == {"备注": "回访"}
    assert accepted[2].received_at == datetime(2026, 9, 5, 9, 0)
    assert batch.info.columns == {
        "id": "工单编号",
        "text": "投诉内容",
        "channel": "受理渠道",
        "received_at": "受理时间",
        "customer_segment": "客户类型",
        "business_line": "业务条线",
        "product": "产品名称",
    }


def test_gbk_csv_with_chinese_headers(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(_csv([HEADER, *ROWS]).encode("gbk"))
    _check(path, "GB18030")


def test_utf16_tab_separated_csv(tmp_path: Path) -> None:
    # Excel's "Unicode text": UTF-16 with a byte-order mark, tab-separated.
    path = tmp_path / "export.csv"
    path.write_bytes(_csv([HEADER, *ROWS], "\t").encode("utf-16"))
    _check(path, "UTF-16")


def test_utf8_bom_csv(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(_csv([HEADER, *ROWS]).encode("utf-8-sig"))
    _check(path, "UTF-8 (BOM)")


def test_named_encoding_overrides_detection(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(_csv([HEADER, *ROWS]).encode("gbk"))
    batch = read_batch(path, encoding="gbk")
    assert (batch.info.encoding, batch.info.detected) == ("GBK", False)
    with pytest.raises(InputFileError, match="--encoding: unknown encoding"):
        read_batch(path, encoding="no-such-codec")


def test_xlsx_with_chinese_headers_and_a_title_row(tmp_path: Path) -> None:
    wb = Workbook()
    ws = wb.active
    ws.append(["某银行客户投诉工单导出（2026年9月）"])
    ws.merge_cells("A1:H1")
    ws.append(HEADER)
    for r in ROWS:
        ws.append([datetime(2026, 9, 3, 10, 21) if v == "2026/09/03 10:21" else (v or None) for v in r])
    ws.append([None] * 8)
    ws.append([None] * 8)  # trailing empty rows: ignored
    path = tmp_path / "export.xlsx"
    wb.save(path)
    _check(path, None)
    assert read_batch(path).info.header_row == 2
    assert [r.row for r in read_rows(path)] == [3, 4, 5]  # as the spreadsheet numbers them


def test_aliases_ignore_case_spaces_and_full_width(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text(
        " Complaint ID ,ＮＡＲＲＡＴＩＶＥ,Date Received\n1,转账失败,2026-09-03\n", encoding="utf-8"
    )
    batch = read_batch(path)
    assert batch.info.columns == {
        "id": "Complaint ID",
        "text": "ＮＡＲＲＡＴＩＶＥ",
        "received_at": "Date Received",
    }
    assert batch.rows[0].data == {"id": "1", "text": "转账失败", "received_at": "2026-09-03"}


def test_exact_field_name_wins_over_an_alias(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    path.write_text(
        json.dumps({"id": "1", "内容": "摘要", "text": "正文"}, ensure_ascii=False), encoding="utf-8"
    )
    assert read_rows(path)[0].data == {"id": "1", "内容": "摘要", "text": "正文"}


def test_columns_name_what_the_aliases_do_not_know(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text("单据,诉求详情,投诉内容\nA1,手机银行闪退,旧的摘要\n", encoding="utf-8")
    rows = read_rows(path, columns="text=诉求详情, id=单据")
    # The alias match (投诉内容) gives way to the named column and stays as metadata.
    assert rows[0].data == {"id": "A1", "text": "手机银行闪退", "投诉内容": "旧的摘要"}
    with pytest.raises(InputFileError, match="no column '诉求内容' for text"):
        read_rows(path, columns="text=诉求内容")
    for spec, message in (("text", "not FIELD=COLUMN"), ("body=单据", "'body' is not a field")):
        with pytest.raises(InputFileError, match=message):
            read_rows(path, columns=spec)


def test_upload_path_detects_the_encoding_too() -> None:
    rows = rows_from_bytes(_csv([HEADER, *ROWS]).encode("gbk"), "upload.csv")
    assert [r.data["id"] for r in rows if r.data] == ["GD-001", "GD-002", "GD-003"]
    assert rows_from_bytes(b'{"\xb1\xe0\xba\xc5": "1", "text": "x"}', "upload.jsonl")[0].data == {
        "id": "1",
        "text": "x",
    }


# ── through the real command ─────────────────────────────────────────────────


def _analyze(path: Path, voc_home: Path, out: Path, *extra: str) -> tuple[int, str]:
    args = ["analyze", str(path), "--out", str(out), "--home", str(voc_home), "--engine", "rules"]
    result = runner.invoke(app, [*args, "--no-track", *extra])
    return result.exit_code, result.output


def test_cli_reads_a_gbk_export_and_says_how(voc_home: Path, tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(_csv([HEADER, *ROWS]).encode("gbk"))
    code, output = _analyze(path, voc_home, tmp_path / "out", "--columns", "text=投诉内容")
    assert code == 0, output
    assert "Read export.csv as GB18030; columns id=工单编号, text=投诉内容" in output
    assert "3 received · 3 analysed · 0 rejected" in output
    assert (tmp_path / "out" / "errors.jsonl").read_text(encoding="utf-8") == ""


def test_cli_bad_encoding_or_columns_exit_2(voc_home: Path, tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(_csv([HEADER, *ROWS]).encode("gbk"))
    code, output = _analyze(path, voc_home, tmp_path / "out", "--encoding", "klingon")
    assert code == 2 and "--encoding: unknown encoding 'klingon'" in output
    code, output = _analyze(path, voc_home, tmp_path / "out", "--columns", "text=诉求内容")
    assert code == 2 and "no column '诉求内容' for text" in output


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (bytes(range(256)) * 8, "not a text file"),
        (
            "编号,备注,手机号\n1,网点排队太久,13812345678\n".encode("gbk"),
            "(read as GB18030): no column for text",
        ),
        (b"id,text\n1,\n2,   \n", "all 2 rows were rejected, most often text: text is empty"),
    ],
    ids=["binary", "no-text-column", "every-row-rejected"],
)
def test_cli_nothing_readable_is_one_line_and_exit_2(
    voc_home: Path, tmp_path: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(content)
    code, output = _analyze(path, voc_home, tmp_path / "out")
    assert code == 2, output
    lines = [ln for ln in output.splitlines() if ln.strip() and not ln.startswith("Read ")]
    assert len(lines) == 1 and expected in lines[0], output
    assert "网点排队太久" not in output and "13812345678" not in output  # no cell value echoed
