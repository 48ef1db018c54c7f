"""Clustering negative voices and naming the clusters (tools/clustering.py)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from tools.clustering import (
    CutRules,
    cluster_batch,
    cluster_vectors,
    ctfidf_keywords,
    load_stopwords,
    tokenize,
)
from tools.settings import REPO_DATA

DIM = 48


def blobs(sizes: list[int], noise: float = 0.03, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors scattered around mutually orthogonal centres; returns (vectors, truth)."""
    rng = np.random.default_rng(seed)
    centres = np.linalg.qr(rng.standard_normal((DIM, len(sizes))))[0].T
    parts, truth = [], []
    for k, n in enumerate(sizes):
        parts.append(centres[k] + noise * rng.standard_normal((n, DIM)))
        truth += [k] * n
    vectors = np.vstack(parts)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    order = rng.permutation(len(truth))  # interleave the groups
    return vectors[order].astype(np.float32), np.array(truth)[order]


def test_three_separated_groups_are_recovered() -> None:
    vectors, truth = blobs([12, 20, 8])
    labels = cluster_vectors(vectors, distance_threshold=0.42, min_size=3)
    assert adjusted_rand_score(truth, labels) == pytest.approx(1.0)
    assert sorted(Counter(labels.tolist()).values()) == [8, 12, 20]


def test_clusters_are_numbered_by_size_largest_first() -> None:
    vectors, truth = blobs([5, 30, 12])
    labels = cluster_vectors(vectors, distance_threshold=0.42, min_size=3)
    sizes = Counter(labels.tolist())
    assert sizes == {0: 30, 1: 12, 2: 5}
    # cluster 0 is the ground-truth group of 30
    assert set(truth[labels == 0].tolist()) == {1}


def test_groups_below_min_size_are_labelled_minus_one() -> None:
    vectors, truth = blobs([15, 10, 2])
    labels = cluster_vectors(vectors, distance_threshold=0.42, min_size=3)
    assert (labels[truth == 2] == -1).all()
    assert set(labels[truth != 2].tolist()) == {0, 1}
    assert cluster_vectors(vectors, distance_threshold=0.42, min_size=11).tolist().count(-1) == 12


def test_large_n_path_recovers_the_groups() -> None:
    vectors, truth = blobs([140, 100, 60], seed=3)
    labels = cluster_vectors(vectors, distance_threshold=0.42, min_size=3, exact_above=50, seed=0)
    assert adjusted_rand_score(truth, labels) >= 0.9
    sizes = Counter(labels.tolist())
    assert sizes[0] >= sizes[1] >= sizes[2]
    assert set(truth[labels == 0].tolist()) == {0}


def test_large_n_path_is_deterministic_for_a_seed() -> None:
    vectors, _ = blobs([140, 100, 60], seed=3)
    a = cluster_vectors(vectors, distance_threshold=0.42, min_size=3, exact_above=50, seed=1)
    b = cluster_vectors(vectors, distance_threshold=0.42, min_size=3, exact_above=50, seed=1)
    assert a.tolist() == b.tolist()


def test_tiny_inputs() -> None:
    assert cluster_vectors(np.zeros((0, DIM)), 0.42, 3).tolist() == []
    assert cluster_vectors(np.ones((1, DIM)), 0.42, 3).tolist() == [-1]


def test_ctfidf_keywords_pick_distinctive_terms() -> None:
    docs = {
        0: [
            ["信用卡", "盗刷", "投诉", "境外"],
            ["盗刷", "信用卡", "投诉", "冻结"],
            ["盗刷", "投诉", "信用卡", "交易"],
            ["盗刷", "信用卡", "投诉", "短信"],
        ],
        1: [
            ["网点", "排队", "投诉", "窗口"],
            ["排队", "网点", "投诉", "时间"],
            ["排队", "窗口", "网点", "投诉"],
            ["网点", "排队", "投诉", "大堂"],
        ],
    }
    keywords = ctfidf_keywords(docs, top_n=2)
    assert set(keywords[0]) == {"信用卡", "盗刷"}
    assert set(keywords[1]) == {"网点", "排队"}
    ranked = ctfidf_keywords(docs, top_n=4)
    assert "投诉" not in ranked[0][:2] and "投诉" not in ranked[1][:2]


