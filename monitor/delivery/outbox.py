"""The alert outbox in the database: queued with the change that causes it, claimed to send.

Queueing happens inside the history writer's transaction, so a change is never stored without
its alerts (or alerted without being stored). Draining claims rows and commits *before* talking
to SMTP (`monitor.delivery.alerts`), stores the deterministic Message-ID on the rows, and only
marks them sent after the server accepted. A Message-ID is unique per installation (the database's
random install id is hashed in, the domain is the sender's), so a rebuilt database whose change
ids start again at 1 never reuses an old one. A sender that dies in between leaves rows in
`sending`; after `LEASE` another run re-sends them with the same Message-ID, so the one possible
duplicate is recognisable.

Database only: the history writer imports this module, and must not load email rendering.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from email.utils import parseaddr

from sqlalchemy import ColumnElement, Engine, and_, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from db.engine import IN_LIST_MAX, in_batches
from db.models import Alert, Change
from monitor.config import Recipient

LEASE = timedelta(minutes=10)
FIRST_RETRY = timedelta(minutes=5)
MAX_RETRY = timedelta(hours=6)
NOTICE_KINDS = ("source_failing", "source_recovered", "layout_drift", "source_blocked")
NOTICE_SEVERITY = "T2"
#: Outbox rows that stand for a digest email (one per recipient and period).
DIGEST_KIND = "digest"
#: Outbox rows that stand for a daily watch report (`monitor.delivery.daily_report`).
REPORT_KIND = "report"
#: The source id of rows that concern every source (digests).
ALL_SOURCES = "*"
#: Ids per claiming UPDATE or change lookup.
CLAIM_BATCH = IN_LIST_MAX
#: The Message-ID domain when the sender address has none fit for it (RFC 2606: never real).
FALLBACK_DOMAIN = "fdawatch.invalid"
_DOMAIN = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*")


def recipients_for(
    recipients: Iterable[Recipient], source_id: str, source_tags: Sequence[str], severity: str
) -> list[str]:
    """Addresses (each once, in config order) that follow the source and want the severity."""
    chosen: list[str] = []
    for recipient in recipients:
        if recipient.email in chosen:
            continue
        if recipient.follows(source_id, tuple(source_tags)) and recipient.wants(severity):
            chosen.append(recipient.email)
    return chosen


def enqueue(
    session: Session,
    change: Change,
    recipients: Iterable[Recipient],
    source_tags: Sequence[str] = (),
    now: datetime | None = None,
    *,
    inserted: bool = False,
) -> list[Alert]:
    """Queue one pending alert per interested recipient, in the caller's transaction.

    Nothing is committed here: the history writer commits the change and its alerts together.
    Calling it twice for the same change adds nothing the second time. `inserted`: the caller
    flushed the change itself in this transaction, so it has no alerts to look up either.
    """
    fresh = inserted or change.id is None  # not stored before: no alert can name it yet
    if change.id is None:
        session.flush()
    assert change.id is not None
    emails = recipients_for(recipients, change.source_id, source_tags, change.severity)
    if not emails:
        return []
    existing: set[str] = set()
    if not fresh:
        existing = set(
            session.exec(
                select(Alert.recipient).where(
                    Alert.change_id == change.id, col(Alert.recipient).in_(emails)
                )
            ).all()
        )
    alerts = [
        Alert(
            change_id=change.id,
            source_id=change.source_id,
            kind="change",
            recipient=email,
            severity=change.severity,
            created_at=now or change.detected_at,
        )
        for email in emails
        if email not in existing
    ]
    session.add_all(alerts)
    return alerts


def enqueue_notice(
    session: Session,
    source_id: str,
    kind: str,
    notice: str,
    recipients: Iterable[Recipient],
    now: datetime,
    source_tags: Sequence[str] = (),
) -> list[Alert]:
    """Queue a source-health notice (failing / recovered / layout drift) at T2; no commit."""
    if kind not in NOTICE_KINDS:
        raise ValueError(f"unknown notice kind {kind!r}; use one of {', '.join(NOTICE_KINDS)}")
    alerts = [
        Alert(
            change_id=None,
            source_id=source_id,
            kind=kind,
            notice=notice,
            recipient=email,
            severity=NOTICE_SEVERITY,
            created_at=now,
        )
        for email in recipients_for(recipients, source_id, source_tags, NOTICE_SEVERITY)
    ]
    session.add_all(alerts)
    return alerts


def retry_delay(attempts: int) -> timedelta:
    """5 min, 10, 20, … doubling per failed attempt, never more than 6 h."""
    if attempts < 1:
        return FIRST_RETRY
    return min(FIRST_RETRY * 2 ** min(attempts - 1, 16), MAX_RETRY)


def message_id_domain(mail_from: str) -> str:
    """The right-hand side of our Message-IDs: the domain of the From address (FDAWATCH_MAIL_FROM).

    `fdawatch <alerts@clinic.example>` gives `clinic.example`; an address without a usable domain
    gives `fdawatch.invalid`.
    """
    address = parseaddr(mail_from)[1]
    domain = address.rpartition("@")[2].strip().lower().rstrip(".") if "@" in address else ""
    return domain if _DOMAIN.fullmatch(domain) else FALLBACK_DOMAIN


def message_id(recipient: str, keys: Iterable[str], install_id: str, domain: str) -> str:
    """Same installation, recipient and changes → same Message-ID, also when re-sent after a crash.

    `install_id` (`db.installation.install_id`) differs per database, so change 1 of a rebuilt
    database does not get the Message-ID change 1 of the old one had; mail systems that hide a
    repeated Message-ID as a duplicate would otherwise swallow the new alert.
    """
    material = f"{install_id}|{recipient.lower()}|{','.join(sorted(keys))}"
    return f"<fdawatch.{hashlib.sha1(material.encode()).hexdigest()[:20]}@{domain}>"


def alert_key(alert: Alert) -> str:
    """What a row stands for in its email's Message-ID."""
    if alert.change_id is not None:
        return f"change:{alert.change_id}"
    if alert.kind == DIGEST_KIND and alert.dedup_key:
        return alert.dedup_key  # the same period's digest always has the same Message-ID
    return f"alert:{alert.id}"


