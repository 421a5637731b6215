"""Escalation on SQLite and PostgreSQL: one email per overdue change, never two; a review
before it is due (or while it waits for a retry) cancels it."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from db.models import Alert
from monitor.review.records import acknowledge
from tests.support import alert_history as factory
from tests.support.alert_history import DETECTED_AT, NOW, queue_change
from tests.support.review_history import QA, review_links_in, review_settings, send, text_of

DUE = DETECTED_AT + timedelta(hours=24)


def escalations(engine: Engine) -> list[tuple[str, str, str]]:
    with Session(engine) as session:
        rows = session.exec(
            select(Alert).where(Alert.kind == "escalation").order_by(col(Alert.id))
        ).all()
        return [(row.recipient, row.notice or "", row.status) for row in rows]


def test_an_open_change_is_escalated_once_naming_who_was_told_and_when(engine: Engine) -> None:
    change_id = queue_change(engine, [factory.ALICE, factory.BOB])  # T2, detected 14:30
    settings = review_settings()
    send(engine, settings, NOW)  # the alerts go out at 14:35

    early, mail = send(engine, settings, DUE - timedelta(minutes=1))
    assert (early.emails, mail.messages, escalations(engine)) == (0, [], [])

    report, mail = send(engine, settings, DUE)
    assert (report.emails, report.alerts) == (1, 1)
    (message,) = mail.messages
    assert message["To"] == QA
    assert message["Subject"] == (
        "[fdawatch] Not reviewed after 24 h: T2 FDA: compounded ketamine alert: "
        + factory.SUMMARY
    )
    text = text_of(message)
    assert (
        "Who was told:\n"
        "  - alice@pharmacy.example: sent 2023-10-10 14:35 UTC\n"
        "  - bob@pharmacy.example: sent 2023-10-10 14:35 UTC\n"
    ) in text
    assert "Detected: 2023-10-10 14:30 UTC" in text
    (link,) = review_links_in(message)
    assert link.startswith(f"https://fdawatch.pharmacy.example/review/{change_id}?to={QA}&sig=")

    for hours in (1, 48):  # every later drain: nothing more
        later, mail = send(engine, settings, DUE + timedelta(hours=hours))
        assert (later.emails, mail.messages) == (0, [])
    assert escalations(engine) == [(QA, str(change_id), "sent")]


def test_a_review_before_the_deadline_cancels_the_escalation(engine: Engine) -> None:
    change_id = queue_change(engine)
    send(engine, review_settings(), NOW)
    with Session(engine) as session:
        acknowledge(
            session, [change_id], reviewer="alice@pharmacy.example", disposition="no-action",
            note="wording only", now=NOW + timedelta(hours=2),
        )  # fmt: skip
        session.commit()

    report, mail = send(engine, review_settings(), DUE + timedelta(days=3))
    assert (report.emails, mail.messages, escalations(engine)) == (0, [], [])


def test_a_review_while_the_escalation_waits_for_a_retry_cancels_it(engine: Engine) -> None:
    change_id = queue_change(engine)
    send(engine, review_settings(), NOW)
    with Session(engine) as session:  # queued at the deadline, its send failed for now
        session.add(
            Alert(
                source_id=factory.SOURCE_ID, kind="escalation", notice=str(change_id),
                recipient=QA, severity="T2", created_at=DUE, attempts=1,
                next_attempt_at=DUE + timedelta(minutes=5),
                dedup_key=f"escalation:{change_id}:{QA}",
            )
        )  # fmt: skip
        acknowledge(
            session, [change_id], reviewer="alice@pharmacy.example", disposition="done",
            note="", now=DUE + timedelta(minutes=2),
        )  # fmt: skip
        session.commit()

    report, mail = send(engine, review_settings(), DUE + timedelta(minutes=10))
    assert (report.emails, mail.messages) == (0, [])
    assert escalations(engine) == [(QA, str(change_id), "cancelled")]


def test_only_the_configured_severities_escalate_and_only_when_enabled(engine: Engine) -> None:
    queue_change(engine, tier="T3")
    report, mail = send(engine, review_settings(), DUE + timedelta(days=1))
    assert report.emails == 1  # the T3 alert itself, no escalation
    assert mail.messages[0]["To"] == factory.ALICE.email
    assert escalations(engine) == []

    queue_change(engine, tier="T2")
    send(engine, factory.settings(), DUE + timedelta(days=1))  # escalation not configured
    assert escalations(engine) == []
