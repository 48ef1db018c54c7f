"""A throwaway Postgres database per test, from the server ``VOC_TEST_DATABASE_URL`` names.

``.ci/run`` sets the variable (starting Debian's postgresql when the machine has none), so in CI
these tests always run; a developer without Postgres sees them skipped with the reason. When the
variable is set and the server does not answer, the tests fail: they never skip quietly there.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from urllib.parse import urlsplit, urlunsplit

import pytest

ENV = "VOC_TEST_DATABASE_URL"


def admin_url() -> str:
    url = os.environ.get(ENV)
    if not url:
        pytest.skip(f"{ENV} is not set (.ci/run sets it): no Postgres to test against")
    return url


@contextmanager
def _new_database(template: str | None = None) -> Iterator[str]:
    """A new database on the test server (empty, or a copy of ``template``); its URL. Dropped afterwards."""
    import psycopg

    from tools import sql

    base = admin_url()
    name = "voc_t_" + uuid.uuid4().hex[:12]
    copy_of = f' TEMPLATE "{template}"' if template else ""
    try:
        with psycopg.connect(base, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'CREATE DATABASE "{name}"{copy_of}')
    except psycopg.OperationalError as exc:
        pytest.fail(f"{ENV} is set but Postgres does not answer: {exc}")
    url = urlunsplit(urlsplit(base)._replace(path="/" + name))
    try:
        yield url
    finally:
        sql.close_pools(url)
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fresh_database() -> AbstractContextManager[str]:
    """A new, empty database on the test server; its URL. Dropped afterwards."""
    return _new_database()


def copy_database(url: str) -> AbstractContextManager[str]:
    """A copy of the database at ``url`` (Postgres copies from a template); its URL. Dropped afterwards."""
    from tools import sql

    sql.close_pools(url)  # a template must have no one connected
    return _new_database(template=urlsplit(url).path.lstrip("/"))
