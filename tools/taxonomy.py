"""The 人/机/物/法/环 root-cause taxonomy: a data dictionary with cues and exemplars."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from tools.datafile import load_model

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
    """Load and validate a taxonomy file."""
    return load_model(path, Taxonomy)
