"""Several machines: the root conftest's `shared_url` / `shared_engine` (a SQLite file or the
PostgreSQL schema) serve the racing workers; this adds the PostgreSQL-only history."""

from __future__ import annotations

import pytest

from tests.support.databases import empty_postgres_database


@pytest.fixture
def postgres_only_url(postgres_url: str) -> str:
    """The PostgreSQL history, emptied: for the tests of several machines sharing one server."""
    empty_postgres_database(postgres_url)
    return postgres_url
