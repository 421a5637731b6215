"""Versions as stored: raw bodies once per hash, snapshots append-only, a source's current state.

`SourceState` is what recording one fetch needs, loaded in two queries: the source's row and the
current hashes of its documents. Nothing here commits.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass, field

from sqlmodel import Session, col, select

from db.models import Blob, Document, Snapshot, Source
from monitor.items import Observation


def unregistered(source_id: str) -> LookupError:
    return LookupError(f"source {source_id!r} is not in the database; call sync_sources first")


def store_body(session: Session, body: bytes, stored: dict[int, str] | None = None) -> str | None:
    """Store a raw body once per SHA-256 (compressed); return its hash.

    `stored` remembers the bodies already stored in this fetch by object identity: the items of a
    feed share one response body, which is then hashed and compressed once, not once per item.
    """
    if not body:
        return None
    if stored is not None and id(body) in stored:
        return stored[id(body)]
    digest = hashlib.sha256(body).hexdigest()
    if session.get(Blob, digest) is None:
        session.add(Blob(sha256=digest, size=len(body), data=zlib.compress(body, 6)))
    if stored is not None:
        stored[id(body)] = digest
    return digest


@dataclass
class Known:
    """A document as `record_observation` needs it: the row and its current version's hashes."""

    document: Document
    sha256: str
    input_sha256: str | None


@dataclass
class SourceState:
    """A source's row and its documents' current hashes, loaded in two queries per fetch.

    Recording a feed of 50 items (or an API result set of thousands) then looks each item up in
    memory instead of running three queries per item; recording keeps it current as it writes.
    """

    row: Source
    documents: dict[str, Known]
    bodies: dict[int, str] = field(default_factory=dict)  # response bodies stored in this fetch

    @classmethod
    def load(cls, session: Session, source_id: str) -> SourceState:
        row = session.get(Source, source_id)
        if row is None:
            raise unregistered(source_id)
        query = (
            select(Document, Snapshot.sha256, Snapshot.meta)
            .join(Snapshot, col(Snapshot.id) == col(Document.current_snapshot_id))
            .where(Document.source_id == source_id)
        )
        documents = {
            document.doc_key: Known(document, sha, (meta or {}).get("input_sha256"))
            for document, sha, meta in session.exec(query)
        }
        return cls(row=row, documents=documents)


def new_snapshot(
    session: Session,
    observation: Observation,
    text: str,
    sha: str,
    meta: dict[str, str],
    state: SourceState,
    *,
    first: bool = False,
) -> Snapshot:
    """The snapshot of this version: an earlier one with the same hash, else a new one.

    `first`: the document has no snapshot yet (saves a query per new document).
    """
    if not first:
        query = select(Snapshot).where(
            Snapshot.source_id == observation.source_id,
            Snapshot.doc_key == observation.key,
            Snapshot.sha256 == sha,
        )
        existing = session.exec(query).first()
        if existing is not None:  # a document flipping back to an earlier version
            return existing
    snapshot = Snapshot(
        source_id=observation.source_id,
        doc_key=observation.key,
        url=observation.url,
        title=observation.title,
        text=text,
        sha256=sha,
        body_sha256=store_body(session, observation.body, state.bodies),
        http_status=observation.http_status,
        headers=observation.headers,
        meta=meta,
        fetched_at=observation.fetched_at,
    )
    session.add(snapshot)
    session.flush()
    return snapshot
