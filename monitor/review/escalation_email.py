"""The escalation e-mail: the overdue changes of an escalation recipient's rows, who was told.

Apart from `monitor.review.escalation` (which queues the rows on every send) so that a send with
nothing due does not load the rendering.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage

from sqlmodel import Session

from db.models import Alert, Change
from monitor.config import Settings
from monitor.delivery.render import compose_email, header_text, source_title
from monitor.review import records
from monitor.review.links import review_links
from monitor.sources import SourceConfig


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
        "escalation",
        context,
        subject=header_text(subject, 250),
        settings=settings,
        recipients=[recipient],
        message_id=message_id,
        date=now,
        extra_headers={"X-Fdawatch-Changes": " ".join(str(c.id) for c in changes)},
    )


def _hours(settings: Settings) -> str:
    hours = settings.escalation.after.total_seconds() / 3600
    return f"{hours:g} h" if hours < 48 else f"{hours / 24:g} days"
