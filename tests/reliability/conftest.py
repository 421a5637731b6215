"""Fixtures of the reliability tests: a file database holding one source, an SMTP server.

Every server here listens on 127.0.0.1 only; nothing reaches the internet.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from db.engine import open_database
from tests.support import alert_history as factory
from tests.support.smtp import SmtpServer

SOURCES_TOML = f"""\
[[source]]
id = "{factory.SOURCE_ID}"
kind = "page"
url = "{factory.URL}"
title = "{factory.SOURCE_TITLE}"
tier = "T2"
"""


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def file_engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated SQLite file (tmp_path/history.db) holding one source, no changes yet."""
    engine = open_database(f"sqlite:///{tmp_path / 'history.db'}")
    (tmp_path / "sources.toml").write_text(SOURCES_TOML, encoding="utf-8")
    yield engine
    engine.dispose()
