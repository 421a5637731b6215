"""Shared test fixtures: a fresh history (SQLite and PostgreSQL), a fixed clock, sources in code.

Every test that takes `engine` (or `session`, `registered`) runs twice: on an in-memory SQLite
database and on PostgreSQL, because production may use either and they differ (rowcounts,
time zones, JSON, locking). The PostgreSQL run needs FDAWATCH_TEST_POSTGRES_URL (`.ci/postgres.sh`
starts a server and prints one); without it the run is skipped with that reason, except under CI,
where a missing PostgreSQL must not pass silently.

pytest-socket (see pyproject addopts) allows connections to loopback only: nothing here can
reach the internet.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import make_url
from sqlmodel import Session

from db.engine import make_engine, open_database
from monitor.sources import SourceConfig

FIXTURES = Path(__file__).parent / "fixtures"
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


POSTGRES_URL_VARIABLE = "FDAWATCH_TEST_POSTGRES_URL"


def postgres_test_url() -> str:
    """The PostgreSQL database to test against; skip (or, under CI, fail) when there is none."""
    url = os.environ.get(POSTGRES_URL_VARIABLE, "")
    if url:
        return url
    how = (
        f"{POSTGRES_URL_VARIABLE} is not set: run, as root, `export {POSTGRES_URL_VARIABLE}="
        '"$(bash .ci/postgres.sh)"` (or set it to a database you own) to test PostgreSQL'
    )
    if os.environ.get("CI"):
        pytest.fail(f"CI must test PostgreSQL too, but {how}", pytrace=False)
    pytest.skip(how)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A private schema in the PostgreSQL test database, at the newest migration, for this run.

    One schema per pytest run (not per test: migrating takes far longer than emptying tables),
    named after the process, so two suites running at once against one server do not collide.
    The URL selects it with `search_path`, so child processes given the URL use it too.
    """
    base = postgres_test_url()
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


def empty_postgres_database(url: str) -> None:
    """Empty every table of `url`'s schema and set every id counter back to 1: a fresh history."""
    engine = make_engine(url)
    try:
        tables = [name for name in inspect(engine).get_table_names() if name != "alembic_version"]
        with engine.begin() as connection:
            quoted = ", ".join(f'"{name}"' for name in tables)
            connection.execute(text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()


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


class Clock:
    """A controllable `now`: every call to `tick()` moves it on by an hour."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def tick(self, hours: float = 1) -> datetime:
        self.now += timedelta(hours=hours)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_source(**overrides: object) -> SourceConfig:
    values: dict[str, object] = {
        "id": "fda_ketamine_oral_alert",
        "kind": "page",
        "url": "https://www.fda.gov/drugs/human-drug-compounding/fda-warns-compounded-ketamine",
        "title": "FDA alert: compounded ketamine",
        "tier": "T2",
    }
    values.update(overrides)
    return SourceConfig(**values)  # type: ignore[arg-type]


@pytest.fixture
def registered(session: Session):  # type: ignore[no-untyped-def]
    """Register SourceConfigs in the database and return them (call with several)."""

    from monitor.history.writer import HistoryWriter

    def register(*sources: SourceConfig) -> list[SourceConfig]:
        HistoryWriter(list(sources)).sync_sources(session)
        session.commit()
        return list(sources)

    return register
