"""Queueing: who gets an alert row, and that queueing rides on the caller's transaction."""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from db.engine import open_database
from db.installation import install_id
from monitor.config import Recipient
from monitor.delivery import alerts, outbox
from tests.support import alert_history as factory
from tests.support.alert_history import NOW, SOURCES, queue_change
from tests.support.readback import expected_message_id, outbox_rows

EVERYONE = Recipient(email="all@pharmacy.example")
BY_SOURCE = Recipient(email="source@pharmacy.example", sources=(factory.SOURCE_ID,))
BY_TAG = Recipient(email="tag@pharmacy.example", tags=("ketamine",))
OTHER_SOURCE = Recipient(email="other@pharmacy.example", sources=("fda_medwatch_rss",))
ONLY_T1 = Recipient(email="t1@pharmacy.example", min_severity="T1")
UP_TO_T3 = Recipient(email="t3@pharmacy.example", min_severity="T3")


@pytest.mark.parametrize(
    ("severity", "tags", "expected"),
    [
        ("T1", (), ["all", "source", "t1", "t3"]),
        ("T2", (), ["all", "source", "t3"]),
        ("T2", ("ketamine",), ["all", "source", "tag", "t3"]),
        ("T4", (), ["all", "source"]),
        ("T5", ("ketamine",), []),  # T5 is noise: it never alerts anyone
    ],
)
def test_enqueue_picks_recipients_who_follow_and_want_the_severity(
    engine: Engine, severity: str, tags: tuple[str, ...], expected: list[str]
) -> None:
    recipients = [EVERYONE, BY_SOURCE, BY_TAG, OTHER_SOURCE, ONLY_T1, UP_TO_T3]
    with Session(engine) as session:
        change = factory.add_change(session, tier=severity)
        queued = outbox.enqueue(session, change, recipients, tags, NOW)
        names = sorted(a.recipient.split("@")[0] for a in queued)
        session.commit()
    assert names == sorted(expected)
    assert [(a.status, a.severity, a.kind) for a in outbox_rows(engine)] == [
        ("pending", severity, "change")
    ] * len(expected)


def test_enqueue_does_not_commit(engine: Engine) -> None:
    with Session(engine) as session:
        change = factory.add_change(session)
        assert outbox.enqueue(session, change, [factory.ALICE], (), NOW)
        session.rollback()  # the history writer's transaction fails: no orphan alerts
    assert outbox_rows(engine) == []


def test_enqueue_twice_or_with_a_repeated_recipient_adds_one_row(engine: Engine) -> None:
    with Session(engine) as session:
        change = factory.add_change(session)
        outbox.enqueue(session, change, [factory.ALICE, factory.ALICE], (), NOW)
        session.flush()
        again = [
            a.recipient
            for a in outbox.enqueue(session, change, [factory.ALICE, factory.BOB], (), NOW)
        ]
        session.commit()
    assert again == [factory.BOB.email]
    assert sorted(a.recipient for a in outbox_rows(engine)) == [
        factory.ALICE.email,
        factory.BOB.email,
    ]


def test_enqueue_notice_is_t2_and_respects_following(engine: Engine) -> None:
    with Session(engine) as session:
        factory.add_source(session)
        queued = outbox.enqueue_notice(
            session,
            factory.SOURCE_ID,
            "source_failing",
            "failed 3 times in a row",
            [EVERYONE, OTHER_SOURCE, ONLY_T1],
            NOW,
        )
        session.commit()
    assert len(queued) == 1
    assert [(a.recipient, a.severity, a.kind, a.change_id) for a in outbox_rows(engine)] == [
        (EVERYONE.email, "T2", "source_failing", None)
    ]
    with Session(engine) as session, pytest.raises(ValueError, match="unknown notice kind"):
        outbox.enqueue_notice(session, factory.SOURCE_ID, "on_fire", "x", [EVERYONE], NOW)


@pytest.mark.parametrize(
    ("attempts", "delay"),
    [
        (1, timedelta(minutes=5)),
        (2, timedelta(minutes=10)),
        (4, timedelta(minutes=40)),
        (7, timedelta(hours=5, minutes=20)),
        (8, timedelta(hours=6)),
        (100, timedelta(hours=6)),
    ],
)
def test_retry_delay_doubles_up_to_six_hours(attempts: int, delay: timedelta) -> None:
    assert outbox.retry_delay(attempts) == delay


