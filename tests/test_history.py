"""The synthetic multi-month history generator (evals/history.py)."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from evals.history import THEMES_PATH, History, generate, load_themes, period_keys, shape_factor
from tools.dedup import find_duplicates
from tools.ingest import prepare, read_rows
from tools.matrix import load_matrix
from tools.settings import REPO_DATA
from tools.taxonomy import load_taxonomy

MATRIX = load_matrix(REPO_DATA / "service_matrix.yaml")
CHANNELS = {c.id for c in MATRIX.channels}


@pytest.fixture(scope="module")
def history() -> History:
    return generate(months=8, per_month=40, seed=0)


def months_of(h: History, theme: str) -> list[int]:
    """1-based months in which ``theme`` has rows."""
    keys = sorted({r["received_at"][:7] for r in h.rows if h.theme_of[r["id"]] == theme})
    return [h.months.index(k) + 1 for k in keys]


def test_same_seed_same_history_other_seed_other_history(history: History) -> None:
    again = generate(months=8, per_month=40, seed=0)
    assert again.rows == history.rows
    assert again.theme_of == history.theme_of and again.counts == history.counts
    other = generate(months=8, per_month=40, seed=1)
    assert [r["text"] for r in other.rows] != [r["text"] for r in history.rows]


def test_a_longer_history_starts_with_the_shorter_one(history: History) -> None:
    # Each month draws from its own stream, so month 9 cannot change months 1-8.
    longer = generate(months=10, per_month=40, seed=0)
    assert longer.rows[: len(history.rows)] == history.rows
    assert longer.months[:8] == history.months == period_keys("2026-01", 8)


def test_planted_patterns_hold(history: History) -> None:
    assert months_of(history, "app_login") == list(range(1, 9))
    assert months_of(history, "branch_queue") == [1, 2, 3, 4, 5]  # fixed after month 5
    assert min(months_of(history, "wealth_missell")) == 6  # appears in month 6
    assert months_of(history, "double_debit") == [1, 2, 3, 7, 8]  # gone in 4-6, back in 7-8
    # The expected counts say the same, and the draws follow them.
    assert history.pattern["branch_queue"][5:] == [0, 0, 0]
    assert history.pattern["wealth_missell"][:5] == [0] * 5
    assert history.pattern["double_debit"][3:6] == [0, 0, 0]
    for theme, counts in history.counts.items():
        assert len(counts) == len(history.pattern[theme]) == 8
        assert sum(counts) == sum(1 for t in history.theme_of.values() if t == theme)


def test_the_rising_theme_rises_beyond_chance(history: History) -> None:
    early, late = history.counts["card_fraud"][:3], history.counts["card_fraud"][-3:]
    assert history.pattern["card_fraud"][-1] >= 3 * history.pattern["card_fraud"][0]
    # Poisson: the last three months' total against the first three's, far more than 3 sigma.
    assert sum(late) - sum(early) > 3 * (sum(late) + sum(early)) ** 0.5
    # The steady theme moves only by Poisson noise.
    steady = history.counts["app_login"]
    assert abs(sum(steady[-3:]) - sum(steady[:3])) < 3 * (sum(steady[-3:]) + sum(steady[:3])) ** 0.5


def test_shapes() -> None:
    assert shape_factor({"kind": "steady"}, 5, 5) == 1.0
    rising = {"kind": "rising", "from": 4, "step": 0.5}
    assert [shape_factor(rising, m, m) for m in (1, 3, 4, 6)] == [1.0, 1.0, 1.5, 2.5]
    window = {"kind": "window", "months": [[1, 3], [7, None]]}
    assert [shape_factor(window, m, m) for m in (1, 3, 4, 6, 7, 20)] == [1, 1, 0, 0, 1, 1]
    seasonal = {"kind": "seasonal", "amplitude": 0.5, "peak": 12}
    assert shape_factor(seasonal, 1, 12) == pytest.approx(1.5)
    assert shape_factor(seasonal, 1, 6) == pytest.approx(0.5)
    assert period_keys("2026-11", 3) == ["2026-11", "2026-12", "2027-01"]


def test_ids_unique_and_rows_well_formed(history: History) -> None:
    ids = [r["id"] for r in history.rows]
    assert len(ids) == len(set(ids)) == len(history.theme_of)
    assert 280 <= len(ids) <= 420  # about 40 a month, more while the rising theme grows
    for r in history.rows:
        assert re.fullmatch(r"H\d{6}-\d{5}", r["id"])
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+08:00", r["received_at"])
        assert r["id"][1:7] == r["received_at"][:7].replace("-", "")
        assert r["channel"] in CHANNELS
        assert re.fullmatch(r"C\d{6,7}", r["customer_id"])
    # Some customers complain more than once.
    assert Counter(r["customer_id"] for r in history.rows).most_common(1)[0][1] >= 2
    # Within a month, ids follow arrival time.
    for rows in history.by_month():
        assert [r["received_at"] for r in rows] == sorted(r["received_at"] for r in rows)


def test_rows_pass_ingest_with_nothing_rejected_or_masked(history: History, tmp_path: Path) -> None:
    path = history.write_jsonl(tmp_path / "history.jsonl")
    accepted, errors = prepare(
        read_rows(path), canonical_channel=lambda v: v if v in CHANNELS else None, max_text_chars=5000
    )
    assert errors == []
    assert len(accepted) == len(history.rows)
    # No personal data was planted, so the masker finds nothing and the text is kept as written.
    assert sum(c.pii_masked for c in accepted) == 0
    assert [c.period for c in accepted] == [r["received_at"][:7] for r in history.rows]
    # Near-duplicates would be set aside by ingest and never reach clustering.
    assert sum(1 for c in accepted if c.duplicate_of) <= 0.02 * len(accepted)


def test_month_files_hold_the_same_rows(history: History, tmp_path: Path) -> None:
    paths = history.write_month_files(tmp_path / "months")
    assert [p.name for p in paths] == [f"{m}.jsonl" for m in history.months]
    rows = [json.loads(line) for p in paths for line in p.read_text(encoding="utf-8").splitlines()]
    assert rows == history.rows
    per_month = [sum(c[i] for c in history.counts.values()) for i in range(8)]
    assert [len(m) for m in history.by_month()] == per_month


def test_texts_of_a_theme_vary(history: History) -> None:
    by_theme: dict[str, list[str]] = {}
    for r in history.rows:
        by_theme.setdefault(history.theme_of[r["id"]], []).append(r["text"])
    for theme, texts in by_theme.items():
        assert len(set(texts)) >= 0.9 * len(texts), theme
    bench_month = generate(months=1, per_month=2000, seed=3).rows
    dups = find_duplicates([(r["id"], r["text"]) for r in bench_month])
    assert len(dups) <= 0.05 * len(bench_month)


def test_themes_match_the_taxonomy_and_matrix() -> None:
    themes, _shared = load_themes()
    labels = {lab.id for lab in load_taxonomy(REPO_DATA / "taxonomy.yaml").labels}
    products = {p.name for d in MATRIX.departments for p in d.products}
    lines = {b.id for b in MATRIX.business_lines}
    for t in themes:
        assert t.l2 in labels, t.id
        assert set(t.products) <= products, t.id
        assert t.business_line is None or t.business_line in lines, t.id
        assert set(t.channels) <= CHANNELS, t.id
    assert {t.shape["kind"] for t in themes} == {"steady", "rising", "window", "seasonal"}


def test_a_broken_themes_file_is_refused(tmp_path: Path) -> None:
    text = THEMES_PATH.read_text(encoding="utf-8").replace("{branch}", "{brnach}", 1)
    bad = tmp_path / "themes.yaml"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match="brnach"):
        generate(themes_path=bad)
    with pytest.raises(ValueError):
        generate(months=0)
