"""Schemathesis against the service's own OpenAPI schema: generated requests, valid and not,
never get a 5xx. Bounded examples per operation so the suite stays quick.

The app runs in local-only mode (so every generated request reaches its handler) on a fresh
VOC_HOME with the char n-gram embedder: generated knowledge entries rebuild store collections,
and that should cost milliseconds here.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from api.app import create_app
from graph.deps import make_deps
from services.config import ApiSettings
from tools.settings import Settings

pytestmark = [
    pytest.mark.slow,
    # schemathesis' own strategies call the random module, which Hypothesis flags; not our code.
    pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies"),
]


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    home = tmp_path_factory.mktemp("fuzz") / "home"
    deps = make_deps(Settings(home=home, embedder="char-ngram", max_batch_rows=50))
    yield create_app(deps=deps, api_settings=ApiSettings(job_workers=1, sync_max_complaints=20))
    schemathesis.python.asgi.shutdown_lifespans()


@pytest.fixture(scope="module")
def api_schema(fuzz_app: FastAPI) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)


# Listed from the schema itself, so a new route is fuzzed without touching this file.
OPERATIONS = sorted(
    (path, method.upper())
    for path, item in create_app(api_settings=ApiSettings(keys=None, keys_file=None))
    .openapi()["paths"]
    .items()
    for method in item
)


@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_no_generated_request_gets_a_server_error(
    api_schema: schemathesis.BaseSchema, path: str, method: str
) -> None:
    operation = api_schema[path][method]
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)
    )

    @given(case=cases)
    @settings(
        max_examples=6,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # report the failing request as generated, unshrunk
        suppress_health_check=list(HealthCheck),
    )
    def call(case: schemathesis.Case) -> None:
        case.call_and_validate(checks=[not_a_server_error])

    call()