INSTALL = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"


def test_message_id_depends_on_installation_recipient_and_the_set_of_changes() -> None:
    first = outbox.message_id("alice@pharmacy.example", ["change:2", "change:1"], INSTALL, "x.org")
    assert first == outbox.message_id(
        "Alice@pharmacy.example", ["change:1", "change:2"], INSTALL, "x.org"
    )
    assert first != outbox.message_id(
        "bob@pharmacy.example", ["change:1", "change:2"], INSTALL, "x.org"
    )
    assert first != outbox.message_id("alice@pharmacy.example", ["change:1"], INSTALL, "x.org")
    other_install = outbox.message_id(
        "alice@pharmacy.example", ["change:1", "change:2"], "another-install", "x.org"
    )
    assert other_install != first
    assert first.startswith("<fdawatch.") and first.endswith("@x.org>")
    assert len(first) == len("<fdawatch.@x.org>") + 20


@pytest.mark.parametrize(
    ("mail_from", "domain"),
    [
        ("fdawatch <alerts@Clinic.Example>", "clinic.example"),
        ("alerts@mail.clinic.example.", "mail.clinic.example"),
        ("fdawatch <fdawatch@localhost>", "localhost"),
        ("fdawatch", "fdawatch.invalid"),
        ("", "fdawatch.invalid"),
        ("fdawatch <alerts@bad_domain!>", "fdawatch.invalid"),
    ],
)
def test_message_id_domain_is_the_senders(mail_from: str, domain: str) -> None:
    assert outbox.message_id_domain(mail_from) == domain


def test_the_install_id_is_made_once_and_kept(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'history.db'}"
    engine = open_database(url)
    with Session(engine) as session:
        made = install_id(session)
    with Session(engine) as session:
        assert install_id(session) == made
    engine.dispose()
    reopened = open_database(url)
    with Session(reopened) as session:
        assert install_id(session) == made
    reopened.dispose()
    rebuilt = open_database(f"sqlite:///{tmp_path / 'rebuilt.db'}")
    with Session(rebuilt) as session:
        assert install_id(session) != made
    rebuilt.dispose()
    assert len(made) == 32 and int(made, 16) >= 0


class Capture:
    """A mailer that keeps the Message-ID of what it is given."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def describe(self) -> str:
        return "capture"

    def send(self, message: EmailMessage) -> str:
        self.ids.append(str(message["Message-ID"]))
        return "capture"


def test_a_rebuilt_database_never_reuses_the_old_message_ids(
    engine: Engine, tmp_path: Path
) -> None:
    """Change 1 of a new database is another change than change 1 of the old one: its email
    must not carry the old Message-ID (Gmail hides a repeated one as a duplicate)."""
    settings = factory.settings()
    old_mailer, new_mailer = Capture(), Capture()
    first = queue_change(engine)  # the old database's change 1
    alerts.send_pending(engine, settings, SOURCES, NOW, old_mailer)
    rebuilt = open_database(f"sqlite:///{tmp_path / 'rebuilt.db'}")
    again = queue_change(  # a different change, numbered 1 again
        rebuilt, new_text=factory.NEW_TEXT + "\nA different edit."
    )
    alerts.send_pending(rebuilt, settings, SOURCES, NOW, new_mailer)
    rebuilt.dispose()

    assert first == again == 1
    [old_id], [new_id] = old_mailer.ids, new_mailer.ids
    assert old_id != new_id
    assert old_id.endswith("@pharmacy.example>") and new_id.endswith("@pharmacy.example>")
    assert old_id == expected_message_id(engine, factory.ALICE.email, ["change:1"])


def test_queue_change_helper_keeps_history_and_outbox_together(engine: Engine) -> None:
    change_id = queue_change(engine, [factory.ALICE, factory.BOB])
    assert {(a.change_id, a.recipient) for a in outbox_rows(engine)} == {
        (change_id, factory.ALICE.email),
        (change_id, factory.BOB.email),
    }
