"""Loading versioned YAML data files into pydantic models, with errors a user can act on."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class DataFileError(ValueError):
    """A data file (service matrix, taxonomy, knowledge, ...) is missing or invalid."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        self.path = str(path)
        self.problems = problems
        listed = "\n".join(f"  - {p}" for p in problems[:30])
        more = f"\n  ... and {len(problems) - 30} more" if len(problems) > 30 else ""
        super().__init__(f"{self.path} is not valid:\n{listed}{more}")


def _location(loc: tuple[int | str, ...], raw: object) -> str:
    """Render a pydantic error location, naming list items by their id where possible."""
    parts: list[str] = []
    node = raw
    for key in loc:
        if isinstance(key, int):
            ident = (
                node[key].get("id")
                if isinstance(node, list) and key < len(node) and isinstance(node[key], dict)
                else None
            )
            parts.append(f"[{key}]" + (f"(id={ident})" if ident else ""))
            node = node[key] if isinstance(node, list) and key < len(node) else None
        else:
            parts.append(("." if parts else "") + str(key))
            node = node.get(key) if isinstance(node, dict) else None
    return "".join(parts) or "(top level)"


def load_model(path: Path | str, model: type[M]) -> M:
    """Parse ``path`` as YAML (or JSON) into ``model``; raise :class:`DataFileError` on problems."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(path, ["file not found"])
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise DataFileError(path, [f"not UTF-8 text ({exc.reason})"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise DataFileError(path, [f"{where}{getattr(exc, 'problem', exc)}"]) from None
    if not isinstance(raw, dict):
        raise DataFileError(path, ["expected a mapping at the top level"])
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = [f"{_location(tuple(e['loc']), raw)}: {e['msg']}" for e in exc.errors()]
        raise DataFileError(path, problems) from None


def file_digest(*paths: Path | str) -> str:
    """Short content hash of files, used to tell when a derived index is stale."""
    h = hashlib.sha256()
    for p in paths:
        h.update(Path(p).read_bytes())
    return h.hexdigest()[:16]
