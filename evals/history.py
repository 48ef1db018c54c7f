"""Seeded multi-month synthetic complaint histories with planted problem patterns, for tests and bench."""

from __future__ import annotations

import argparse
import calendar
import json
import math
import re
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from evals.dataset import DATASETS

THEMES_PATH = DATASETS / "history_themes.yaml"
# English rows, where a theme has English templates: enough to exercise the path, few enough
# that they do not dominate a theme's cluster.
ENGLISH_SHARE = 0.04
# Rows from a theme's regular complainers (the same customers coming back); the rest are one-offs.
REPEAT_SHARE = 0.12
# How often each optional column is filled in: real exports leave them blank now and then.
OPTIONAL_SHARE = {"customer_segment": 0.85, "business_line": 0.5, "product": 0.3}
# Complaints arrive in office and evening hours, most around mid-morning and mid-afternoon.
_HOURS = np.array([8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22])
_HOUR_WEIGHTS = np.array([2, 6, 8, 7, 4, 4, 7, 8, 7, 5, 3, 3, 3, 2, 1], dtype=float)
_SLOT = re.compile(r"\{(\w+)\}")
_CN_DIGITS = "零一两三四五六七八九"
_SHAPES = {"steady", "rising", "window", "seasonal", "level"}


@dataclass(frozen=True)
class Theme:
    """One planted problem: its intended root cause, how its volume moves, and how it is written."""

    id: str
    name: str
    l2: str
    share: float
    shape: dict[str, Any]
    channels: dict[str, float]
    segments: dict[str, float]
    business_line: str | None
    products: list[str]
    amount: tuple[float, float]
    slots: dict[str, list[str]]
    templates: list[str]
    english: list[str]


def load_themes(
    path: Path | str = THEMES_PATH, scenario: str | None = None
) -> tuple[list[Theme], dict[str, list[str]]]:
    """The themes and the shared slot fillers of a themes file, with a scenario's shapes in place of
    the themes' own when one is named; a broken file or an unknown scenario raises ValueError."""
    doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    shapes: dict[str, Any] = {}
    if scenario is not None:
        scenarios = doc.get("scenarios", {})
        if scenario not in scenarios:
            raise ValueError(f"{path}: no scenario {scenario!r}; known: {sorted(scenarios)}")
        shapes = dict(scenarios[scenario]["shapes"])
        unknown = set(shapes) - {str(t["id"]) for t in doc["themes"]}
        if unknown:
            raise ValueError(f"{path}: scenario {scenario!r} shapes unknown themes {sorted(unknown)}")
    shared = {k: [str(v) for v in vals] for k, vals in doc.get("shared", {}).items()}
    themes = []
    for t in doc["themes"]:
        theme = Theme(
            id=str(t["id"]),
            name=str(t["name"]),
            l2=str(t["l2"]),
            share=float(t["share"]),
            shape=dict(shapes.get(str(t["id"]), t["shape"])),
            channels={str(k): float(v) for k, v in t["channels"].items()},
            segments={str(k): float(v) for k, v in t.get("segments", {}).items()},
            business_line=t.get("business_line"),
            products=[str(p) for p in t.get("products", [])],
            amount=(float(t["amount"][0]), float(t["amount"][1])),
            slots={k: [str(v) for v in vals] for k, vals in t.get("slots", {}).items()},
            templates=[str(x) for x in t["templates"]],
            english=[str(x) for x in t.get("english", [])],
        )
        _check_theme(theme, shared)
        themes.append(theme)
    if len({t.id for t in themes}) != len(themes):
        raise ValueError(f"{path}: theme ids repeat")
    return themes, shared


def _check_theme(theme: Theme, shared: dict[str, list[str]]) -> None:
    # Fail at load, not halfway through 60,000 rows, on a typo in a slot or shape name.
    if theme.shape.get("kind") not in _SHAPES:
        raise ValueError(f"theme {theme.id}: shape kind must be one of {sorted(_SHAPES)}")
    known = {*theme.slots, *shared, "amount", "day"}
    texts = [*theme.templates, *theme.english, *(v for vals in theme.slots.values() for v in vals)]
    texts += [v for vals in shared.values() for v in vals]
    missing = {name for text in texts for name in _SLOT.findall(text)} - known
    if missing:
        raise ValueError(f"theme {theme.id}: unknown slots {sorted(missing)}")
    if not theme.templates:
        raise ValueError(f"theme {theme.id}: no templates")


def shape_factor(shape: dict[str, Any], month: int, calendar_month: int) -> float:
    """How much of a theme's base volume month ``month`` (1 = the history's first) carries."""
    kind = shape["kind"]
    if kind == "steady":
        return 1.0
    if kind == "rising":
        return 1.0 + float(shape["step"]) * max(0, month - int(shape["from"]) + 1)
    if kind == "window":
        return float(any(lo <= month and (hi is None or month <= hi) for lo, hi in shape["months"]))
    if kind == "level":
        # Piecewise constant: each [from month, factor] holds until the next one.
        factor = 1.0
        for start, value in shape["levels"]:
            if month >= int(start):
                factor = float(value)
        return factor
    if kind == "seasonal":
        angle = 2 * math.pi * (calendar_month - float(shape["peak"])) / 12
        return max(0.0, 1.0 + float(shape["amplitude"]) * math.cos(angle))
    raise ValueError(f"unknown shape kind {kind!r}")


