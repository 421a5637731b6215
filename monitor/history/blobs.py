"""Raw bodies as stored: once per SHA-256, packed by `monitor.history.bodies`, read back checked.

Every version's body is kept as evidence. Storing a batch's bodies is one query for the keyframes
new versions are packed against and one multi-row INSERT (a body already stored is left alone);
reading one back unpacks it (through its keyframe for a delta) and checks its hash, so a corrupt
blob is an error that says so, never a silently wrong page. Nothing here commits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session, col, select

from db.engine import in_batches
from db.models import Blob, Snapshot
from monitor.errors import EvidenceError
from monitor.history.bodies import DELTA, Keyframe, is_keyframe, pack, unpack


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
