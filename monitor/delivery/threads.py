"""Alerts about one document thread in the reader's mail client: In-Reply-To and References.

A later alert about a document names the Message-ID of the first alert that recipient was sent
about it, so Thunderbird, Apple Mail and Outlook show the document's history as one thread (Gmail
threads by subject as well, and our subjects name the change, so it may still split them). An
email about several documents follows the first of them, in the email's order, that has a
thread. The first alert is found in the outbox, so a re-send after a crash names the same one.
"""

from __future__ import annotations

from collections.abc import Sequence
from email.message import EmailMessage

from sqlmodel import Session, col, select

from db.engine import IN_LIST_MAX, in_batches
from db.models import Alert, Change
from monitor.delivery.render import header_text

Document = tuple[str, str]  # (source id, document key)


def thread_root(
    session: Session, recipient: str, documents: Sequence[Document], own_message_id: str
) -> str | None:
    """The Message-ID of the first alert sent to `recipient` about the first of `documents`
    that has one, other than the email being sent (`own_message_id`); None for a new thread."""
    wanted = set(documents)
    first: dict[Document, str] = {}
    for batch in in_batches(sorted({key for _, key in wanted}), IN_LIST_MAX):
        rows = session.exec(
            select(Change.source_id, Change.doc_key, Alert.message_id)
            .join(Change, col(Change.id) == col(Alert.change_id))
            .where(col(Alert.recipient) == recipient, col(Alert.status) == "sent")
            .where(col(Alert.message_id).is_not(None), col(Alert.message_id) != own_message_id)
            .where(col(Change.doc_key).in_(batch))
            .order_by(col(Alert.sent_at), col(Alert.id))
        )
        for source_id, doc_key, message_id in rows:
            if (source_id, doc_key) in wanted and message_id:
                first.setdefault((source_id, doc_key), message_id)
    return next((first[document] for document in documents if document in first), None)


def thread(message: EmailMessage, root: str | None) -> EmailMessage:
    """Make `message` a reply in the thread that `root` started (nothing when None)."""
    if root:
        message["In-Reply-To"] = header_text(root)
        message["References"] = header_text(root)
    return message
