"""Review tests' shared pieces: review settings with a test key, and alerts caught in memory."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta
from email.message import EmailMessage

from sqlalchemy import Engine

from monitor.config import Settings
from monitor.config_review import EscalationSettings, ReviewSettings
from monitor.delivery.alerts import SendReport, send_pending
from tests.support import alert_history as factory
from tests.support.alert_history import SOURCES

#: A test key (never a real one): 64 hex characters, as `secrets.token_hex(32)` makes.
SECRET = "0123456789abcdef" * 4
REVIEW_URL = "https://fdawatch.pharmacy.example"
QA = "qa@pharmacy.example"
_LINK = re.compile(r"Review this change: (\S+)")


class CaughtMail:
    """A mailer that keeps what it is given (the SMTP path is tested in tests/delivery)."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    def describe(self) -> str:
        return "memory"

    def send(self, message: EmailMessage) -> str:
        self.messages.append(message)
        return f"memory #{len(self.messages)}"


def review_settings(**overrides: object) -> Settings:
    """The alert tests' settings with review links on and escalation to QA after 24 h."""
    settings = factory.settings(
        review=ReviewSettings(url=REVIEW_URL, secret_key=SECRET, link_days=30),
        escalation=EscalationSettings(
            after=timedelta(hours=24), to=(QA,), severities=("T1", "T2")
        ),
    )
    return replace(settings, **overrides)  # type: ignore[arg-type]


def send(engine: Engine, settings: Settings, now: datetime) -> tuple[SendReport, CaughtMail]:
    mail = CaughtMail()
    return send_pending(engine, settings, SOURCES, now, mailer=mail), mail


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return part.get_content()


def review_links_in(message: EmailMessage) -> list[str]:
    return _LINK.findall(text_of(message))
