"""Sending the outbox: claim due rows, build one email per recipient, deliver, record the outcome.

The rows and their state machine live in `monitor.delivery.outbox`; this module renders (Jinja)
and delivers (SMTP or `.eml`), so only senders load email rendering.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from email.message import EmailMessage

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from db.engine import in_batches
from db.installation import install_id
from db.models import Alert, Change
from monitor.config import Settings
from monitor.delivery.mailer import Mailer, mailer_for
from monitor.delivery.outbox import (
    CLAIM_BATCH,
    DIGEST_KIND,
    REPORT_KIND,
    alert_key,
    claim_due,
    message_id,
    message_id_domain,
    recipients_for,
    retry_delay,
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
from monitor.errors import DeliveryError, NotFound
from monitor.history.health import untold_problems
from monitor.review import escalation
from monitor.review.links import review_links
from monitor.site import digest
from monitor.site.digest_email import digest_email
from monitor.sources import SourceConfig


@dataclass
class SendReport:
    """What one `send_pending` run did; `alerts send` prints it."""

    via: str = ""
    emails: int = 0  # accepted by the server (or written as .eml)
    alerts: int = 0  # rows marked sent
    retry_emails: int = 0
    retry_alerts: int = 0
    failed_emails: int = 0
    failed_alerts: int = 0
    delivered: list[str] = field(default_factory=list)  # mailer descriptions (.eml paths)
    errors: list[str] = field(default_factory=list)
    #: Source-health notices nobody received (no recipient follows the source), as warnings.
    untold: list[str] = field(default_factory=list)

    @property
    def nothing_due(self) -> bool:
        return not (self.emails or self.retry_emails or self.failed_emails)


@dataclass
class _Email:
    recipient: str
    kind: str  # "change", "health", "digest", "escalation" or "report"
    rows: list[Alert]


def _group(rows: Sequence[Alert]) -> list[_Email]:
    """One email per recipient for changes, one for health notices, one for escalations, one per
    digest row.

    Rows that already carry a Message-ID were claimed together by a sender that died; they stay
    together so the re-sent email is the same email.
    """
    groups: dict[tuple[str, str, str], _Email] = {}
    for row in rows:
        if row.change_id is not None:
            kind = "change"
        elif row.kind in (DIGEST_KIND, REPORT_KIND):
            kind = row.kind
        elif row.kind == escalation.KIND:
            kind = "escalation"
        else:
            kind = "health"
        separate = str(row.id) if kind in (DIGEST_KIND, REPORT_KIND) else ""
        key = (row.recipient, kind, row.message_id or separate)
        groups.setdefault(key, _Email(row.recipient, kind, [])).rows.append(row)
    return list(groups.values())


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


def _build(
    session: Session,
    email: _Email,
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
        return escalation.escalation_email(
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


def _release(session: Session, rows: Sequence[Alert], error: DeliveryError, now: datetime) -> None:
    """Not accepted: back to pending with back-off, or failed for good on a permanent reply."""
    for row in rows:
        row.attempts += 1
        row.last_error = error.reason[:2000]
        row.sending_since = None
        if error.temporary:
            row.status = "pending"
            row.next_attempt_at = now + retry_delay(row.attempts)
            row.message_id = None  # never accepted: free to join a new group next time
        else:
            row.status = "failed"
            row.next_attempt_at = None
        session.add(row)
    session.commit()


def send_pending(
    engine: Engine,
    settings: Settings,
    sources: Mapping[str, SourceConfig],
    now: datetime,
    mailer: Mailer | None = None,
) -> SendReport:
    """Drain the outbox once: claim, group per recipient, send, record each outcome."""
    mailer = mailer or mailer_for(settings)
    report = SendReport(via=mailer.describe())
    with Session(engine) as session:
        report.untold = untold_problems(session, sources, settings.failure_threshold)
    escalation.queue_escalations(engine, settings, now)
    claimed = claim_due(engine, now)
    if not claimed:
        return report
    domain = message_id_domain(settings.mail_from)
    with Session(engine, expire_on_commit=False) as session:
        installation = install_id(session)
        rows = session.exec(select(Alert).where(col(Alert.id).in_(claimed))).all()
        unreachable: DeliveryError | None = None
        for email in _group(sorted(rows, key=lambda r: r.id or 0)):
            if unreachable is not None:  # the server is down: don't wait on it once per email
                _release(session, email.rows, unreachable, now)
                _count_release(report, email, unreachable)
                continue
            mid = email.rows[0].message_id or message_id(
                email.recipient, (alert_key(r) for r in email.rows), installation, domain
            )
            try:
                message = _build(session, email, settings, sources, now, mid)
            except Exception as error:  # a template or data bug must not stop other emails
                failure = DeliveryError(f"could not build the email: {error!r}", temporary=True)
                _release(session, email.rows, failure, now)
                _count_release(report, email, failure)
                continue
            for row in email.rows:
                row.message_id = mid
                session.add(row)
            session.commit()  # the Message-ID is on record before the server sees it
            try:
                where = mailer.send(message)
            except DeliveryError as error:
                _release(session, email.rows, error, now)
                _count_release(report, email, error)
                if error.temporary and error.connection:
                    unreachable = error
                continue
            except Exception as error:  # an unexpected mailer bug: retry later, keep the reason
                failure = DeliveryError(f"{type(error).__name__}: {error}", temporary=True)
                _release(session, email.rows, failure, now)
                _count_release(report, email, failure)
                continue
            for row in email.rows:
                row.status = "sent"
                row.sent_at = now
                row.sending_since = None
                row.last_error = None
                row.attempts += 1
                session.add(row)
            session.commit()
            report.emails += 1
            report.alerts += len(email.rows)
            report.delivered.append(where)
    return report


def _count_release(report: SendReport, email: _Email, error: DeliveryError) -> None:
    if error.temporary:
        report.retry_emails += 1
        report.retry_alerts += len(email.rows)
    else:
        report.failed_emails += 1
        report.failed_alerts += len(email.rows)
    message = f"{email.recipient}: {error.reason}"
    if message not in report.errors:
        report.errors.append(message)


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
