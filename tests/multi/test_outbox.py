"""Several workers draining one outbox: each alert is emailed once, each digest queued once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from email.message import EmailMessage

from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from db.models import Alert
from monitor.config import Recipient, Settings
from monitor.delivery import alerts, outbox
from monitor.site import digest
from tests.support import alert_history as factory
from tests.support import digest_history
from tests.support.alert_history import NOW, SOURCES, queue_numbered

WORKERS = 4
RECIPIENTS = tuple(Recipient(email=f"pharmacist{n}@pharmacy.example") for n in range(5))


class SlowMailer:
    """Records every message; slow enough that the workers' drains overlap."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.lock = threading.Lock()

    def describe(self) -> str:
        return "a recording mailer"

    def send(self, message: EmailMessage) -> str:
        time.sleep(0.02)
        with self.lock:
            self.messages.append(message)
        return str(message["To"])


def race(work: Callable[[], object]) -> list[object]:
    """Run `work` in WORKERS threads released at the same moment; re-raise any error."""
    start = threading.Barrier(WORKERS)
    results: list[object] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            start.wait()
            results.append(work())
        except BaseException as error:  # surfaced below instead of dying with the thread
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    return results


def outbox_rows(engine: Engine) -> list[Alert]:
    with Session(engine) as session:
        return list(session.exec(select(Alert).order_by(col(Alert.id))).all())


def test_racing_senders_email_every_alert_exactly_once(shared_engine: Engine) -> None:
    """Real threads racing: on PostgreSQL a race; on the SQLite file `BEGIN IMMEDIATE` serialises
    the claims, so there only tests/delivery/test_outbox_race.py reaches the claim's guard."""
    queue_numbered(shared_engine, 6, RECIPIENTS)
    # One email's sender died mid-send long ago: it is retried once, with its Message-ID.
    with Session(shared_engine) as session:
        stuck = session.exec(select(Alert).where(Alert.recipient == RECIPIENTS[0].email)).all()
        stuck_ids = [row.id for row in stuck]
    with shared_engine.begin() as connection:
        connection.execute(
            update(Alert)
            .where(col(Alert.id).in_(stuck_ids))
            .values(
                status="sending",
                sending_since=NOW - outbox.LEASE - timedelta(minutes=1),
                message_id="<crashed-send@fdawatch>",
            )
        )
    mailer = SlowMailer()
    settings = factory.settings(recipients=RECIPIENTS)
    reports = race(lambda: alerts.send_pending(shared_engine, settings, SOURCES, NOW, mailer))

    rows = outbox_rows(shared_engine)
    assert len(rows) == 6 * len(RECIPIENTS)
    assert {row.status for row in rows} == {"sent"}
    assert all(row.attempts == 1 for row in rows)
    received = sorted(str(message["To"]) for message in mailer.messages)
    assert received == sorted(r.email for r in RECIPIENTS)  # one email per recipient, no repeat
    ids = [str(message["Message-ID"]) for message in mailer.messages]
    assert len(set(ids)) == len(ids)
    assert "<crashed-send@fdawatch>" in ids  # the retry kept the crashed send's Message-ID
    assert sum(report.alerts for report in reports) == len(rows)  # type: ignore[attr-defined]


def test_racing_workers_queue_and_send_one_digest_per_period(shared_engine: Engine) -> None:
    digest_history.build(shared_engine)
    subscribers = (
        Recipient(email="owner@pharmacy.example", digest="weekly"),
        Recipient(email="pic@pharmacy.example", digest="weekly"),
    )
    settings = Settings(mail_from="fdawatch <fdawatch@pharmacy.example>", recipients=subscribers)
    sources = digest_history.SOURCES
    now = digest_history.NOW

    queued = race(lambda: digest.queue_due_digests(shared_engine, settings, sources, now))
    keys = [key for keys in queued for key in keys]  # type: ignore[attr-defined]
    rows = [row for row in outbox_rows(shared_engine) if row.kind == outbox.DIGEST_KIND]
    assert sorted(row.dedup_key for row in rows) == sorted(keys)
    assert sorted(row.recipient for row in rows) == sorted(s.email for s in subscribers)

    mailer = SlowMailer()
    race(lambda: alerts.send_pending(shared_engine, settings, sources, now, mailer))
    assert sorted(str(m["To"]) for m in mailer.messages) == sorted(s.email for s in subscribers)
    # The next hour's run of every worker finds the period done: nothing more is queued or sent.
    later = now + timedelta(hours=1)
    assert (
        race(lambda: digest.queue_due_digests(shared_engine, settings, sources, later))
        == [[]] * WORKERS
    )
    race(lambda: alerts.send_pending(shared_engine, settings, sources, later, mailer))
    assert len(mailer.messages) == len(subscribers)