def test_tokenize_drops_stopwords_short_tokens_and_numbers() -> None:
    stopwords = load_stopwords(str(REPO_DATA / "stopwords.txt"))
    assert {"银行", "我们", "没有"} <= stopwords
    tokens = tokenize("我们的信用卡被盗刷了，银行一直没有处理，损失5000元", stopwords)
    assert "信用卡" in tokens and "损失" in tokens
    assert not {"我们", "银行", "没有", "5000"} & set(tokens)
    assert all(len(t) >= 2 for t in tokens)


def test_tokenize_lowercases_latin_words() -> None:
    assert "app" in tokenize("APP登录以后就闪退")


COARSE = (0.8, 0.85, 0.9)


def rules(**over: object) -> CutRules:
    base: dict[str, object] = {
        "thresholds": tuple(round(0.5 + 0.05 * i, 2) for i in range(12)),
        "min_size": 3,
        "max_share": 0.25,
        "same_problem_similarity": 0.55,
        "near_duplicate_similarity": 0.85,
    }
    base.update(over)
    return CutRules(**base)  # type: ignore[arg-type]


def homogeneous(sizes: list[int], seed: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """Sub-themes that share part of what they say, like the credit-report half of a batch.

    Voices of two sub-themes are about 0.3 similar: a cut at 0.8 or more (the old fixed one
    was 0.85) takes them as one problem; what is left once their shared part is removed tells
    the sub-themes apart.
    """
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.standard_normal((DIM, len(sizes) + 1)))[0].T
    parts, truth = [], []
    for k, n in enumerate(sizes):
        centre = 0.55 * basis[0] + 0.84 * basis[k + 1]
        parts.append(centre + 0.02 * rng.standard_normal((n, DIM)))
        truth += [k] * n
    vectors = np.vstack(parts)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    order = rng.permutation(len(truth))
    return vectors[order].astype(np.float32), np.array(truth)[order]


def test_a_problem_holding_most_of_the_batch_is_split_into_its_sub_themes() -> None:
    vectors, truth = homogeneous([12, 12, 10, 9, 8])
    # What a fixed cut did: one problem holding the whole batch.
    assert set(cluster_vectors(vectors, distance_threshold=0.85, min_size=3).tolist()) == {0}
    labels, cut = cluster_batch(vectors, rules(thresholds=COARSE))
    assert cut.candidates[0].problems == 1, "every candidate cut takes the batch as one problem"
    assert adjusted_rand_score(truth, labels) >= 0.9
    assert max(Counter(labels.tolist()).values()) <= 0.25 * len(labels)
    assert cut.split >= 1, "the one group the first cut found was clustered again inside itself"


def test_the_cut_is_the_best_scoring_candidate_and_is_reported() -> None:
    vectors, truth = blobs([12, 20, 8, 15])
    labels, cut = cluster_batch(vectors, rules(max_share=0.5))
    assert adjusted_rand_score(truth, labels) == pytest.approx(1.0)
    assert cut.method == "silhouette"
    scored = [c for c in cut.candidates if c.silhouette is not None]
    assert [c.threshold for c in cut.candidates] == list(rules().thresholds)
    assert cut.silhouette == max(c.silhouette for c in scored if c.silhouette is not None)
    assert cut.threshold in [c.threshold for c in scored if c.silhouette == cut.silhouette]


def test_a_problem_whose_members_say_the_same_thing_stays_whole_however_large() -> None:
    vectors, truth = blobs([40, 8, 8, 8], noise=0.05, seed=9)
    labels, cut = cluster_batch(vectors, rules())
    assert adjusted_rand_score(truth, labels) == pytest.approx(1.0)
    assert Counter(labels.tolist())[0] == 40, "one problem holding 62% of the batch, left whole"
    assert cut.kept_whole == 1 and cut.split == 0


def test_large_batch_path_splits_a_dominant_problem_too() -> None:
    vectors, truth = homogeneous([120, 100, 80, 60, 50], seed=4)
    labels, cut = cluster_batch(vectors, rules(thresholds=COARSE, exact_above=100))
    assert adjusted_rand_score(truth, labels) >= 0.9
    assert max(Counter(labels.tolist()).values()) <= 0.3 * len(labels)


def test_too_few_voices_are_not_cut() -> None:
    vectors, _ = blobs([2, 2])
    labels, cut = cluster_batch(vectors, rules())
    assert cut.method == "too_few" and cut.threshold is None
    assert labels.tolist() == [0, 0, 0, 0]
    assert cluster_batch(vectors[:2], rules())[0].tolist() == [-1, -1]
