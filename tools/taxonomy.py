"""The 人/机/物/法/环 root-cause taxonomy: a data dictionary with cues and exemplars."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from tools import datatable as dt
from tools.datafile import DataFileError, load_model

Grade = Literal["特急", "紧急", "重要", "一般"]
GRADES: tuple[Grade, ...] = ("特急", "紧急", "重要", "一般")


class Dimension(BaseModel):
    """An L1 dimension (人, 机, 物, 法, 环 in the default taxonomy)."""

    id: str = Field(min_length=1)
    name: str
    english: str = ""
    description: str = ""


class L3(BaseModel):
    """A finer label under an L2 label."""

    name: str
    cues: list[str] = Field(default_factory=list)


class Label(BaseModel):
    """An L2 label with its data-dictionary entry."""

    id: str = Field(min_length=1)
    dimension: str
    name: str
    definition: str
    use_when: str
    not_use_when: str
    default_grade: Grade = "重要"
    cues: list[str] = Field(min_length=1)
    l3: list[L3] = Field(default_factory=list)
    exemplars: list[str] = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        return dt.check_id(value)


class Taxonomy(BaseModel):
    """The whole taxonomy file."""

    version: str
    name: str = "taxonomy"
    dimensions: list[Dimension] = Field(min_length=1)
    labels: list[Label] = Field(min_length=1)
    negative_hints: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _cross_check(self) -> Taxonomy:
        dims = {d.id for d in self.dimensions}
        problems: list[str] = []
        seen: set[str] = set()
        for i, lab in enumerate(self.labels):
            where = f"labels[{i}](id={lab.id})"
            if lab.id in seen:
                problems.append(f"{where}: duplicate label id")
            seen.add(lab.id)
            if lab.dimension not in dims:
                problems.append(f"{where}.dimension: unknown dimension {lab.dimension!r}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def label(self, label_id: str) -> Label:
        for lab in self.labels:
            if lab.id == label_id:
                return lab
        raise KeyError(label_id)

    @property
    def label_ids(self) -> set[str]:
        return {lab.id for lab in self.labels}

    @property
    def dimension_ids(self) -> list[str]:
        return [d.id for d in self.dimensions]


def load_taxonomy(path: Path | str) -> Taxonomy:
    """Load and validate a taxonomy: YAML or JSON, or a CSV/XLSX table of L2 labels."""
    if dt.is_table(path):
        return taxonomy_from_table(Path(path))
    return load_model(path, Taxonomy)


# ── the taxonomy as a table (CSV or XLSX) ─────────────────────────────────────

LABEL_SHEET = ("labels", "label", "标签", "l2", "二级标签", "taxonomy", "分类")
L3_SHEET = ("l3", "三级标签", "细分")
DIMENSION_SHEET = ("dimensions", "维度", "l1", "一级维度")
HINT_SHEET = ("negative_hints", "排除提示", "非投诉提示")
LABEL_COLUMNS: dict[str, tuple[str, ...]] = {
    "id": ("label", "标签", "l2", "标签编号", "标签id", "l2标签", "二级标签"),
    "dimension": ("维度", "l1", "一级维度", "dim"),
    "name": ("名称", "标签名称", "二级标签名称"),
    "definition": ("定义",),
    "use_when": ("适用", "适用情形", "何时使用"),
    "not_use_when": ("不适用", "不适用情形", "排除"),
    "default_grade": ("grade", "默认等级", "等级"),
    "cues": ("cue", "线索词", "线索"),
    "exemplars": ("exemplar", "examples", "示例", "例句", "典型投诉"),
}
L3_COLUMNS: dict[str, tuple[str, ...]] = {
    "label": ("标签", "l2", "二级标签"),
    "name": ("名称", "l3", "三级标签"),
    "cues": ("cue", "线索词", "线索"),
}
DIMENSION_COLUMNS: dict[str, tuple[str, ...]] = {
    "id": ("维度", "编号", "l1"),
    "name": ("名称",),
    "english": ("英文", "英文名"),
    "description": ("描述", "说明"),
}
HINT_COLUMNS: dict[str, tuple[str, ...]] = {"hint": ("negative_hint", "提示", "排除提示")}


def taxonomy_from_table(path: Path) -> Taxonomy:
    """A taxonomy from a workbook: a labels sheet (one row per L2 label), and optionally l3,
    dimensions, negative_hints and about sheets. An id may be left out when the dimension and name
    are given (维度 人 + 名称 服务态度 -> 人-服务态度); without a dimensions sheet the dimensions are
    those the labels name, described as in the bundled taxonomy when it has them."""
    from tools.settings import REPO_DATA

    book = dt.read_workbook(path)
    sheet = dt.main_sheet(book, LABEL_SHEET, (L3_SHEET, DIMENSION_SHEET, HINT_SHEET, dt.ABOUT_SHEET))
    sheet.use(LABEL_COLUMNS)
    problems: list[str] = []
    docs: dict[str, tuple[dt.Row, dict[str, object]]] = {}
    for row in sheet.rows:
        ident, dim, name = row.get("id"), row.get("dimension"), row.get("name")
        if not ident and dim and name:
            ident = f"{dim}-{name}"
        if not dim and "-" in ident:
            dim = ident.split("-", 1)[0]
        doc: dict[str, object] = {
            "id": ident,
            "dimension": dim,
            "name": name or ident.split("-", 1)[-1],
            "definition": row.get("definition"),
            "use_when": row.get("use_when"),
            "not_use_when": row.get("not_use_when"),
            "cues": row.values("cues"),
            "exemplars": row.values("exemplars", text=True),
            "l3": [],
        }
        if row.get("default_grade"):
            doc["default_grade"] = row.get("default_grade")
        if ident in docs:
            problems.append(f"{row.where('id')}: duplicate label {ident!r}")
            continue
        docs[ident] = (row, doc)
    l3_sheet = book.find(L3_SHEET)
    for lrow in l3_sheet.use(L3_COLUMNS).rows if l3_sheet else []:
        owner = docs.get(lrow.get("label"))
        if owner is None:
            problems.append(
                f"{lrow.where('label')}: no label {lrow.get('label')!r} in sheet {sheet.name or sheet.file}"
            )
            continue
        owner[1]["l3"].append({"name": lrow.get("name"), "cues": lrow.values("cues")})  # type: ignore[attr-defined]
    labels: list[Label] = []
    for row, doc in docs.values():
        try:
            labels.append(Label.model_validate(doc))
        except ValidationError as exc:
            problems.extend(dt.row_errors(row, exc))
    dim_sheet = book.find(DIMENSION_SHEET)
    dimensions: list[Dimension] = []
    if dim_sheet is not None:
        for drow in dim_sheet.use(DIMENSION_COLUMNS).rows:
            try:
                dimensions.append(Dimension.model_validate({"name": drow.get("id"), **drow.cells}))
            except ValidationError as exc:
                problems.extend(dt.row_errors(drow, exc))
    else:
        bundled = {d.id: d for d in load_model(REPO_DATA / "taxonomy.yaml", Taxonomy).dimensions}
        for dim in dict.fromkeys(str(doc["dimension"]) for _, doc in docs.values() if doc["dimension"]):
            dimensions.append(bundled[dim].model_copy() if dim in bundled else Dimension(id=dim, name=dim))
    known = {d.id for d in dimensions}
    for row, doc in docs.values():
        if doc["dimension"] and doc["dimension"] not in known:
            problems.append(f"{row.where('dimension')}: unknown dimension {doc['dimension']!r}")
    if not sheet.rows:
        problems.append(f"{sheet.file}{', sheet ' + sheet.name if sheet.name else ''}: no label rows")
    if problems:
        raise DataFileError(path, problems)
    hint_sheet = book.find(HINT_SHEET)
    hints = [r.get("hint") for r in hint_sheet.use(HINT_COLUMNS).rows] if hint_sheet else []
    about = dt.read_about(book)
    try:
        return Taxonomy(
            version=about.get("version") or dt.version_of(path),
            name=about.get("name") or path.stem,
            dimensions=dimensions,
            labels=labels,
            negative_hints=[h for h in hints if h],
        )
    except ValidationError as exc:
        raise DataFileError(path, [e["msg"].removeprefix("Value error, ") for e in exc.errors()]) from None


def taxonomy_sheets(taxonomy: Taxonomy) -> dict[str, dt.Table]:
    """The taxonomy as sheets (labels first), for ``voc data export``; reads back the same."""
    j = dt.join_values
    labels = [
        [
            lab.id,
            lab.dimension,
            lab.name,
            lab.definition,
            lab.use_when,
            lab.not_use_when,
            lab.default_grade,
            j(lab.cues),
            j(lab.exemplars, text=True),
        ]
        for lab in taxonomy.labels
    ]
    return {
        "labels": (list(LABEL_COLUMNS), labels),
        "l3": (
            ["label", "name", "cues"],
            [[lab.id, t.name, j(t.cues)] for lab in taxonomy.labels for t in lab.l3],
        ),
        "dimensions": (
            ["id", "name", "english", "description"],
            [[d.id, d.name, d.english, d.description] for d in taxonomy.dimensions],
        ),
        "negative_hints": (["hint"], [[h] for h in taxonomy.negative_hints]),
        "about": (["key", "value"], [["version", taxonomy.version], ["name", taxonomy.name]]),
    }
