"""The audit export: every alert delivered (or refused) about a change, with the change's review.

One row per outbox row of a change alert or an escalation that was sent or failed for good: the
change (id, source, severity, detected at), the delivery (recipient, sent at, Message-ID, the
server's reply when it refused) and the change's current review. The evidence bundle carries
the same delivery log and the full review history of its change.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, or_, select

from db.engine import IN_LIST_MAX, in_batches
from db.models import Alert, Change, Review
from monitor.review import records
from monitor.review.escalation import KIND as ESCALATION

COLUMNS = (
    "change_id",
    "source",
    "severity",
    "detected_at",
    "kind",
    "recipient",
    "status",
    "sent_at",
    "message_id",
    "smtp_reply",
    "review_state",
    "reviewer",
    "reviewed_at",
    "disposition",
    "note",
)
DELIVERED = ("sent", "failed")


def _iso(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat() if value is not None else ""


def _change_id(alert: Alert) -> int | None:
    if alert.change_id is not None:
        return alert.change_id
    notice = alert.notice or ""
    return int(notice) if alert.kind == ESCALATION and notice.isdigit() else None


def deliveries(
    session: Session, since: datetime | None = None, change_id: int | None = None
) -> list[Alert]:
    """Sent and failed rows of change alerts and escalations, oldest first."""
    query = select(Alert).where(
        col(Alert.status).in_(DELIVERED),
        or_(col(Alert.kind) == "change", col(Alert.kind) == ESCALATION),
    )
    if since is not None:
        query = query.where(col(Alert.created_at) >= since)
    if change_id is not None:
        query = query.where(
            or_(
                col(Alert.change_id) == change_id,
                (col(Alert.kind) == ESCALATION) & (col(Alert.notice) == str(change_id)),
            )
        )
    return list(session.exec(query.order_by(col(Alert.created_at), col(Alert.id))).all())


def delivery_record(alert: Alert) -> dict[str, Any]:
    """One delivery as the evidence bundle records it."""
    return {
        "kind": alert.kind,
        "recipient": alert.recipient,
        "status": alert.status,
        "queued_at": _iso(alert.created_at),
        "sent_at": _iso(alert.sent_at) or None,
        "message_id": alert.message_id,
        "attempts": alert.attempts,
        "smtp_reply": alert.last_error if alert.status == "failed" else None,
    }


def review_event(review: Review) -> dict[str, Any]:
    return {
        "reviewer": review.reviewer,
        "reviewed_at": _iso(review.reviewed_at),
        "disposition": review.disposition,
        "note": review.note,
        "via": review.via,
    }


def audit_rows(session: Session, since: datetime | None) -> list[dict[str, str]]:
    """The export's rows (every value a string, "" for none), oldest delivery first."""
    alerts = deliveries(session, since)
    ids = {i for i in (_change_id(a) for a in alerts) if i is not None}
    changes = {
        change.id: change
        for batch in in_batches(sorted(ids), IN_LIST_MAX)
        for change in session.exec(select(Change).where(col(Change.id).in_(batch)))
    }
    reviews = records.current_reviews(session, ids)
    rows = []
    for alert in alerts:
        change_id = _change_id(alert)
        change = changes.get(change_id)
        review = reviews.get(change_id or 0)
        rows.append(
            {
                "change_id": str(change_id or ""),
                "source": alert.source_id,
                "severity": change.severity if change else alert.severity,
                "detected_at": _iso(change.detected_at) if change else "",
                "kind": alert.kind,
                "recipient": alert.recipient,
                "status": alert.status,
                "sent_at": _iso(alert.sent_at),
                "message_id": alert.message_id or "",
                "smtp_reply": (alert.last_error or "") if alert.status == "failed" else "",
                "review_state": records.ACKNOWLEDGED if review else records.OPEN,
                "reviewer": review.reviewer if review else "",
                "reviewed_at": _iso(review.reviewed_at) if review else "",
                "disposition": review.disposition if review else "",
                "note": review.note if review else "",
            }
        )
    return rows


def as_csv(rows: Iterable[dict[str, str]]) -> str:
    """RFC 4180 CSV (CRLF line ends, fields with commas, quotes or newlines quoted)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def as_json_lines(rows: Iterable[dict[str, str]]) -> str:
    """One object per line; missing values are null and the change id a number."""
    lines = []
    for row in rows:
        record: dict[str, Any] = {key: value or None for key, value in row.items()}
        record["change_id"] = int(row["change_id"]) if row["change_id"] else None
        lines.append(json.dumps(record, ensure_ascii=False) + "\n")
    return "".join(lines)
