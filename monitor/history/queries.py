"""Reading the history: the few queries both the command line and the digest site need.

One place, one ordering: newest first, ties broken by id, so `fdawatch history` and a source's
page on the site list the same rows in the same order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from db.models import Change, Document, Fetch, Review, Snapshot


@dataclass(frozen=True)
class SourceHistory:
    """A source's newest versions, changes and fetches."""

    snapshots: Sequence[Snapshot]
    changes: Sequence[Change]
    fetches: Sequence[Fetch]


def source_history(
    session: Session, source_id: str, *, limit: int = 20, fetch_limit: int | None = None
) -> SourceHistory:
    snapshots = session.exec(
        select(Snapshot)
        .where(Snapshot.source_id == source_id)
        .order_by(col(Snapshot.fetched_at).desc(), col(Snapshot.id).desc())
        .limit(limit)
    ).all()
    changes = session.exec(
        select(Change)
        .where(Change.source_id == source_id)
        .order_by(col(Change.detected_at).desc(), col(Change.id).desc())
        .limit(limit)
    ).all()
    fetches = session.exec(
        select(Fetch)
        .where(Fetch.source_id == source_id)
        .order_by(col(Fetch.fetched_at).desc(), col(Fetch.id).desc())
        .limit(fetch_limit or limit)
    ).all()
    return SourceHistory(snapshots, changes, fetches)


def changes(
    session: Session,
    *,
    since: datetime | None = None,
    source_id: str | None = None,
    min_severity: str | None = None,
    limit: int | None = None,
    open_only: bool = False,
) -> Sequence[Change]:
    """Changes, newest first: optionally since a time, of one source, at least as severe as
    `min_severity` ("T2": T1 and T2), nobody has reviewed (`open_only`), at most `limit`."""
    query = select(Change).order_by(col(Change.detected_at).desc(), col(Change.id).desc())
    if since:
        query = query.where(Change.detected_at >= since)
    if source_id:
        query = query.where(Change.source_id == source_id)
    if min_severity:
        query = query.where(col(Change.severity) <= min_severity)
    if open_only:
        query = query.where(col(Change.id).not_in(select(Review.change_id)))
    if limit:
        query = query.limit(limit)
    return session.exec(query).all()


def change_url(session: Session, change: Change) -> str:
    """Where the changed document lives (its newest snapshot's URL), else its key."""
    snapshot_id = change.new_snapshot_id or change.old_snapshot_id
    snapshot = session.get(Snapshot, snapshot_id) if snapshot_id else None
    return snapshot.url if snapshot else change.doc_key


def documents(session: Session, source_id: str) -> Sequence[tuple[Document, Snapshot]]:
    """A source's documents (its page, feed items, records, linked PDFs) with their current
    versions, current first, then by key."""
    return session.exec(
        select(Document, Snapshot)
        .join(Snapshot, col(Snapshot.id) == col(Document.current_snapshot_id))
        .where(Document.source_id == source_id)
        .order_by(col(Document.removed_at).is_not(None), col(Document.doc_key))
    ).all()
