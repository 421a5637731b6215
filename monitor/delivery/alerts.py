"""Sending the outbox: claim due rows, group them per recipient, deliver, record the outcome.

The rows and their state machine live in `monitor.delivery.outbox`; building each e-mail (Jinja,
views, digests) lives in `monitor.delivery.compose`, loaded only once a row is claimed: a send
with nothing due, after every `crawl` and from cron, never loads the rendering.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from db.installation import install_id
from db.models import Alert
from monitor.config import Settings
from monitor.delivery.mailer import Mailer, mailer_for
from monitor.delivery.outbox import (
    DIGEST_KIND,
    REPORT_KIND,
    alert_key,
    claim_due,
    message_id,
    message_id_domain,
    retry_delay,
)
from monitor.errors import DeliveryError
from monitor.history.health import untold_problems
from monitor.review import escalation
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
class Email:
    """The outbox rows one e-mail to one recipient stands for."""

    recipient: str
    kind: str  # "change", "health", "digest", "escalation" or "report"
    rows: list[Alert]


def _group(rows: Sequence[Alert]) -> list[Email]:
    """One email per recipient for changes, one for health notices, one for escalations, one per
    digest row.

    Rows that already carry a Message-ID were claimed together by a sender that died; they stay
    together so the re-sent email is the same email.
    """
    groups: dict[tuple[str, str, str], Email] = {}
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
        groups.setdefault(key, Email(row.recipient, kind, [])).rows.append(row)
    return list(groups.values())


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
    from monitor.delivery.compose import build_email  # rendering: only with something to send

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
                message = build_email(session, email, settings, sources, now, mid)
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


def _count_release(report: SendReport, email: Email, error: DeliveryError) -> None:
    if error.temporary:
        report.retry_emails += 1
        report.retry_alerts += len(email.rows)
    else:
        report.failed_emails += 1
        report.failed_alerts += len(email.rows)
    message = f"{email.recipient}: {error.reason}"
    if message not in report.errors:
        report.errors.append(message)
