"""The service matrix and taxonomy as spreadsheets: CSV/XLSX loading, export, errors and warnings."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml
from openpyxl import Workbook
from typer.testing import CliRunner

from cli.main import app
from tools import datatable as dt
from tools.datafile import DataFileError
from tools.matrix import load_matrix, matrix_sheets
from tools.settings import REPO_DATA
from tools.taxonomy import load_taxonomy, taxonomy_sheets

runner = CliRunner()
BUNDLED_MATRIX = REPO_DATA / "service_matrix.yaml"
BUNDLED_TAXONOMY = REPO_DATA / "taxonomy.yaml"
HEADER = ["部门", "负责人", "业务条线", "渠道", "关键词", "描述"]


def write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


def write_xlsx(path: Path, sheets: dict[str, list[list[str]]]) -> Path:
    wb = Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for row in rows:
            ws.append(row)
    wb.save(path)
    return path


def bank_rows() -> list[list[str]]:
    """The bundled departments as a bank would keep them: Chinese names, no ids, `|` between values."""
    matrix = load_matrix(BUNDLED_MATRIX)
    rows = [HEADER]
    for d in matrix.departments:
        keywords = d.keywords + [a for p in d.products for a in (p.name, *p.aliases)]
        rows.append(
            [
                d.name,
                d.owner_role,
                "|".join(d.business_lines),
                "|".join(d.channels),
                "|".join(keywords),
                d.description,
            ]
        )
    return rows


# ── round trips ───────────────────────────────────────────────────────────────


def test_matrix_round_trip_yaml_xlsx_csv(tmp_path: Path) -> None:
    original = load_matrix(BUNDLED_MATRIX)
    xlsx = dt.write_xlsx(tmp_path / "matrix.xlsx", matrix_sheets(original))
    from_xlsx = load_matrix(xlsx)
    assert from_xlsx.model_dump() == original.model_dump()
    dt.write_csv(tmp_path / "csv" / "matrix.csv", matrix_sheets(from_xlsx))
    from_csv = load_matrix(tmp_path / "csv" / "matrix.csv")
    assert from_csv.model_dump() == original.model_dump()
    assert from_csv.load_warnings == []


def test_taxonomy_round_trip_yaml_xlsx_csv(tmp_path: Path) -> None:
    original = load_taxonomy(BUNDLED_TAXONOMY)
    xlsx = dt.write_xlsx(tmp_path / "taxonomy.xlsx", taxonomy_sheets(original))
    from_xlsx = load_taxonomy(xlsx)
    assert from_xlsx.model_dump() == original.model_dump()
    dt.write_csv(tmp_path / "csv" / "taxonomy.csv", taxonomy_sheets(from_xlsx))
    assert load_taxonomy(tmp_path / "csv" / "taxonomy.csv").model_dump() == original.model_dump()


def test_voc_data_export_writes_loadable_spreadsheets(tmp_path: Path) -> None:
    for fmt in ("xlsx", "csv"):
        out = tmp_path / fmt
        result = runner.invoke(
            app, ["data", "export", "--format", fmt, "--out", str(out), "--home", str(tmp_path)]
        )
        assert result.exit_code == 0, result.output
        assert (
            load_matrix(out / f"service_matrix.{fmt}").model_dump()
            == load_matrix(BUNDLED_MATRIX).model_dump()
        )
        assert (
            load_taxonomy(out / f"taxonomy.{fmt}").model_dump()
            == load_taxonomy(BUNDLED_TAXONOMY).model_dump()
        )


# ── a bank's own sheet ────────────────────────────────────────────────────────


def test_a_bare_chinese_sheet_loads_with_names_as_ids(tmp_path: Path) -> None:
    for encoding in ("utf-8-sig", "gb18030"):
        path = write_csv(tmp_path / f"matrix-{encoding}.csv", bank_rows(), encoding=encoding)
        matrix = load_matrix(path)
        assert [d.id for d in matrix.departments][:2] == ["信用卡中心", "个人存款与账户部"]
        assert matrix.department("信用卡中心").owner_role == "信用卡中心客户体验室负责人"
        assert "年费" in matrix.department("信用卡中心").keywords
        assert matrix.load_warnings == []


def test_a_taxonomy_sheet_needs_only_dimension_name_cues_and_exemplars(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "tax.xlsx",
        {
            "标签": [
                ["维度", "名称", "定义", "线索词", "示例", "默认等级"],
                ["人", "服务态度", "态度问题", "态度差、不耐烦", "客服态度很差，挂我电话|柜员不耐烦", "重要"],
                ["机", "系统故障", "系统问题", "闪退；打不开", "APP一直闪退", ""],
            ]
        },
    )
    taxonomy = load_taxonomy(path)
    assert [lab.id for lab in taxonomy.labels] == ["人-服务态度", "机-系统故障"]
    assert taxonomy.labels[0].cues == ["态度差", "不耐烦"]
    assert taxonomy.labels[0].exemplars == ["客服态度很差，挂我电话", "柜员不耐烦"]
    assert taxonomy.labels[1].default_grade == "重要"
    assert taxonomy.dimension_ids == ["人", "机"] and taxonomy.dimensions[0].name == "人员"


def test_unicode_ids_are_accepted_but_not_control_characters(tmp_path: Path) -> None:
    doc = yaml.safe_load(BUNDLED_MATRIX.read_text(encoding="utf-8"))
    doc["departments"][0]["id"] = "信用卡中心"
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    assert load_matrix(path).departments[0].id == "信用卡中心"
    doc["departments"][0]["id"] = "信用卡\t中心"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    with pytest.raises(DataFileError, match="control characters"):
        load_matrix(path)


def test_unknown_channel_is_mapped_or_added_with_a_warning(tmp_path: Path) -> None:
    rows = [HEADER, ["信用卡中心", "负责人甲", "信用卡|加密货币", "手机银行|视频柜员", "年费|分期", "信用卡"]]
    matrix = load_matrix(write_csv(tmp_path / "matrix.csv", rows))
    dept = matrix.departments[0]
    assert dept.channels == ["APP", "视频柜员"]  # 手机银行 is an alias of APP
    assert dept.business_lines == ["信用卡", "加密货币"]
    assert {"视频柜员"} <= {c.id for c in matrix.channels}
    warnings = "\n".join(matrix.load_warnings)
    assert "matrix.csv, row 2, column 渠道 (channels): unknown channel '视频柜员'" in warnings
    assert "unknown business line '加密货币'" in warnings
    assert "手机银行" not in warnings


def test_a_bad_cell_names_sheet_row_and_column(tmp_path: Path) -> None:
    rows = bank_rows()[:6]
    rows[5][4] = ""  # row 6 of the sheet: no keywords
    rows.insert(6, ["零售营销部", "", "", "", "积分", ""])  # row 7: fine, owner role defaulted
    rows.insert(7, ["信用卡中心", "某人", "", "", "年费", ""])  # row 8: a second 信用卡中心
    path = write_xlsx(tmp_path / "matrix.xlsx", {"说明": [["key", "value"], ["version", "7"]], "部门": rows})
    with pytest.raises(DataFileError) as info:
        load_matrix(path)
    message = str(info.value)
    assert "matrix.xlsx, sheet 部门, row 6, column 关键词 (keywords): needs keywords or products" in message
    assert "matrix.xlsx, sheet 部门, row 8, column 部门 (name): duplicate department '信用卡中心'" in message
    assert "row 7" not in message
    tax = write_xlsx(
        tmp_path / "tax.xlsx",
        {"labels": [["id", "cues", "exemplars", "default_grade"], ["人-态度", "态度差", "x", "很急"]]},
    )
    with pytest.raises(
        DataFileError, match=r"tax.xlsx, sheet labels, row 2, column default_grade: Input should be"
    ):
        load_taxonomy(tax)


# ── through the CLI ───────────────────────────────────────────────────────────


def test_analyze_with_a_chinese_spreadsheet_matrix(tmp_path: Path) -> None:
    rows = bank_rows()
    rows[1][3] += "|视频柜员"  # an unknown channel: a warning, not a refusal
    matrix = write_csv(tmp_path / "matrix.csv", rows)
    batch = tmp_path / "batch.jsonl"
    samples = (REPO_DATA / "samples" / "complaints.jsonl").read_text(encoding="utf-8").splitlines()[:12]
    batch.write_text("\n".join(samples) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    args = ["analyze", str(batch), "--service-matrix", str(matrix), "--out", str(out)]
    result = runner.invoke(app, [*args, "--home", str(tmp_path / "home"), "--engine", "rules", "--no-track"])
    assert result.exit_code == 0, result.output
    assert "unknown channel '视频柜员'" in result.output
    results = [json.loads(line) for line in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    names = {r[0] for r in rows[1:]}
    owners = {r["attribution"]["department_id"] for r in results}
    assert results and owners <= names, owners
    assert len(owners) >= 2


def test_a_control_character_in_a_channel_cell_is_a_cell_error(tmp_path: Path) -> None:
    rows = [HEADER, ["信用卡中心", "负责人甲", "信用卡", "手机银行|视频\\t柜员", "年费", ""]]
    rows[1][3] = rows[1][3].replace("\\t", "\t")
    with pytest.raises(
        DataFileError, match=r"matrix.csv, row 2, column 渠道 \(channels\): channel .*control"
    ):
        load_matrix(write_csv(tmp_path / "matrix.csv", rows))
