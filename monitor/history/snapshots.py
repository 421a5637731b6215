"""Versions as stored: raw bodies once per hash, snapshots append-only, a source's current state.

`SourceState` is what recording one fetch needs, loaded in two queries: the source's row and the
current hashes of its documents. The writes are set operations, a few statements per batch of
observations whatever its size: one multi-row INSERT for the bodies (one already stored is left
alone), one multi-row INSERT for the snapshots (their ids come back in order), one for
new documents and one UPDATE per kind of document change. Nothing here commits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, update
from sqlalchemy.orm import object_session
from sqlalchemy.orm.util import identity_key
from sqlmodel import Session, col, select

from db.engine import in_batches
from db.models import Blob, Document, Snapshot, Source
from monitor.errors import EvidenceError
from monitor.history.bodies import DELTA, Keyframe, is_keyframe, pack, unpack
from monitor.items import Observation


def unregistered(source_id: str) -> LookupError:
    return LookupError(f"source {source_id!r} is not in the database; call sync_sources first")


def store_body(session: Session, body: bytes, stored: dict[int, str] | None = None) -> str | None:
    """Store a raw body once per SHA-256 (packed alone); return its hash."""
    return store_bodies(session, [body], stored)[0]


def store_bodies(
    session: Session,
    bodies: Sequence[bytes],
    stored: dict[int, str] | None = None,
    previous: Sequence[str | None] | None = None,
) -> list[str | None]:
    """Store raw bodies once per SHA-256, packed once each; return their hashes in order.

    `stored` remembers the bodies already stored in this fetch by object identity: the items of a
    feed share one response body, which is then hashed and packed once, not once per item.
    `previous` names, for each body, the hash of its document's previous body: a new version is
    packed as a delta of that body's keyframe (`monitor.history.bodies`). One query finds the
    keyframes; one multi-row INSERT adds the bodies, leaving alone one already stored.
    """
    stored = {} if stored is None else stored
    previous = previous or [None] * len(bodies)
    digests: list[str | None] = []
    fresh: dict[str, tuple[bytes, str | None]] = {}
    for body, before in zip(bodies, previous, strict=True):
        if not body:
            digests.append(None)
            continue
        digest = stored.get(id(body))
        if digest is None:
            digest = hashlib.sha256(body).hexdigest()
            stored[id(body)] = digest
            fresh.setdefault(digest, (body, before))
        if before and digest in fresh and fresh[digest][1] is None:
            fresh[digest] = (body, before)  # a feed's new item comes first; a kept one knows
        digests.append(digest)
    if fresh:
        skip_existing = _insert_skipping_existing(session)
        known: set[str] = set()
        if skip_existing is None:  # a database without ON CONFLICT: ask first
            for chunk in in_batches(sorted(fresh)):
                known.update(session.exec(select(Blob.sha256).where(col(Blob.sha256).in_(chunk))))
        todo = {digest: pair for digest, pair in fresh.items() if digest not in known}
        keyframes = load_keyframes(session, {b for _, b in todo.values() if b and b not in todo})
        rows = []
        for digest, (body, before) in todo.items():
            packed = pack(body, keyframes.get(before) if before else None)
            rows.append(
                {
                    "sha256": digest,
                    "size": len(body),
                    "data": packed.data,
                    "codec": packed.codec,
                    "base_sha256": packed.base_sha256,
                }
            )
        if rows:
            session.execute(skip_existing if skip_existing is not None else insert(Blob), rows)
    return digests


def _insert_skipping_existing(session: Session) -> Any:
    """An INSERT of blobs that leaves a body already stored alone, where the database has one.

    A new version's body is nearly always new: asking the table first cost one query per batch
    (~5 % of a baseline crawl) to save packing a body that is, rarely, already there.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(Blob).on_conflict_do_nothing(index_elements=["sha256"])
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert(Blob).on_conflict_do_nothing(index_elements=["sha256"])
    return None


def load_keyframes(session: Session, hashes: Iterable[str]) -> dict[str, Keyframe]:
    """{stored body hash: the keyframe a new version of it is packed against}.

    A body packed alone is its own keyframe; a delta's is its base. A keyframe that is missing,
    unreadable or does not match its hash is left out: the new version is then packed alone.
    """
    wanted = set(hashes)
    rows = _blob_rows(session, wanted)
    bases = {row.base_sha256 for row in rows.values() if row.codec == DELTA and row.base_sha256}
    rows.update(_blob_rows(session, bases - rows.keys()))
    keyframes: dict[str, Keyframe] = {}
    for sha in wanted:
        row = rows.get(sha)
        if row is not None and not is_keyframe(row.codec):
            row = rows.get(row.base_sha256 or "")
        if row is None or not is_keyframe(row.codec):
            continue
        try:
            raw = unpack(row.codec, row.data)
        except Exception:
            continue
        if hashlib.sha256(raw).hexdigest() == row.sha256:
            keyframes[sha] = Keyframe(row.sha256, raw, len(row.data))
    return keyframes


