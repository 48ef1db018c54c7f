"""Batches unlike the development set: one label dominating, English, long narratives.

Each fixture is hand-written with planted sub-themes (the ``theme`` field, never submitted). The
real pipeline groups them; no problem may hold more than the configured share of the batch
unless its members say the same thing, and the sub-themes must come out apart.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from graph.run import run_batch
from tools.deps import Deps
from tools.ingest import RawRow
from tools.schema import BatchResult

FIXTURES = Path(__file__).parent / "fixtures" / "clustering"


def analyse(deps: Deps, name: str) -> tuple[BatchResult, dict[str, str]]:
    records = [json.loads(line) for line in (FIXTURES / f"{name}.jsonl").read_text("utf-8").splitlines()]
    themes = {r["id"]: r.pop("theme") for r in records}
    rows = [RawRow(i, r) for i, r in enumerate(records, start=1)]
    return run_batch(rows, deps, source=f"test:{name}", fresh=True, track=False), themes


@pytest.fixture(scope="module", params=["en_consumer_finance", "zh_one_label", "zh_long"])
def batch(request: pytest.FixtureRequest, deps: Deps) -> tuple[str, BatchResult, dict[str, str]]:
    result, themes = analyse(deps, request.param)
    return request.param, result, themes


def test_no_problem_holds_more_than_the_stated_share(batch, deps: Deps) -> None:
    name, result, _ = batch
    cut = result.stats.clustering
    assert cut is not None and cut.method == "silhouette"
    assert cut.kept_whole == 0, f"{name}: no fixture problem is one complaint said many times"
    cfg = deps.scoring.clustering
    assert len(result.problems) >= 4, f"{name}: {[(p.name, p.impact.complaints) for p in result.problems]}"
    for p in result.problems:
        # Two minimum-size groups is as fine as a small batch can be cut.
        assert p.impact.share <= cfg.max_share or p.impact.complaints <= 2 * cfg.min_size, (
            f"{name}: {[(q.name, q.impact.share) for q in result.problems]}"
        )


def test_planted_sub_themes_come_out_apart(batch) -> None:
    name, result, themes = batch
    mixes = {p.id: Counter(themes[m] for m in p.member_ids) for p in result.problems}
    planted = [t for t, n in Counter(themes.values()).items() if n >= 6]
    homes = {}
    for theme in planted:
        # A theme's home is the problem holding most of it: at least half of the theme, and more of
        # it than of any other theme. (Not necessarily a majority: the English fixture's four fraud
        # themes are close for this embedder, and whether one of them is 5 of 12 or 7 of 12 in its
        # home changed with the floating point of the machine the suite ran on.)
        home, mix = max(mixes.items(), key=lambda kv: (kv[1][theme], kv[0]))
        rivals = [n for other, n in mix.items() if other != theme]
        assert mix[theme] >= Counter(themes.values())[theme] / 2, f"{name}: {theme} is scattered: {mixes}"
        assert mix[theme] > max(rivals, default=0), f"{name}: {theme} is nowhere the largest theme: {mixes}"
        homes[theme] = home
    assert len(set(homes.values())) == len(planted), f"{name}: two planted themes share a problem: {homes}"
    grouped = sum(sum(mix.values()) for mix in mixes.values())
    purity = sum(mix.most_common(1)[0][1] for mix in mixes.values()) / grouped
    assert purity >= 0.75, f"{name}: problems mix their sub-themes ({purity:.2f})"


def test_redaction_marks_and_masks_never_name_a_problem(batch) -> None:
    name, result, _ = batch
    for p in result.problems:
        for word in [p.name, *p.keywords, *p.phrases]:
            assert "xx" not in word.lower() and "*" not in word, f"{name}: {word}"
        assert p.name.endswith("）") and "（" in p.name, "the label stands beside the phrase"
    cut = result.stats.clustering
    assert cut is not None and cut.threshold in [c.threshold for c in cut.candidates]