def period_keys(start: str, months: int) -> list[str]:
    """``months`` consecutive period keys from ``start`` (YYYY-MM)."""
    year, month = (int(x) for x in start.split("-"))
    keys = []
    for i in range(months):
        y, m = divmod(month - 1 + i, 12)
        keys.append(f"{year + y:04d}-{m + 1:02d}")
    return keys


@dataclass
class History:
    """A generated history: the rows and the ground truth planted in them."""

    rows: list[dict[str, Any]]
    months: list[str]
    theme_of: dict[str, str]  # row id -> theme id
    pattern: dict[str, list[int]]  # theme id -> expected count per month (the rounded Poisson mean)
    counts: dict[str, list[int]]  # theme id -> the count drawn per month
    themes: dict[str, Theme]

    def by_month(self) -> list[list[dict[str, Any]]]:
        """The rows split by period, in the order of ``months``."""
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in self.rows:
            groups[row["received_at"][:7]].append(row)
        return [groups[m] for m in self.months]

    def write_jsonl(self, path: Path | str) -> Path:
        """All rows as one JSONL file, in time order."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in self.rows), encoding="utf-8")
        return p

    def write_month_files(self, directory: Path | str) -> list[Path]:
        """One JSONL file per period (``2026-01.jsonl``...), as a bank would send them."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        paths = []
        for key, rows in zip(self.months, self.by_month(), strict=True):
            p = d / f"{key}.jsonl"
            p.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
            paths.append(p)
        return paths


def generate(
    months: int = 8,
    per_month: int = 40,
    seed: int = 0,
    start: str = "2026-01",
    themes_path: Path | str = THEMES_PATH,
    scenario: str | None = None,
) -> History:
    """A seeded history of ``months`` periods from ``start``.

    ``per_month`` scales every theme (mean = per_month x share x shape): the first months hold
    about ``per_month`` complaints, and the rising theme adds to that (month 8 about 1.4 times
    as many, month 12 about 1.9; 12 x 5,000 gives about 75,000 rows). Each month draws from its
    own seeded stream, so a longer history starts with exactly the rows of a shorter one. A
    ``scenario`` (``actions``: fixes that work, do nothing, come back) reshapes some themes.
    """
    if months < 1 or per_month < 1:
        raise ValueError("months and per_month must be at least 1")
    themes, shared = load_themes(themes_path, scenario)
    keys = period_keys(start, months)
    pattern: dict[str, list[int]] = {t.id: [] for t in themes}
    counts: dict[str, list[int]] = {t.id: [] for t in themes}
    rows: list[dict[str, Any]] = []
    theme_of: dict[str, str] = {}
    for i, key in enumerate(keys):
        rng = np.random.default_rng([seed, i])
        month_rows: list[tuple[dict[str, Any], str]] = []
        for ti, theme in enumerate(themes):
            mean = per_month * theme.share * shape_factor(theme.shape, i + 1, int(key[5:]))
            n = int(rng.poisson(mean))
            pattern[theme.id].append(round(mean))
            counts[theme.id].append(n)
            for _ in range(n):
                month_rows.append((_row(theme, ti, shared, key, per_month, rng), theme.id))
        # Ids follow arrival order, as a bank's complaint system would number them.
        month_rows.sort(key=lambda rt: (rt[0]["received_at"], rt[0]["text"]))
        for k, (row, theme_id) in enumerate(month_rows, start=1):
            ident = f"H{key.replace('-', '')}-{k:05d}"
            rows.append({"id": ident, **row})
            theme_of[ident] = theme_id
    return History(rows, keys, theme_of, pattern, counts, {t.id: t for t in themes})


def _pick(rng: np.random.Generator, weights: dict[str, float]) -> str:
    names = list(weights)
    p = np.array([weights[n] for n in names], dtype=float)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def _row(
    theme: Theme, index: int, shared: dict[str, list[str]], key: str, per_month: int, rng: np.random.Generator
) -> dict[str, Any]:
    year, month = int(key[:4]), int(key[5:])
    day = int(rng.integers(1, calendar.monthrange(year, month)[1] + 1))
    hour = int(rng.choice(_HOURS, p=_HOUR_WEIGHTS / _HOUR_WEIGHTS.sum()))
    minute, second = int(rng.integers(60)), int(rng.integers(60))
    english = bool(theme.english) and rng.random() < ENGLISH_SHARE
    template = str(rng.choice(theme.english if english else theme.templates))
    memo: dict[str, str] = {}
    text = _render(template, theme, shared, memo, rng, (month, day), depth=0).strip()
    if rng.random() < REPEAT_SHARE:
        # A theme's regulars: about one for every four complaints a month, so some come back.
        pool = min(9999, max(3, round(per_month * theme.share / 4)))
        customer = f"C{index + 1:02d}{int(rng.integers(pool)):04d}"
    else:
        customer = f"C{int(rng.integers(1_000_000, 10_000_000))}"
    channel = _pick(rng, theme.channels)
    row: dict[str, Any] = {
        "text": text,
        # An agent's note of a call ("客户来电反映…") came in by phone, whatever the theme's mix.
        "channel": "电话" if template.startswith("客户来电") else channel,
        "received_at": f"{key}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}+08:00",
        "customer_id": customer,
    }
    if theme.segments and rng.random() < OPTIONAL_SHARE["customer_segment"]:
        row["customer_segment"] = _pick(rng, theme.segments)
    if theme.business_line and rng.random() < OPTIONAL_SHARE["business_line"]:
        row["business_line"] = theme.business_line
    if theme.products and rng.random() < OPTIONAL_SHARE["product"]:
        row["product"] = str(rng.choice(theme.products))
    return row


