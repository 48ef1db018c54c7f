"""Which column of an export fills which field: exact names, the aliases in
data/column_aliases.yaml, and columns the user names (``--columns text=诉求内容,id=流水号``)."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field, model_validator

from tools.datafile import load_model
from tools.ingest.errors import InputFileError
from tools.pii import mask_text

FIELDS = (
    "id",
    "text",
    "channel",
    "received_at",
    "customer_id",
    "customer_segment",
    "business_line",
    "product",
)
DEFAULT_ALIASES = Path(__file__).resolve().parents[2] / "data" / "column_aliases.yaml"
_SEPARATORS = re.compile(r"[\s\-_]+")
_SURROGATES = re.compile(r"[\udc80-\udcff]")


class ColumnAliases(BaseModel):
    version: str = "1"
    aliases: dict[str, list[str]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_fields_and_no_clash(self) -> ColumnAliases:
        unknown = sorted(set(self.aliases) - set(FIELDS))
        if unknown:
            raise ValueError(f"unknown field(s) {', '.join(unknown)}; use {', '.join(FIELDS)}")
        owner: dict[str, str] = {}
        for field, names in self.aliases.items():
            for name in names:
                key = norm(str(name))
                if key in FIELDS and key != field:
                    raise ValueError(f"alias '{name}' of {field} is the name of the field {key}")
                if owner.setdefault(key, field) != field:
                    raise ValueError(f"alias '{name}' is listed under both {owner[key]} and {field}")
        return self

    def lookup(self) -> dict[str, tuple[str, int]]:
        """Normalised alias -> (field, rank); rank 0 is the field's own name."""
        out = {field: (field, 0) for field in FIELDS}
        for field, names in self.aliases.items():
            for rank, name in enumerate(names, start=1):
                out.setdefault(norm(str(name)), (field, rank))
        return out


def norm(name: str) -> str:
    """A column name for matching: full-width to half-width, case and surrounding spaces ignored,
    and a run of spaces, hyphens or underscores inside counted as one underscore."""
    folded = unicodedata.normalize("NFKC", name).strip().casefold()
    return _SEPARATORS.sub("_", folded).strip("_")


@lru_cache(maxsize=8)
def _load(path: str, stamp: float) -> dict[str, tuple[str, int]]:
    return load_model(path, ColumnAliases).lookup()


def load_aliases(path: Path | str | None = None) -> dict[str, tuple[str, int]]:
    """The alias table of ``path`` (default: the repo's data/column_aliases.yaml)."""
    p = Path(path) if path else DEFAULT_ALIASES
    stamp = p.stat().st_mtime if p.is_file() else 0.0
    return _load(str(p), stamp)


def parse_columns(spec: str | None) -> dict[str, str]:
    """``text=诉求内容,id=流水号`` -> {"text": "诉求内容", "id": "流水号"}; InputFileError when malformed."""
    out: dict[str, str] = {}
    if not spec or not spec.strip():
        return out
    for part in spec.split(","):
        field, eq, column = part.partition("=")
        field, column = norm(field), column.strip()
        if not part.strip() or not eq or not column:
            raise InputFileError(f"--columns: '{shown(part)}' is not FIELD=COLUMN (text=诉求内容,id=流水号)")
        if field not in FIELDS:
            raise InputFileError(f"--columns: '{shown(field)}' is not a field; use {', '.join(FIELDS)}")
        if field in out:
            raise InputFileError(f"--columns: {field} is named twice")
        out[field] = column
    return out


def shown(name: object, limit: int = 24) -> str:
    """A column name fit for a message: personal data masked, invalid bytes as '?', cut short."""
    s = "".join(ch if ch.isprintable() else "?" for ch in _SURROGATES.sub("?", str(name)))
    s = mask_text(s.strip())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def match(
    names: list[str],
    aliases: dict[str, tuple[str, int]],
    explicit: dict[str, str] | None = None,
    *,
    strict: bool = True,
) -> dict[str, str]:
    """Map column names to fields: {column name: field}. ``explicit`` (field -> column) comes first;
    with ``strict`` a column it names that is not among ``names`` is an InputFileError."""
    by_norm: dict[str, str] = {}
    for name in names:
        if name:
            by_norm.setdefault(norm(name), name)
    mapping: dict[str, str] = {}
    for field, column in (explicit or {}).items():
        found = by_norm.get(norm(column))
        if found is None:
            if strict:
                listed = ", ".join(shown(n) for n in names if n) or "none"
                raise InputFileError(
                    f"--columns: no column '{shown(column)}' for {field} in the header (found: {listed})"
                )
            continue
        mapping[found] = field
    taken = set(mapping.values())
    best: dict[str, tuple[int, str]] = {}
    for key, name in by_norm.items():
        hit = aliases.get(key)
        if hit is None or name in mapping or hit[0] in taken:
            continue
        field, rank = hit
        if field not in best or rank < best[field][0]:
            best[field] = (rank, name)
    mapping.update({name: field for field, (_, name) in best.items()})
    return mapping


def rename(record: dict[str, object], mapping: dict[str, str]) -> dict[str, object]:
    """A record under field names; a column whose own name is a field it does not fill is kept
    as metadata under ``<name>_column``, so it never stands in for the mapped one."""
    filled = set(mapping.values())
    out: dict[str, object] = {}
    for name, value in record.items():
        if name in mapping:
            out[mapping[name]] = value
        elif name in filled:
            out[f"{name}_column"] = value
        else:
            out.setdefault(name, value)
    return out
