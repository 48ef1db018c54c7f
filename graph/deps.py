"""Build the dependency container: load the data files, open the knowledge store, warm the agents."""

from __future__ import annotations

from collections.abc import Callable

from agents.attribution import build_attribution_index
from agents.tracing import build_tracing_index
from tools.calibration import cascade_threshold, load_calibration
from tools.datafile import file_digest
from tools.deps import Deps, knowledge_sources, load_data, package_version
from tools.embeddings import Embedder, make_embedder
from tools.llm import make_llm
from tools.sentiment_head import head_for
from tools.settings import DATA_FILES, Settings
from tools.store import KnowledgeStore, open_client


def make_deps(
    settings: Settings | None = None,
    embedder: Embedder | None = None,
    build_store: bool = True,
    on_build: Callable[[str, int], None] | None = None,
) -> Deps:
    """Load data files, open the store (building stale collections) and warm the indexes."""
    settings = settings or Settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    data = load_data(settings)
    embedder = embedder or make_embedder(settings.embedder, settings.embed_threads)
    store = KnowledgeStore(
        open_client(settings),
        embedder,
        knowledge_sources(settings, data),
        lease=settings.chroma_build_lease,
        wait=settings.chroma_build_wait,
    )
    if build_store:
        store.ensure_built(progress=on_build)
    head, _note = head_for(settings.sentiment_head_file, embedder.name)
    calibration = load_calibration(settings.calibration_file)
    versions = {
        "voc_tracer": package_version(),
        "service_matrix": data["matrix"].version,
        "taxonomy": data["taxonomy"].version,
        "knowledge": data["knowledge"].version,
        "cases": data["cases"].version,
        "scoring": data["scoring"].version,
        "remediation": data["remediation"].version,
        "lexicon": data["lexicon"].version,
        "embedder": embedder.name,
        "sentiment_head": head.version if head else "none (lexicon only)",
        "calibration": calibration.version if calibration else "none (raw scores)",
        # Content digest of every data file: a batch analysed with other data is another batch.
        "data_digest": file_digest(*(settings.path(n) for n in DATA_FILES)),
    }
    llm = make_llm(settings)
    if llm is not None:
        # Only llm runs carry these, so a rules batch keeps its identity (and its checkpoint).
        versions.update(llm.versions())
        if settings.cascade:
            # Another threshold sends other complaints: another batch, not a reused result.
            limit, _ = cascade_threshold(calibration, settings.cascade_threshold, settings.cascade_target)
            versions.update(engine="auto", cascade_threshold=str(limit))
    deps = Deps(
        settings=settings,
        embedder=embedder,
        store=store,
        versions=versions,
        llm=llm,
        sentiment_head=head,
        calibration=calibration,
        **data,
    )
    if build_store:
        deps.indexes["tracing"] = build_tracing_index(deps)
        deps.indexes["attribution"] = build_attribution_index(deps)
    return deps
