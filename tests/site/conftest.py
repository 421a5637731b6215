"""Fixtures for the digest tests: the SYNTHETIC history, and the site built from it once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from db.engine import open_database
from monitor.config import Settings
from monitor.site.build import build_site
from tests.support import digest_history
from tests.support.digest_history import BuiltSite, History


@pytest.fixture
def history_db() -> Iterator[tuple[Engine, History]]:
    engine = open_database("sqlite://")
    yield engine, digest_history.build(engine)
    engine.dispose()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuiltSite]:
    """The SYNTHETIC history rendered once; tests only read it."""
    engine = open_database("sqlite://")
    history = digest_history.build(engine)
    report = build_site(
        engine,
        Settings(),
        digest_history.SOURCES,
        tmp_path_factory.mktemp("site"),
        since=digest_history.WEEK_START,
        now=digest_history.NOW,
        window="the last 7 days",
    )
    yield BuiltSite(engine, history, report)
    engine.dispose()
