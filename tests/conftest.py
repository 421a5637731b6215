"""Shared test fixtures: an in-memory history, a fixed clock, sources built in code.

pytest-socket (see pyproject addopts) allows connections to loopback only: nothing here can
reach the internet.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from db.engine import open_database
from monitor.sources import SourceConfig

FIXTURES = Path(__file__).parent / "fixtures"
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture
def engine() -> Iterator[Engine]:
    """A fresh in-memory database at the newest migration."""
    engine = open_database("sqlite://")
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

    from monitor import history

    def register(*sources: SourceConfig) -> list[SourceConfig]:
        history.sync_sources(session, list(sources))
        session.commit()
        return list(sources)

    return register
