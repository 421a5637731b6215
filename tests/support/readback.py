"""Reading back what fdawatch stored and sent: the outbox rows, the changes, an email's parts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from email.message import EmailMessage

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from db.installation import install_id
from db.models import Alert, Change
from monitor.delivery import outbox


def utc(value: datetime | None) -> datetime | None:
    """Database datetimes come back naive (SQLite); they are UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def outbox_rows(engine: Engine) -> list[Alert]:
    with Session(engine) as session:
        return list(session.exec(select(Alert).order_by(col(Alert.id))).all())


def changes(engine: Engine) -> list[Change]:
    with Session(engine) as session:
        return list(session.exec(select(Change)).all())


def parts(message: EmailMessage) -> tuple[str, str]:
    """(text part, HTML part), decoded."""
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None, "expected multipart/alternative text + html"
    return str(text.get_content()), str(html.get_content())


def expected_message_id(
    engine: Engine, recipient: str, keys: Sequence[str], domain: str = "pharmacy.example"
) -> str:
    """The Message-ID this database gives `recipient`'s email about `keys` (factory's sender)."""
    with Session(engine) as session:
        return outbox.message_id(recipient, keys, install_id(session), domain)
