"""A database several threads or processes can share: a SQLite file, or the PostgreSQL schema.

The root `engine` fixture's SQLite is in memory, one connection for the whole test: fine for one
thread, useless for racing workers. These fixtures give a URL every worker can open.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from db.engine import make_engine, open_database
from tests.conftest import empty_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty history at the newest migration that other connections and processes can open."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'history.db'}"
        open_database(url).dispose()
        return url
    postgres: str = request.getfixturevalue("postgres_url")
    empty_postgres_database(postgres)
    return postgres


@pytest.fixture
def postgres_only_url(postgres_url: str) -> str:
    """The PostgreSQL history, emptied: for the tests of several machines sharing one server."""
    empty_postgres_database(postgres_url)
    return postgres_url


@pytest.fixture
def shared_engine(shared_url: str) -> Iterator[Engine]:
    engine = make_engine(shared_url)
    yield engine
    engine.dispose()