def _render(
    template: str,
    theme: Theme,
    shared: dict[str, list[str]],
    memo: dict[str, str],
    rng: np.random.Generator,
    date: tuple[int, int],
    depth: int,
) -> str:
    if depth > 4:
        raise ValueError(f"theme {theme.id}: slots nest too deep in {template!r}")

    def fill(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in memo:
            if name == "amount":
                value = _amount(rng, *theme.amount)
            elif name == "day":
                value = _day(rng, *date)
            else:
                value = str(rng.choice(theme.slots.get(name) or shared[name]))
            memo[name] = _render(value, theme, shared, memo, rng, date, depth + 1)
        return memo[name]

    return _SLOT.sub(fill, template)


def _amount(rng: np.random.Generator, lo: float, hi: float) -> str:
    """A sum of money written the ways customers write it: 3286元, 3,300元, 三千多元, 1.2万元, 86.50元."""
    v = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    style = int(rng.integers(4))
    if style == 0:
        return f"{int(v)}元"
    if style == 1:
        rounded = int(round(v, -max(0, int(math.log10(v)) - 1)))
        return f"{rounded:,}元"
    if style == 2 and v >= 10_000:
        return f"{v / 10_000:.1f}万元".replace(".0万", "万")
    if style == 2 and v >= 1_000:
        return f"{_CN_DIGITS[int(v // 1000)]}千多元"
    return f"{int(v)}.{int(rng.integers(100)):02d}元"


def _day(rng: np.random.Generator, month: int, received_day: int) -> str:
    d = int(rng.integers(1, received_day + 1))
    return f"{month}月{d}日" if rng.random() < 0.6 else f"{d}号"


# ── quality: does the rules engine recover the planted themes? ────────────────


@dataclass
class Quality:
    """How one ``voc analyze`` run recovered a history's themes."""

    rows: dict[str, int]  # theme -> rows analysed
    label_hits: dict[str, float]  # theme -> share of its rows given the theme's intended L2 label
    ari: float  # problem ids vs themes over negative voices; unclustered rows count as singletons
    negatives: int
    grouped: int  # negative voices that joined a problem


def score(history: History, results_path: Path | str) -> Quality:
    """Compare a ``results.jsonl`` written for ``history`` (or part of it) with the planted themes."""
    from sklearn.metrics import adjusted_rand_score

    rows: Counter[str] = Counter()
    hits: Counter[str] = Counter()
    truth: list[str] = []
    found: list[str] = []
    for line in Path(results_path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        theme = history.theme_of.get(rec["id"])
        if theme is None:
            continue
        cause = rec.get("root_cause") or {}
        rows[theme] += 1
        hits[theme] += cause.get("l2") == history.themes[theme].l2
        if cause.get("is_negative_voice"):
            truth.append(theme)
            found.append(rec.get("problem_id") or f"single:{rec['id']}")
    return Quality(
        rows=dict(rows),
        label_hits={t: round(hits[t] / n, 3) for t, n in rows.items()},
        ari=round(float(adjusted_rand_score(truth, found)), 3) if truth else 0.0,
        negatives=len(truth),
        grouped=sum(not f.startswith("single:") for f in found),
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m evals.history``: write a history, or score a run on one."""
    ap = argparse.ArgumentParser(prog="python -m evals.history", description=__doc__)
    ap.add_argument("--months", type=int, default=8)
    ap.add_argument("--per-month", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--start", default="2026-01")
    ap.add_argument("--scenario", help="reshape themes as a scenario of the themes file does (actions)")
    ap.add_argument("--out", type=Path, help="write every row to this JSONL file")
    ap.add_argument("--month-dir", type=Path, help="write one JSONL file per month into this folder")
    ap.add_argument("--score", type=Path, metavar="RESULTS", help="score a results.jsonl of this history")
    args = ap.parse_args(argv)
    h = generate(args.months, args.per_month, args.seed, args.start, scenario=args.scenario)
    if args.out:
        h.write_jsonl(args.out)
    if args.month_dir:
        h.write_month_files(args.month_dir)
    summary: dict[str, Any] = {"rows": len(h.rows), "months": h.months, "counts": h.counts}
    if args.score:
        summary["quality"] = vars(score(h, args.score))
    json.dump(summary, sys.stdout, ensure_ascii=False, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
