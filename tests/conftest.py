"""Shared test fixtures: a fresh history (SQLite and PostgreSQL), a clock, registered sources, SMTP.

Every test that takes `engine` (or `session`, `registered`) runs twice: on an in-memory SQLite
database and on PostgreSQL, because production may use either and they differ (rowcounts,
time zones, JSON, locking). The PostgreSQL run uses FDAWATCH_TEST_POSTGRES_URL when it is set
(`.ci/run` sets it with `.ci/postgres.sh`), else a throw-away server started for the session
(`tests/support/postgres.py`: pgserver's binaries or the system's, no root needed); see
tests/support/databases.py. Fixtures only: what tests share besides fixtures lives in
tests/support/.

pytest-socket (see pyproject addopts) allows connections to loopback only: nothing here can
reach the internet.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlmodel import Session

from db.engine import make_engine, open_database
from monitor.sources import SourceConfig
from tests.support.clock import T0, Clock
from tests.support.databases import (
    POSTGRES_URL_VARIABLE,
    empty_postgres_database,
    postgres_unavailable,
)
from tests.support.postgres import PostgresUnavailable, start_temporary_postgres
from tests.support.smtp import SmtpServer
from tests.support.sources import make_source

#: Still importable from here for tests/scheduler/, which moves to tests/support/ imports later.
__all__ = ["T0", "make_source"]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The PostgreSQL server to test against: FDAWATCH_TEST_POSTGRES_URL, else a throw-away one.

    A session fixture: a failure to start is remembered, so the skip costs one attempt per run.
    """
    configured = os.environ.get(POSTGRES_URL_VARIABLE, "")
    if configured:
        yield configured
        return
    try:
        server, url = start_temporary_postgres()
    except PostgresUnavailable as error:
        postgres_unavailable(str(error))
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A private schema in the PostgreSQL test database, at the newest migration, for this run.

    One schema per pytest run (not per test: migrating takes far longer than emptying tables),
    named after the process, so two suites running at once against one server do not collide.
    The URL selects it with `search_path`, so child processes given the URL use it too.
    """
    base = postgres_server
    schema = f"fdawatch_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin = make_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    rendered = url.render_as_string(hide_password=False)
    open_database(rendered).dispose()
    try:
        yield rendered
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """The URL of an empty database at the newest migration, once per backend."""
    if request.param == "sqlite":
        return "sqlite://"
    url: str = request.getfixturevalue("postgres_url")
    empty_postgres_database(url)
    return url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A fresh database at the newest migration: in-memory SQLite, then PostgreSQL."""
    engine = (
        open_database(database_url) if database_url == "sqlite://" else make_engine(database_url)
    )
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty history at the newest migration that other connections and processes can open.

    The `engine` fixture's SQLite is in memory, one connection for the whole test: fine for one
    thread, wrong for racing workers or a real scheduler's job threads, whose transactions would
    interleave on it. This is a SQLite file (as `fdawatch run` uses), or the PostgreSQL schema.
    """
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'history.db'}"
        open_database(url).dispose()
        return url
    postgres: str = request.getfixturevalue("postgres_url")
    empty_postgres_database(postgres)
    return postgres


@pytest.fixture
def shared_engine(shared_url: str) -> Iterator[Engine]:
    """An engine on `shared_url`: each thread gets its own connection."""
    engine = make_engine(shared_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine) as session:
        yield session


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def registered(session: Session):  # type: ignore[no-untyped-def]
    """Register SourceConfigs in the database and return them (call with several)."""

    from monitor.history.writer import HistoryWriter

    def register(*sources: SourceConfig) -> list[SourceConfig]:
        HistoryWriter(list(sources)).sync_sources(session)
        session.commit()
        return list(sources)

    return register


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server on loopback (tests/support/smtp.py), accepting mail."""
    with SmtpServer() as server:
        yield server


@pytest.fixture
def smtp_down() -> Iterator[SmtpServer]:
    """A server object whose port has no listener until the test calls `.start()`."""
    server = SmtpServer()
    yield server
    server.stop()
