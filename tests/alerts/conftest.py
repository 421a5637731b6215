"""Fixtures of the alert tests: a real SMTP server on loopback, running or not yet started."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.smtp import SmtpServer


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def smtp_down() -> Iterator[SmtpServer]:
    """A server object whose port has no listener until the test calls `.start()`."""
    server = SmtpServer()
    yield server
    server.stop()