def _blob_rows(session: Session, hashes: Iterable[str]) -> dict[str, Blob]:
    found: dict[str, Blob] = {}
    for chunk in in_batches(sorted(hashes)):
        for blob in session.exec(select(Blob).where(col(Blob.sha256).in_(chunk))):
            found[blob.sha256] = blob
    return found


@dataclass
class Known:
    """A document as recording needs it: its row's state and its current version's hashes.

    Plain values (no ORM object): a batch's changes to documents are written as a few UPDATEs.
    `id` is None for a document planned in the current batch and not inserted yet.
    """

    id: int | None
    sha256: str
    input_sha256: str | None
    snapshot_id: int | None
    removed: bool = False
    missing_checks: int = 0
    body_sha256: str | None = None  # the current version's raw body: a new one's delta base


@dataclass
class SourceState:
    """A source's row and its documents' current hashes, loaded in two queries per fetch.

    Recording a feed of 50 items (or an API result set of thousands) then looks each item up in
    memory instead of running queries per item; recording keeps it current as it writes.
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
            select(
                Document.id, Document.doc_key, Document.removed_at, Document.missing_checks,
                Document.current_snapshot_id, Snapshot.sha256, Snapshot.meta, Snapshot.body_sha256,
            )
            .join(Snapshot, col(Snapshot.id) == col(Document.current_snapshot_id))
            .where(Document.source_id == source_id)
        )  # fmt: skip
        documents = {
            key: Known(
                doc_id, sha, (meta or {}).get("input_sha256"), snap, removed is not None, n, body
            )
            for doc_id, key, removed, n, snap, sha, meta, body in session.exec(query)
        }
        return cls(row=row, documents=documents)


def snapshot_values(
    observation: Observation, text: str, sha: str, meta: dict[str, str]
) -> dict[str, Any]:
    """The columns of a new snapshot of `observation` (its body hash is filled in on insert)."""
    return {
        "source_id": observation.source_id,
        "doc_key": observation.key,
        "url": observation.url,
        "title": observation.title,
        "text": text,
        "sha256": sha,
        "body_sha256": None,
        "http_status": observation.http_status,
        "headers": observation.headers,
        "meta": meta,
        "fetched_at": observation.fetched_at,
    }


def insert_snapshots(
    session: Session, planned: Sequence[tuple[Observation, dict[str, Any]]], state: SourceState
) -> list[int]:
    """Store the bodies, then the snapshots in one multi-row INSERT; their ids, in order."""
    if not planned:
        return []
    documents = state.documents
    # A document seen for the first time (a feed's new item, whose body is the whole feed) is
    # packed against the source's newest stored body: for a feed, the previous fetch's.
    latest = max(
        (known for known in documents.values() if known.body_sha256 and known.snapshot_id),
        key=lambda known: known.snapshot_id or 0,
        default=None,
    )
    newest = latest.body_sha256 if latest else None
    previous = [
        (documents[o.key].body_sha256 if o.key in documents else None) or newest
        for o, _ in planned
    ]
    digests = store_bodies(session, [o.body for o, _ in planned], state.bodies, previous)
    for (observation, _), digest in zip(planned, digests, strict=True):
        if observation.key in documents and digest is not None:
            documents[observation.key].body_sha256 = digest
    rows = [
        values | {"body_sha256": digest}
        for (_, values), digest in zip(planned, digests, strict=True)
    ]
    statement = insert(Snapshot).returning(Snapshot.id, sort_by_parameter_order=True)
    return [snapshot_id for (snapshot_id,) in session.execute(statement, rows)]


def earlier_versions(
    session: Session, source_id: str, wanted: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    """Snapshot ids of earlier versions, by (doc key, hash): a document flipping back."""
    wanted = set(wanted)
    found: dict[tuple[str, str], int] = {}
    for chunk in in_batches(sorted({sha for _, sha in wanted})):
        query = select(Snapshot.id, Snapshot.doc_key, Snapshot.sha256).where(
            Snapshot.source_id == source_id, col(Snapshot.sha256).in_(chunk)
        )
        for snapshot_id, key, sha in session.exec(query):
            if (key, sha) in wanted:
                found[(key, sha)] = snapshot_id
    return found


def insert_documents(
    session: Session, source_id: str, keys: Sequence[str], state: SourceState, now: datetime
) -> None:
    """New documents in one multi-row INSERT; their ids go into `state`."""
    if not keys:
        return
    rows = [
        {
            "source_id": source_id,
            "doc_key": key,
            "current_snapshot_id": state.documents[key].snapshot_id,
            "first_seen_at": now,
            "last_seen_at": now,
            "removed_at": None,
            "missing_checks": 0,
        }
        for key in keys
    ]
    statement = insert(Document).returning(Document.id, sort_by_parameter_order=True)
    for key, (document_id,) in zip(keys, session.execute(statement, rows), strict=True):
        state.documents[key].id = document_id


def update_documents(
    session: Session,
    now: datetime,
    seen: Iterable[Known] = (),
    moved: Iterable[Known] = (),
    found: Iterable[Known] = (),
) -> None:
    """Documents seen again, with a new current version, or only no longer missing.

    `seen`: last seen now and not missing; `moved`: the same and their current snapshot is
    `snapshot_id` (not removed either); `found`: only not missing. One executemany UPDATE each.
    Document objects this session already holds are expired, so a caller that loaded one
    through the ORM reads the new values.
    """
    moved = [known for known in moved if known.id is not None]
    moved_ids = {known.id for known in moved}
    seen = [known for known in seen if known.id is not None and known.id not in moved_ids]
    seen_ids = {known.id for known in seen}
    found = [k for k in found if k.id is not None and k.id not in moved_ids | seen_ids]
    table = Document.__table__  # type: ignore[attr-defined]
    if found:
        statement = update(table).where(table.c.id == bindparam("b_id")).values(missing_checks=0)
        session.execute(statement, [{"b_id": known.id} for known in found])
    if seen:
        statement = (
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(last_seen_at=now, missing_checks=0)
        )
        session.execute(statement, [{"b_id": known.id} for known in seen])
    if moved:
        statement = (
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(
                last_seen_at=now,
                missing_checks=0,
                removed_at=None,
                current_snapshot_id=bindparam("b_snapshot"),
            )
        )
        rows = [{"b_id": known.id, "b_snapshot": known.snapshot_id} for known in moved]
        session.execute(statement, rows)
    for known in (*found, *seen, *moved):
        loaded = session.identity_map.get(identity_key(Document, known.id))
        if loaded is not None and object_session(loaded) is session:
            session.expire(loaded)


def load_snapshots(session: Session, ids: Iterable[int]) -> dict[int, Snapshot]:
    """Whole snapshots by id (the old side of a batch's changes), one query per 500."""
    found: dict[int, Snapshot] = {}
    for chunk in in_batches(sorted(set(ids))):
        for snapshot in session.exec(select(Snapshot).where(col(Snapshot.id).in_(chunk))):
            assert snapshot.id is not None
            found[snapshot.id] = snapshot
    return found


def raw_body(session: Session, snapshot: Snapshot) -> bytes | None:
    """The body exactly as fetched; None when none was stored. A corrupt blob is an error."""
    if snapshot.body_sha256 is None:
        return None
    return read_blob(session, snapshot.body_sha256, f"snapshot {snapshot.id}")


def read_blob(session: Session, sha256: str, what: str = "a snapshot") -> bytes:
    """A stored body by hash, unpacked (through its keyframe for a delta) and checked."""
    blob = session.get(Blob, sha256)
    if blob is None:
        raise EvidenceError(
            f"{what}: raw body {sha256} is missing from the blob table; restore the database "
            "from a backup"
        )
    keyframe = None
    if blob.codec == DELTA:
        base = blob.base_sha256 or ""
        if base == sha256 or (base_blob := session.get(Blob, base)) is None:
            raise EvidenceError(
                f"{what}: raw body {sha256} is stored as a delta of {base or 'nothing'}, which "
                "is missing from the blob table; restore the database from a backup"
            )
        if not is_keyframe(base_blob.codec):
            raise EvidenceError(
                f"{what}: raw body {sha256} refers to {base}, which is not a keyframe; the blob "
                "table is corrupt, restore the database from a backup"
            )
        keyframe = _unpacked(base_blob, what)
    return _unpacked(blob, what, keyframe)


def _unpacked(blob: Blob, what: str, keyframe: bytes | None = None) -> bytes:
    try:
        data = unpack(blob.codec, blob.data, keyframe)
    except Exception as error:
        raise EvidenceError(
            f"{what}: raw body {blob.sha256} cannot be unpacked ({error}); the stored blob is "
            "corrupt, restore the database from a backup"
        ) from error
    if hashlib.sha256(data).hexdigest() != blob.sha256:
        raise EvidenceError(
            f"{what}: raw body {blob.sha256} does not match its hash; the stored blob is "
            "corrupt, restore the database from a backup"
        )
    return data
