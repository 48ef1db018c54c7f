"""The service matrix: channel x business line x product -> responsible department and owner."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from pydantic import BaseModel, Field, PrivateAttr, ValidationError, field_validator, model_validator

from tools import datatable as dt
from tools.datafile import DataFileError, load_model


class Alias(BaseModel):
    """A canonical value and the words that stand for it in complaint text."""

    id: str = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list)


class Product(BaseModel):
    """A product or service item a department owns."""

    name: str = Field(min_length=1)
    business_line: str | None = None
    aliases: list[str] = Field(default_factory=list)


class Department(BaseModel):
    """One row group of the matrix: a department, its owner role and what it answers for."""

    id: str = Field(
        min_length=1, description="Any Unicode name (信用卡中心 or card_center); a key, not an identifier."
    )
    name: str = Field(min_length=1)
    owner_role: str = Field(min_length=1)
    business_lines: list[str] = Field(default_factory=list)
    channels: list[str] = Field(default_factory=list)
    description: str = ""
    keywords: list[str] = Field(default_factory=list)
    products: list[Product] = Field(default_factory=list)
    owns_labels: list[str] = Field(
        default_factory=list,
        description="Root-cause labels (taxonomy L2 ids) this department fixes wherever they occur.",
    )
    staff: list[str] = Field(
        default_factory=list,
        description="Words naming this department's front-line staff (柜员, 客服). When the root cause is "
        "about people (人), the department whose staff served the customer owns it.",
    )

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        return dt.check_id(value)

    def profile_text(self) -> str:
        """A passage describing the department, embedded for similarity matching."""
        products = "、".join(p.name for p in self.products)
        keywords = "、".join(self.keywords[:30])
        return f"{self.name}：{self.description} 负责产品与服务：{products}。常见问题：{keywords}"


class ServiceMatrix(BaseModel):
    """The whole matrix file."""

    version: str
    name: str = "service matrix"
    description: str = ""
    channels: list[Alias] = Field(min_length=1)
    business_lines: list[Alias] = Field(min_length=1)
    departments: list[Department] = Field(min_length=1)
    # What loading a spreadsheet matrix noticed but did not refuse (a channel added, a column unused).
    _warnings: list[str] = PrivateAttr(default_factory=list)

    @property
    def load_warnings(self) -> list[str]:
        return self._warnings

    @model_validator(mode="after")
    def _cross_check(self) -> ServiceMatrix:
        problems: list[str] = []
        seen: set[str] = set()
        lines = {b.id for b in self.business_lines}
        channels = {c.id for c in self.channels}
        for i, d in enumerate(self.departments):
            where = f"departments[{i}](id={d.id})"
            if d.id in seen:
                problems.append(f"{where}: duplicate department id")
            seen.add(d.id)
            for b in d.business_lines:
                if b not in lines:
                    problems.append(f"{where}.business_lines: unknown business line {b!r}")
            for c in d.channels:
                if c not in channels:
                    problems.append(f"{where}.channels: unknown channel {c!r}")
            for p in d.products:
                if p.business_line and p.business_line not in lines:
                    problems.append(f"{where}.products({p.name}): unknown business line {p.business_line!r}")
            if not d.keywords and not d.products:
                problems.append(f"{where}: needs keywords or products to be matchable")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def department(self, dept_id: str) -> Department:
        for d in self.departments:
            if d.id == dept_id:
                return d
        raise KeyError(dept_id)

    def check_labels(self, label_ids: set[str], path: Path | str) -> None:
        """Fail clearly when ``owns_labels`` names a label the taxonomy does not have."""
        problems = [
            f"departments(id={d.id}).owns_labels: unknown taxonomy label {lab!r}"
            for d in self.departments
            for lab in d.owns_labels
            if lab not in label_ids
        ]
        if problems:
            raise DataFileError(path, problems)


def load_matrix(path: Path | str) -> ServiceMatrix:
    """Load and validate a service matrix: YAML or JSON, or a CSV/XLSX table of departments."""
    if dt.is_table(path):
        return matrix_from_table(Path(path))
    return load_model(path, ServiceMatrix)


# ── the matrix as a table (CSV or XLSX) ───────────────────────────────────────

DEPARTMENT_SHEET = ("departments", "department", "部门", "责任部门", "服务矩阵", "matrix", "service_matrix")
CHANNEL_SHEET = ("channels", "渠道")
LINE_SHEET = ("business_lines", "业务条线", "条线")
PRODUCT_SHEET = ("products", "产品", "产品与服务")
DEPARTMENT_COLUMNS: dict[str, tuple[str, ...]] = {
    "id": ("编号", "部门编号", "部门id", "department_id", "dept_id"),
    "name": ("department", "部门", "责任部门", "部门名称", "名称", "dept", "department_name"),
    "owner_role": ("owner", "负责人", "责任人", "责任角色", "负责角色"),
    "business_lines": ("business_line", "业务条线", "条线", "业务线"),
    "channels": ("channel", "渠道"),
    "keywords": ("keyword", "关键词", "关键字"),
    "description": ("描述", "说明", "职责", "部门职责"),
    "products": ("product", "产品", "产品与服务"),
    "owns_labels": ("owned_labels", "labels", "负责标签", "根因标签"),
    "staff": ("员工", "一线人员", "人员"),
}
ALIAS_COLUMNS: dict[str, tuple[str, ...]] = {
    "id": ("channel", "渠道", "business_line", "业务条线", "条线", "name", "名称"),
    "aliases": ("alias", "别名", "同义词"),
}
PRODUCT_COLUMNS: dict[str, tuple[str, ...]] = {
    "department": ("部门", "责任部门", "department_id"),
    "name": ("product", "产品", "产品名称", "名称"),
    "business_line": ("业务条线", "条线"),
    "aliases": ("alias", "别名", "同义词"),
}
_LIST_FIELDS = ("business_lines", "channels", "keywords", "owns_labels", "staff")


class _Vocabulary:
    """Channels (or business lines) by id and alias; an unknown name is added with a warning."""

    def __init__(self, kind: str, items: list[Alias], warnings: list[str], path: Path) -> None:
        self.kind, self.items, self.warnings, self.path = kind, items, warnings, path
        self.index: dict[str, str] = {}
        for item in items:
            for word in (item.id, *item.aliases):
                self.index.setdefault(word.casefold(), item.id)

    def resolve(self, name: str, where: str) -> str:
        known = self.index.get(name.casefold())
        if known is not None:
            return known
        try:
            self.items.append(Alias(id=dt.check_id(name)))
        except ValueError as exc:
            raise DataFileError(self.path, [f"{where}: {self.kind} {name!r} {exc}"]) from None
        self.index[name.casefold()] = name
        self.warnings.append(f"{where}: unknown {self.kind} {name!r}, added as a new {self.kind}")
        return name


def _aliases(book: dt.Workbook, names: tuple[str, ...], default: list[Alias]) -> list[Alias]:
    sheet = book.find(names)
    if sheet is None:
        return [a.model_copy(deep=True) for a in default]
    out: list[Alias] = []
    for row in sheet.use(ALIAS_COLUMNS).rows:
        try:
            out.append(Alias(id=dt.check_id(row.get("id")), aliases=row.values("aliases")))
        except ValueError as exc:
            raise DataFileError(book.path, [f"{row.where('id')}: {exc}"]) from None
    return out


def matrix_from_table(path: Path) -> ServiceMatrix:
    """A matrix from a workbook: a departments sheet (one row per department), and optionally
    channels, business_lines, products and about sheets. Without a channels or business_lines
    sheet the bundled matrix's are used, so 手机银行 in a row still means the channel APP."""
    from tools.settings import REPO_DATA

    book = dt.read_workbook(path)
    sheet = dt.main_sheet(book, DEPARTMENT_SHEET, (CHANNEL_SHEET, LINE_SHEET, PRODUCT_SHEET, dt.ABOUT_SHEET))
    sheet.use(DEPARTMENT_COLUMNS)
    bundled: ServiceMatrix | None = None
    if book.find(CHANNEL_SHEET) is None or book.find(LINE_SHEET) is None:
        bundled = load_model(REPO_DATA / "service_matrix.yaml", ServiceMatrix)
    warnings = dt.unused_columns(sheet, DEPARTMENT_COLUMNS)
    channels = _Vocabulary(
        "channel", _aliases(book, CHANNEL_SHEET, bundled.channels if bundled else []), warnings, path
    )
    lines = _Vocabulary(
        "business line", _aliases(book, LINE_SHEET, bundled.business_lines if bundled else []), warnings, path
    )
    problems: list[str] = []
    rows: dict[str, tuple[dt.Row, dict[str, object]]] = {}
    for row in sheet.rows:
        doc: dict[str, object] = {k: row.get(k) for k in ("name", "owner_role", "description") if row.get(k)}
        doc["id"] = row.get("id") or row.get("name")
        if "owner_role" not in doc and doc.get("name"):
            doc["owner_role"] = f"{doc['name']}负责人"
        for key in _LIST_FIELDS:
            doc[key] = row.values(key)
        doc["channels"] = [channels.resolve(c, row.where("channels")) for c in row.values("channels")]
        doc["business_lines"] = [
            lines.resolve(b, row.where("business_lines")) for b in row.values("business_lines")
        ]
        doc["products"] = [{"name": p} for p in row.values("products")]
        key = str(doc["id"]).strip()
        if key in rows:
            problems.append(f"{row.where('id' if row.get('id') else 'name')}: duplicate department {key!r}")
            continue
        rows[key] = (row, doc)
    by_name = {str(doc.get("name", "")).strip(): k for k, (_, doc) in rows.items()}
    product_sheet = book.find(PRODUCT_SHEET)
    for prow in product_sheet.use(PRODUCT_COLUMNS).rows if product_sheet else []:
        dept = prow.get("department")
        owner = rows.get(dept) or rows.get(by_name.get(dept, ""))
        if owner is None:
            problems.append(
                f"{prow.where('department')}: no department {dept!r} in sheet {sheet.name or sheet.file}"
            )
            continue
        line = prow.get("business_line")
        product: dict[str, object] = {
            "name": prow.get("name"),
            "business_line": lines.resolve(line, prow.where("business_line")) if line else None,
            "aliases": prow.values("aliases"),
        }
        cast(list[dict[str, object]], owner[1]["products"]).append(product)
    departments: list[Department] = []
    for row, doc in rows.values():
        try:
            department = Department.model_validate(doc)
        except ValidationError as exc:
            problems.extend(dt.row_errors(row, exc, {"id": "id" if row.get("id") else "name"}))
            continue
        if not department.keywords and not department.products:
            problems.append(f"{row.where('keywords')}: needs keywords or products to be matchable")
        departments.append(department)
    if not sheet.rows:
        problems.append(f"{sheet.file}{', sheet ' + sheet.name if sheet.name else ''}: no department rows")
    if problems:
        raise DataFileError(path, problems)
    about = dt.read_about(book)
    try:
        matrix = ServiceMatrix(
            version=about.get("version") or dt.version_of(path),
            name=about.get("name") or path.stem,
            description=about.get("description", ""),
            channels=channels.items,
            business_lines=lines.items,
            departments=departments,
        )
    except ValidationError as exc:
        raise DataFileError(path, [e["msg"].removeprefix("Value error, ") for e in exc.errors()]) from None
    matrix._warnings = warnings
    return matrix


def matrix_sheets(matrix: ServiceMatrix) -> dict[str, dt.Table]:
    """The matrix as sheets (departments first), for ``voc data export``; reads back the same."""
    j = dt.join_values
    departments = [
        [
            d.id,
            d.name,
            d.owner_role,
            j(d.business_lines),
            j(d.channels),
            j(d.keywords),
            d.description,
            j(d.owns_labels),
            j(d.staff),
        ]
        for d in matrix.departments
    ]
    products = [
        [d.id, p.name, p.business_line or "", j(p.aliases)] for d in matrix.departments for p in d.products
    ]
    return {
        "departments": (
            [
                "id",
                "name",
                "owner_role",
                "business_lines",
                "channels",
                "keywords",
                "description",
                "owns_labels",
                "staff",
            ],
            departments,
        ),
        "channels": (["id", "aliases"], [[c.id, j(c.aliases)] for c in matrix.channels]),
        "business_lines": (["id", "aliases"], [[b.id, j(b.aliases)] for b in matrix.business_lines]),
        "products": (["department", "name", "business_line", "aliases"], products),
        "about": (
            ["key", "value"],
            [["version", matrix.version], ["name", matrix.name], ["description", matrix.description]],
        ),
    }
