"""Building the e-mail a group of claimed outbox rows stands for: Jinja, views, digests.

`monitor.delivery.alerts` claims due rows and delivers; it loads this module only once it has
claimed something, so a send with nothing due (every `crawl`, and `alerts send` from cron) never
loads Jinja, the templates' helpers or the digest (~35 ms of a ~0.55 s command). `preview`
builds a change's e-mail without queuing it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from email.message import EmailMessage
from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from db.engine import in_batches
from db.installation import install_id
from db.models import Alert, Change
from monitor.config import Settings
from monitor.delivery.outbox import (
    CLAIM_BATCH,
    REPORT_KIND,
    message_id,
    message_id_domain,
    recipients_for,
)
from monitor.delivery.reading import rank
from monitor.delivery.render import (
    ChangeView,
    ListedChange,
    NoticeView,
    alert_email,
    change_view,
    health_email,
    listed_change,
    notice_view,
)
from monitor.delivery.same_action import group_same_action, seen_in
from monitor.delivery.threads import thread, thread_root
from monitor.errors import NotFound
from monitor.review.escalation_email import escalation_email
from monitor.review.links import review_links
from monitor.site import digest
from monitor.site.digest_email import digest_email
from monitor.sources import SourceConfig

if TYPE_CHECKING:
    from monitor.delivery.alerts import Email


def _change_views(
    session: Session,
    rows: Sequence[Alert],
    settings: Settings,
    sources: Mapping[str, SourceConfig],
    cap: int,
) -> tuple[list[ChangeView], list[ListedChange], list[Change]]:
    """The `cap` most severe entries in full, the rest as list lines (no diff computed), and
    every change in the email's order. An entry is one change, or one FDA action seen in
    several sources (`same_action`); list lines are not grouped."""
    wanted = sorted({row.change_id for row in rows if row.change_id is not None})
    changes = [
        change
        for batch in in_batches(wanted, CLAIM_BATCH)
        for change in session.exec(select(Change).where(col(Change.id).in_(batch)))
    ]
    missing = set(wanted) - {change.id for change in changes}
    if missing:
        row = next(row for row in rows if row.change_id in missing)
        raise LookupError(f"change {row.change_id} of alert {row.id} no longer exists")
    ordered = sorted(changes, key=rank)
    entries = group_same_action(session, ordered)  # one FDA action in N sources: one entry
    full = [
        replace(
            change_view(session, group[0], settings, sources),
            seen_in=seen_in(session, group, sources),
        )
        for group in entries[:cap]
    ]
    listed = [
        listed_change(session, change, settings, sources)
        for group in entries[cap:]
        for change in group
    ]
    return full, listed, ordered


def build_email(
    session: Session,
    email: Email,
    settings: Settings,
    sources: Mapping[str, SourceConfig],
    now: datetime,
    mid: str,
) -> EmailMessage:
    if email.kind == "change":
        views, listed, changes = _change_views(
            session, email.rows, settings, sources, max(1, settings.storm_cap)
        )
        message = alert_email(
            views,
            listed,
            settings=settings,
            recipients=[email.recipient],
            message_id=mid,
            now=now,
            review_links=review_links(settings, [v.id for v in views], email.recipient, now),
        )
        message.replace_header("X-Fdawatch-Changes", " ".join(str(c.id) for c in changes))
        documents = [(change.source_id, change.doc_key) for change in changes]
        return thread(message, thread_root(session, email.recipient, documents, mid))
    if email.kind == "digest":
        return _digest_email(session, email.rows[0], settings, sources, now, mid)
    if email.kind == "escalation":
        return escalation_email(
            session,
            email.rows,
            settings=settings,
            sources=sources,
            recipient=email.recipient,
            message_id=mid,
            now=now,
        )
    if email.kind == REPORT_KIND:
        from monitor.delivery.report_email import report_email

        row = email.rows[0]
        return report_email(
            row.notice or "", settings=settings, recipients=[row.recipient], message_id=mid, now=now
        )
    notices: list[NoticeView] = [
        notice_view(
            session,
            kind=row.kind,
            source_id=row.source_id,
            notice=row.notice,
            created_at=row.created_at,
            sources=sources,
        )
        for row in sorted(email.rows, key=lambda r: r.id or 0)
    ]
    return health_email(
        notices, settings=settings, recipients=[email.recipient], message_id=mid, now=now
    )


def _digest_email(
    session: Session,
    row: Alert,
    settings: Settings,
    sources: Mapping[str, SourceConfig],
    now: datetime,
    mid: str,
) -> EmailMessage:
    """The digest a queued row stands for, rebuilt from the history for its period."""
    period = digest.parse_period(row.notice or "")
    recipient = digest.recipient_for(settings, row.recipient)
    content = digest.period_digest(session, settings, sources, period, recipient)
    return digest_email(
        content,
        frequency=period.frequency,
        settings=settings,
        recipients=[row.recipient],
        message_id=mid,
        now=now,
    )


def preview(
    session: Session,
    change_id: int,
    settings: Settings,
    sources: Mapping[str, SourceConfig],
    now: datetime | None = None,
) -> EmailMessage:
    """The email a change produces, addressed to whoever would get it; nothing is queued."""
    change = session.get(Change, change_id)
    if change is None:
        raise NotFound(f"no change with id {change_id}; `fdawatch changes` lists them")
    mid = message_id(
        "preview",
        [f"change:{change_id}"],
        install_id(session),
        message_id_domain(settings.mail_from),
    )
    tags = sources[change.source_id].tags if change.source_id in sources else ()
    recipients = recipients_for(settings.recipients, change.source_id, tags, change.severity)
    view = change_view(session, change, settings, sources)
    return alert_email(
        [view],
        [],
        settings=settings,
        recipients=recipients,
        message_id=mid,
        now=now or change.detected_at,
    )
