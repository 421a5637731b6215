"""Fixtures of the reliability tests: a file database with queued alerts, SMTP servers that fail.

Every server here listens on 127.0.0.1 only; nothing reaches the internet.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from sqlalchemy import Engine

from db.engine import open_database
from monitor.config import Recipient
from tests.alerts import factory
from tests.alerts.conftest import Recorder, free_port
from tests.alerts.helpers import queue_change

PASSWORD = "s3cret-Pa55word-7f1c"  # a secret that must never show up anywhere
USER = "fdawatch-mailer"
SOURCES_TOML = f"""\
[[source]]
id = "{factory.SOURCE_ID}"
kind = "page"
url = "{factory.URL}"
title = "{factory.SOURCE_TITLE}"
tier = "T2"
"""


def refuse_login(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    return AuthResult(success=False, handled=False)


def accept_login(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    return AuthResult(success=True)


class Smtp:
    """A loopback SMTP server: plain, or requiring a login that always fails."""

    def __init__(self, *, auth: bool = False, accept: bool = False) -> None:
        self.port = free_port()
        self.inbox = Recorder()
        login = accept_login if accept else refuse_login
        options: dict[str, Any] = (
            {"auth_required": True, "auth_require_tls": False, "authenticator": login}
            if auth
            else {}
        )
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port, **options)

    def __enter__(self) -> Smtp:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    with Smtp() as server:
        yield server


@pytest.fixture
def file_engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated SQLite file (tmp_path/history.db) holding one source, no changes yet."""
    engine = open_database(f"sqlite:///{tmp_path / 'history.db'}")
    (tmp_path / "sources.toml").write_text(SOURCES_TOML, encoding="utf-8")
    yield engine
    engine.dispose()


def queue(
    engine: Engine, recipients: tuple[Recipient, ...] = (factory.ALICE,), **change: Any
) -> int:
    """One change with its alerts, committed together (as the history writer does)."""
    return queue_change(engine, recipients, **change)
