"""Escalation: a change nobody reviewed within `[escalation] after` is sent, once, to `to`.

Escalations are outbox rows (kind `escalation`, the change id in `notice`) with a unique
`dedup_key` per change and escalation recipient, so each is queued exactly once however many
senders run, and delivered with the outbox's guarantees (retries, one Message-ID). A change
reviewed before its escalation is due is never queued; one reviewed while its escalation waits
(a retry after an SMTP failure) has the row cancelled before the next send.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from db.engine import in_batches
from db.models import Alert, Change
from monitor.config import Settings
from monitor.delivery.render import compose_email, header_text, render, source_title
from monitor.review import records
from monitor.review.links import review_links
from monitor.sources import SourceConfig

KIND = "escalation"
CANCELLED = "cancelled"
BATCH = 500


def dedup_key(change_id: int, recipient: str) -> str:
    return f"escalation:{change_id}:{recipient.lower()}"


def queue_escalations(engine: Engine, settings: Settings, now: datetime) -> int:
    """Cancel waiting escalations of reviewed changes, queue the newly due ones; commits.

    Returns how many rows were queued. Called before each drain of the outbox.
    """
    escalation = settings.escalation
    if not escalation.enabled:
        return 0
    with Session(engine) as session:
        waiting = session.exec(
            select(Alert).where(Alert.kind == KIND, Alert.status == "pending")
        ).all()
        reviewed = records.current_reviews(session, [int(row.notice or 0) for row in waiting])
        for row in waiting:
            if int(row.notice or 0) in reviewed:
                row.status = CANCELLED
                row.next_attempt_at = None
                session.add(row)
        session.commit()
        due = records.open_changes(session, escalation.severities, now - escalation.after)
        wanted = {
            dedup_key(change.id or 0, address): (change, address)
            for change in due
            for address in escalation.to
        }
        queued: set[str] = set()
        for batch in in_batches(sorted(wanted), BATCH):
            queued.update(
                key
                for key in session.exec(
                    select(Alert.dedup_key).where(col(Alert.dedup_key).in_(batch))
                )
                if key
            )
        rows = [
            Alert(
                change_id=None,
                source_id=change.source_id,
                kind=KIND,
                notice=str(change.id),
                recipient=address,
                severity=change.severity,
                created_at=now,
                dedup_key=key,
            )
            for key, (change, address) in wanted.items()
            if key not in queued
        ]
        if not rows:
            return 0
        session.add_all(rows)
        try:
            session.commit()
        except IntegrityError:  # another sender queued them first: theirs stand
            session.rollback()
            return 0
        return len(rows)


@dataclass(frozen=True)
class EscalatedChange:
    """One overdue change in an escalation email: what it is and who was told when."""

    change: Change
    source_title: str
    told: Sequence[Alert]
    review_link: str | None


def escalation_email(
    session: Session,
    rows: Sequence[Alert],
    *,
    settings: Settings,
    sources: Mapping[str, SourceConfig],
    recipient: str,
    message_id: str,
    now: datetime,
) -> EmailMessage:
    """One email to an escalation recipient listing the overdue changes of `rows`."""
    ids = sorted({int(row.notice or 0) for row in rows})
    changes = [change for change in (session.get(Change, i) for i in ids) if change is not None]
    if not changes:
        raise LookupError(f"the changes {ids} of escalation rows no longer exist")
    links = review_links(settings, [c.id or 0 for c in changes], recipient, now)
    items = [
        EscalatedChange(
            change=change,
            source_title=source_title(session, change.source_id, sources),
            told=records.who_was_told(session, change.id or 0),
            review_link=links.get(change.id or 0),
        )
        for change in sorted(changes, key=lambda c: (c.severity, c.detected_at, c.id))
    ]
    first = items[0].change
    subject = (
        f"[fdawatch] Not reviewed after {_hours(settings)}: {first.severity} "
        f"{items[0].source_title}: {first.summary or first.title}"
    )
    if len(items) > 1:
        subject += f" (+{len(items) - 1} more)"
    context = {"items": items, "after": _hours(settings), "now": now}
    return compose_email(
        subject=header_text(subject, 250),
        text=render("escalation.txt.j2", **context),
        html=render("escalation.html.j2", **context),
        sender=settings.mail_from,
        recipients=[recipient],
        message_id=message_id,
        date=now,
        extra_headers={"X-Fdawatch-Changes": " ".join(str(c.id) for c in changes)},
    )


def _hours(settings: Settings) -> str:
    hours = settings.escalation.after.total_seconds() / 3600
    return f"{hours:g} h" if hours < 48 else f"{hours / 24:g} days"
