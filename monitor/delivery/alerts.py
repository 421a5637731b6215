"""The alert outbox: rows are queued with the change that causes them and drained by `send_pending`.

Queueing happens inside the history writer's transaction, so a change is never stored without
its alerts (or alerted without being stored). Draining claims rows and commits *before* talking
to SMTP, stores the deterministic Message-ID on the rows, and only marks them sent after the
server accepted. A sender that dies in between leaves rows in `sending`; after `LEASE` another
run re-sends them with the same Message-ID, so the one possible duplicate is recognisable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

from sqlalchemy import ColumnElement, Engine, and_, or_, update
from sqlmodel import Session, col, select

from db.engine import IN_LIST_MAX, in_batches
from db.models import Alert, Change
from monitor.config import Recipient, Settings
from monitor.delivery.mailer import Mailer, mailer_for
from monitor.delivery.render import (
    ChangeView,
    ListedChange,
    NoticeView,
    alert_email,
    change_view,
    digest_email,
    health_email,
    listed_change,
    notice_view,
)
from monitor.errors import DeliveryError, NotFound
from monitor.site import digest
from monitor.sources import SourceConfig

LEASE = timedelta(minutes=10)
FIRST_RETRY = timedelta(minutes=5)
MAX_RETRY = timedelta(hours=6)
NOTICE_KINDS = ("source_failing", "source_recovered", "layout_drift", "source_blocked")
NOTICE_SEVERITY = "T2"
#: Ids per claiming UPDATE or change lookup.
CLAIM_BATCH = IN_LIST_MAX
MESSAGE_ID_DOMAIN = "fdawatch"


def _recipients_for(
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
) -> list[Alert]:
    """Queue one pending alert per interested recipient, in the caller's transaction.

    Nothing is committed here: the history writer commits the change and its alerts together.
    Calling it twice for the same change adds nothing the second time.
    """
    fresh = change.id is None  # not stored yet, so no alert can name it: nothing to look up
    if fresh:
        session.flush()
    assert change.id is not None
    emails = _recipients_for(recipients, change.source_id, source_tags, change.severity)
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
        for email in _recipients_for(recipients, source_id, source_tags, NOTICE_SEVERITY)
    ]
    session.add_all(alerts)
    return alerts


def retry_delay(attempts: int) -> timedelta:
    """5 min, 10, 20, … doubling per failed attempt, never more than 6 h."""
    if attempts < 1:
        return FIRST_RETRY
    return min(FIRST_RETRY * 2 ** min(attempts - 1, 16), MAX_RETRY)


def message_id(recipient: str, keys: Iterable[str]) -> str:
    """Same recipient and same changes → same Message-ID, also when re-sent after a crash."""
    material = recipient.lower() + "|" + ",".join(sorted(keys))
    return f"<fdawatch.{hashlib.sha1(material.encode()).hexdigest()[:16]}@{MESSAGE_ID_DOMAIN}>"


def _alert_key(alert: Alert) -> str:
    if alert.change_id is not None:
        return f"change:{alert.change_id}"
    if alert.kind == digest.DIGEST_KIND and alert.dedup_key:
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

    @property
    def nothing_due(self) -> bool:
        return not (self.emails or self.retry_emails or self.failed_emails)


@dataclass
class _Email:
    recipient: str
    kind: str  # "change", "health" or "digest"
    rows: list[Alert]


def _group(rows: Sequence[Alert]) -> list[_Email]:
    """One email per recipient for changes, one for health notices, one per digest row.

    Rows that already carry a Message-ID were claimed together by a sender that died; they stay
    together so the re-sent email is the same email.
    """
    groups: dict[tuple[str, str, str], _Email] = {}
    for row in rows:
        if row.change_id is not None:
            kind = "change"
        elif row.kind == digest.DIGEST_KIND:
            kind = "digest"
        else:
            kind = "health"
        separate = str(row.id) if kind == "digest" else ""
        key = (row.recipient, kind, row.message_id or separate)
        groups.setdefault(key, _Email(row.recipient, kind, [])).rows.append(row)
    return list(groups.values())


def _change_views(
    session: Session,
    rows: Sequence[Alert],
    settings: Settings,
    sources: Mapping[str, SourceConfig],
    cap: int,
) -> tuple[list[ChangeView], list[ListedChange]]:
    """The `cap` most severe changes in full, the rest as list lines (no diff computed)."""
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
    ordered = sorted(changes, key=lambda c: (c.severity, c.detected_at, c.id))
    full = [change_view(session, change, settings, sources) for change in ordered[:cap]]
    listed = [listed_change(session, change, sources) for change in ordered[cap:]]
    return full, listed


def _build(
    session: Session,
    email: _Email,
    settings: Settings,
    sources: Mapping[str, SourceConfig],
    now: datetime,
    mid: str,
) -> EmailMessage:
    if email.kind == "change":
        views, listed = _change_views(
            session, email.rows, settings, sources, max(1, settings.storm_cap)
        )
        return alert_email(
            views,
            listed,
            settings=settings,
            recipients=[email.recipient],
            message_id=mid,
            now=now,
        )
    if email.kind == "digest":
        return _digest_email(session, email.rows[0], settings, sources, now, mid)
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
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    mailer = mailer or mailer_for(settings)
    report = SendReport(via=mailer.describe())
    claimed = claim_due(engine, now)
    if not claimed:
        return report
    with Session(engine, expire_on_commit=False) as session:
        rows = session.exec(select(Alert).where(col(Alert.id).in_(claimed))).all()
        unreachable: DeliveryError | None = None
        for email in _group(sorted(rows, key=lambda r: r.id or 0)):
            if unreachable is not None:  # the server is down: don't wait on it once per email
                _release(session, email.rows, unreachable, now)
                _count_release(report, email, unreachable)
                continue
            mid = email.rows[0].message_id or message_id(
                email.recipient, (_alert_key(r) for r in email.rows)
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
    tags = sources[change.source_id].tags if change.source_id in sources else ()
    recipients = _recipients_for(settings.recipients, change.source_id, tags, change.severity)
    view = change_view(session, change, settings, sources)
    return alert_email(
        [view],
        [],
        settings=settings,
        recipients=recipients,
        message_id=message_id("preview", [f"change:{change_id}"]),
        now=now or change.detected_at,
    )
