"""Fixtures for the digest tests: the SYNTHETIC history, and the site built from it once."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine

from db.engine import open_database
from monitor.config import Settings
from monitor.site.build import SiteReport, build_site
from tests.digest import synthetic_history
from tests.digest.synthetic_history import History


@dataclass(frozen=True)
class BuiltSite:
    engine: Engine
    history: History
    report: SiteReport

    @property
    def root(self) -> Path:
        return self.report.out


@pytest.fixture
def history_db() -> Iterator[tuple[Engine, History]]:
    engine = open_database("sqlite://")
    yield engine, synthetic_history.build(engine)
    engine.dispose()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuiltSite]:
    """The SYNTHETIC history rendered once; tests only read it."""
    engine = open_database("sqlite://")
    history = synthetic_history.build(engine)
    report = build_site(
        engine,
        Settings(),
        synthetic_history.SOURCES,
        tmp_path_factory.mktemp("site"),
        since=synthetic_history.WEEK_START,
        now=synthetic_history.NOW,
        window="the last 7 days",
    )
    yield BuiltSite(engine, history, report)
    engine.dispose()
