"""Shared steps of the alert tests: queue changes, read the outbox back, pick message parts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from db.models import Alert, Change
from monitor.config import Recipient
from monitor.delivery import outbox
from tests.alerts import factory

NOW = factory.DETECTED_AT + timedelta(minutes=5)
SOURCES = {factory.SOURCE_ID: factory.source_config()}


def utc(value: datetime | None) -> datetime | None:
    """Database datetimes come back naive (SQLite); they are UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def queue_change(
    engine: Engine, recipients: Sequence[Recipient] = (factory.ALICE,), **change: object
) -> int:
    """Insert a change and enqueue its alerts in one transaction, as the history writer does."""
    with Session(engine) as session:
        row = factory.add_change(session, **change)  # type: ignore[arg-type]
        outbox.enqueue(session, row, recipients, (), NOW)
        session.commit()
        assert row.id is not None
        return row.id


def queue_numbered(
    engine: Engine, count: int, recipients: Sequence[Recipient] = (factory.ALICE,)
) -> list[int]:
    ids = []
    with Session(engine) as session:
        for number in range(1, count + 1):
            row = factory.numbered_change(session, number)
            outbox.enqueue(session, row, recipients, (), NOW)
            assert row.id is not None
            ids.append(row.id)
        session.commit()
    return ids


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