def _due(now: datetime) -> ColumnElement[bool]:
    """Pending and due, or stuck in `sending` past the lease (its sender died)."""
    return or_(
        and_(
            col(Alert.status) == "pending",
            or_(col(Alert.next_attempt_at).is_(None), col(Alert.next_attempt_at) <= now),
        ),
        and_(col(Alert.status) == "sending", col(Alert.sending_since) < now - LEASE),
    )


def claim_due(engine: Engine, now: datetime) -> list[int]:
    """Mark due rows `sending` and commit; returns the ids this caller now owns.

    Rows are claimed by conditional UPDATEs (`CLAIM_BATCH` ids each) that return the ids they
    changed, so two senders racing never both own a row, and a storm of alerts costs a few
    statements rather than one per row.
    """
    claimed: list[int] = []
    with Session(engine) as session:
        candidates = session.exec(select(Alert.id).where(_due(now)).order_by(col(Alert.id))).all()
        for batch in in_batches(candidates, CLAIM_BATCH):
            result = session.exec(
                update(Alert)
                .where(col(Alert.id).in_(batch), _due(now))
                .values(status="sending", sending_since=now)
                .returning(col(Alert.id))
                .execution_options(synchronize_session=False)
            )
            claimed.extend(result.scalars())
        session.commit()
    return sorted(claimed)


def queue_digest(
    session: Session, recipient: str, period_key: str, severity: str, dedup: str, now: datetime
) -> bool:
    """Queue one digest row and commit; False when this period was already queued (a race)."""
    return queue_once(session, DIGEST_KIND, recipient, period_key, severity, dedup, now)


def queue_once(
    session: Session,
    kind: str,
    recipient: str,
    notice: str,
    severity: str,
    dedup: str,
    now: datetime,
) -> bool:
    """Queue one row about every source (a digest, a daily report) under a unique `dedup` key
    and commit; False when a row with that key exists (another run or process queued it)."""
    session.add(
        Alert(
            change_id=None,
            source_id=ALL_SOURCES,
            kind=kind,
            notice=notice,
            recipient=recipient,
            severity=severity,
            created_at=now,
            dedup_key=dedup,
        )
    )
    try:
        session.commit()
    except IntegrityError:  # another process queued the same period first
        session.rollback()
        return False
    return True


def is_queued(engine: Engine, dedup: str) -> bool:
    with Session(engine) as session:
        return session.exec(select(Alert.id).where(Alert.dedup_key == dedup)).first() is not None
