"""The service matrix: channel x business line x product -> responsible department and owner."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, model_validator

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

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
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
    """Load and validate a service matrix file."""
    return load_model(path, ServiceMatrix)
