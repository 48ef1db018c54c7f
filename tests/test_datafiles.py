"""The bundled data files and the errors a user sees when an edited copy is broken."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools.datafile import DataFileError
from tools.deps import load_data
from tools.matrix import load_matrix
from tools.settings import REPO_DATA, Settings
from tools.taxonomy import load_taxonomy

L2_IDS = (
    "人-服务态度 人-业务能力 人-服务规范 人-响应时效 "
    "机-面客系统 机-交易处理 机-身份认证 机-运营系统 "
    "物-产品设计 物-业务流程 物-信息话术 物-营销活动 "
    "法-风控管控 法-制度收费 法-监管合规 法-权益保护 "
    "环-智能服务 环-适老无障碍 环-渠道可达 环-外部环境"
).split()


def raw(name: str) -> dict[str, Any]:
    """A bundled data file parsed as plain YAML, for making broken copies."""
    return yaml.safe_load((REPO_DATA / f"{name}.yaml").read_text(encoding="utf-8"))


def write_yaml(path: Path, doc: Any) -> Path:
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return load_data(Settings(home=tmp_path_factory.mktemp("home")))


# ── the bundled files ─────────────────────────────────────────────────────────


def test_service_matrix_departments_are_complete(data: dict[str, Any]) -> None:
    matrix = data["matrix"]
    assert len(matrix.departments) >= 10
    assert len({d.id for d in matrix.departments}) == len(matrix.departments)
    for d in matrix.departments:
        assert d.owner_role.strip(), d.id
        assert d.business_lines, d.id
        assert len(d.keywords) >= 5, d.id
        assert len(d.description) >= 20, d.id
    # Back-office departments (it_operations, risk_fraud) face no channel on purpose; they
    # get complaints through the root-cause labels they own. Every intake channel is served.
    facing = [d for d in matrix.departments if d.channels]
    assert len(facing) >= 10
    for d in matrix.departments:
        assert d.channels or d.owns_labels, d.id
    served = {c for d in matrix.departments for c in d.channels}
    assert served == {c.id for c in matrix.channels}


def test_taxonomy_has_exactly_the_twenty_l2_labels(data: dict[str, Any]) -> None:
    taxonomy = data["taxonomy"]
    assert [lab.id for lab in taxonomy.labels] == L2_IDS
    assert taxonomy.dimension_ids == ["人", "机", "物", "法", "环"]
    for lab in taxonomy.labels:
        assert lab.id.split("-")[0] == lab.dimension
        assert lab.definition.strip() and lab.use_when.strip() and lab.not_use_when.strip(), lab.id
        assert lab.cues, lab.id
        assert len(lab.exemplars) >= 5, lab.id
        assert len(set(lab.exemplars)) == len(lab.exemplars), lab.id


def test_knowledge_and_cases_are_large_enough(data: dict[str, Any]) -> None:
    assert len(data["knowledge"].entries) >= 30
    assert len(data["cases"].cases) >= 20


def test_cross_references_resolve(data: dict[str, Any]) -> None:
    departments = {d.id for d in data["matrix"].departments}
    labels = data["taxonomy"].label_ids
    dimensions = set(data["taxonomy"].dimension_ids)
    for case in data["cases"].cases:
        assert case.owner_department in departments, case.id
        assert case.dimension in dimensions, case.id
        assert set(case.labels) <= labels, case.id
    for entry in data["knowledge"].entries:
        assert set(entry.labels) <= labels, entry.id
        assert set(entry.departments) <= departments, entry.id
    for d in data["matrix"].departments:
        assert set(d.owns_labels) <= labels, d.id


def test_every_l2_label_is_owned_at_most_once(data: dict[str, Any]) -> None:
    owned = [lab for d in data["matrix"].departments for lab in d.owns_labels]
    assert len(owned) == len(set(owned))


# ── broken copies ─────────────────────────────────────────────────────────────


def _duplicate_department(doc: dict[str, Any]) -> None:
    doc["departments"].append(copy.deepcopy(doc["departments"][0]))


def _unknown_business_line(doc: dict[str, Any]) -> None:
    doc["departments"][0]["business_lines"].append("加密货币")


def _missing_owner_role(doc: dict[str, Any]) -> None:
    del doc["departments"][0]["owner_role"]


@pytest.mark.parametrize(
    ("breaker", "expected"),
    [
        (_duplicate_department, ["id=card_center", "duplicate department id"]),
        (_unknown_business_line, ["id=card_center", "business_lines", "加密货币"]),
        (_missing_owner_role, ["id=card_center", "owner_role", "Field required"]),
    ],
    ids=["duplicate-id", "unknown-business-line", "missing-owner-role"],
)
def test_broken_service_matrix_names_file_and_entry(
    tmp_path: Path, breaker: Callable[[dict[str, Any]], None], expected: list[str]
) -> None:
    doc = raw("service_matrix")
    breaker(doc)
    path = write_yaml(tmp_path / "my_matrix.yaml", doc)
    with pytest.raises(DataFileError) as info:
        load_matrix(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in expected:
        assert fragment in message
    assert info.value.path == str(path)


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "service_matrix.yaml"
    path.write_text('version: "1"\nchannels:\n  - id: 电话\n    aliases: [热线, 客服\n', encoding="utf-8")
    with pytest.raises(DataFileError) as info:
        load_matrix(path)
    assert str(path) in str(info.value)
    assert "line " in str(info.value)


def test_non_mapping_and_missing_files_are_data_file_errors(tmp_path: Path) -> None:
    path = tmp_path / "taxonomy.yaml"
    path.write_text("- just\n- a list\n", encoding="utf-8")
    with pytest.raises(DataFileError, match="mapping"):
        load_taxonomy(path)
    with pytest.raises(DataFileError, match="file not found"):
        load_taxonomy(tmp_path / "missing.yaml")


def test_taxonomy_with_unknown_dimension_names_the_label(tmp_path: Path) -> None:
    doc = raw("taxonomy")
    doc["labels"][3]["dimension"] = "神"
    path = write_yaml(tmp_path / "taxonomy.yaml", doc)
    with pytest.raises(DataFileError) as info:
        load_taxonomy(path)
    message = str(info.value)
    assert str(path) in message
    assert "id=人-响应时效" in message and "unknown dimension '神'" in message


def test_owns_labels_naming_an_unknown_label_fails_in_load_data(tmp_path: Path) -> None:
    doc = raw("service_matrix")
    doc["departments"][1].setdefault("owns_labels", []).append("人-不存在")
    path = write_yaml(tmp_path / "matrix.yaml", doc)
    load_matrix(path)  # the matrix alone is fine; the cross-check with the taxonomy is not
    with pytest.raises(DataFileError) as info:
        load_data(Settings(home=tmp_path / "home", service_matrix_path=path))
    message = str(info.value)
    assert str(path) in message
    assert "id=deposit_account" in message and "人-不存在" in message
