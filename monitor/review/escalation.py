"""Escalation: a change nobody reviewed within `[escalation] after` is sent, once, to `to`.

Escalations are outbox rows (kind `escalation`, the change id in `notice`) with a unique
`dedup_key` per change and escalation recipient, so each is queued exactly once however many
senders run, and delivered with the outbox's guarantees (retries, one Message-ID). A change
reviewed before its escalation is due is never queued; one reviewed while its escalation waits
(a retry after an SMTP failure) has the row cancelled before the next send.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from db.engine import in_batches
from db.models import Alert
from monitor.config import Settings
from monitor.review import records

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
