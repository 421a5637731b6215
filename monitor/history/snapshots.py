"""Versions as stored: snapshots append-only, documents pointing at their current one.

`SourceState` is what recording one fetch needs: the source's row and the current hashes of its
documents, loaded in two queries for any number of sources. The writes are set operations, a few
statements per batch of observations whatever its size and however many sources it spans: the
bodies (`monitor.history.blobs`), one multi-row INSERT for the snapshots (their ids come back in
order), one for new documents and one UPDATE per kind of document change. Nothing here commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, update
from sqlalchemy.orm import object_session
from sqlalchemy.orm.util import identity_key
from sqlmodel import Session, col, select

from db.engine import in_batches
from db.models import Document, Snapshot, Source
from monitor.history.blobs import store_bodies
from monitor.items import Observation


def unregistered(source_id: str) -> LookupError:
    return LookupError(f"source {source_id!r} is not in the database; call sync_sources first")


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
    """A source's row and its documents' current hashes, loaded in two queries per group.

    Recording a feed of 50 items (or an API result set of thousands) then looks each item up in
    memory instead of running queries per item; recording keeps it current as it writes.
    """

    row: Source
    documents: dict[str, Known]
    bodies: dict[int, str] = field(default_factory=dict)  # response bodies stored in this fetch

    @classmethod
    def load(cls, session: Session, source_id: str) -> SourceState:
        return cls.load_many(session, [source_id])[source_id]

    @classmethod
    def load_many(cls, session: Session, source_ids: Iterable[str]) -> dict[str, SourceState]:
        """The states of several sources: two queries per 500 sources, not two per source."""
        wanted = sorted(set(source_ids))
        states: dict[str, SourceState] = {}
        for chunk in in_batches(wanted):
            query_rows = select(Source).where(col(Source.id).in_(chunk))
            rows = {row.id: row for row in session.exec(query_rows)}
            missing = [source_id for source_id in chunk if source_id not in rows]
            if missing:
                raise unregistered(missing[0])
            states.update((source_id, cls(rows[source_id], {})) for source_id in chunk)
            query = (
                select(
                    Document.source_id, Document.id, Document.doc_key, Document.removed_at,
                    Document.missing_checks, Document.current_snapshot_id, Snapshot.sha256,
                    Snapshot.meta, Snapshot.body_sha256,
                )
                .join(Snapshot, col(Snapshot.id) == col(Document.current_snapshot_id))
                .where(col(Document.source_id).in_(chunk))
            )  # fmt: skip
            for source_id, doc_id, key, removed, n, snap, sha, meta, body in session.exec(query):
                input_sha = (meta or {}).get("input_sha256")
                states[source_id].documents[key] = Known(
                    doc_id, sha, input_sha, snap, removed is not None, n, body
                )
        return states


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
    session: Session,
    batches: Sequence[tuple[Sequence[tuple[Observation, dict[str, Any]]], SourceState]],
) -> list[list[int]]:
    """Store the bodies, then the snapshots of every batch in one multi-row INSERT.

    `batches` pairs each source's planned snapshots with its state; the new ids come back per
    batch, in order.
    """
    bodies: list[bytes] = []
    previous: list[str | None] = []
    for planned, state in batches:
        bodies += [o.body for o, _ in planned]
        previous += _delta_bases(planned, state)
    if not bodies:
        return [[] for _ in batches]
    stored = batches[0][1].bodies if len(batches) == 1 else {}
    if len(batches) > 1:  # bodies are known by object identity: one dict serves every source
        for _, state in batches:
            stored.update(state.bodies)
    digests = iter(store_bodies(session, bodies, stored, previous))
    rows: list[dict[str, Any]] = []
    for planned, state in batches:
        state.bodies.update(stored)
        for observation, values in planned:
            digest = next(digests)
            if observation.key in state.documents and digest is not None:
                state.documents[observation.key].body_sha256 = digest
            rows.append(values | {"body_sha256": digest})
    statement = insert(Snapshot).returning(Snapshot.id, sort_by_parameter_order=True)
    ids = iter([snapshot_id for (snapshot_id,) in session.execute(statement, rows)])
    return [[next(ids) for _ in planned] for planned, _ in batches]


def _delta_bases(
    planned: Sequence[tuple[Observation, dict[str, Any]]], state: SourceState
) -> list[str | None]:
    """For each planned snapshot, the stored body its body is packed against (if any).

    A document seen for the first time (a feed's new item, whose body is the whole feed) is
    packed against the source's newest stored body: for a feed, the previous fetch's.
    """
    documents = state.documents
    latest = max(
        (known for known in documents.values() if known.body_sha256 and known.snapshot_id),
        key=lambda known: known.snapshot_id or 0,
        default=None,
    )
    newest = latest.body_sha256 if latest else None
    return [
        (documents[o.key].body_sha256 if o.key in documents else None) or newest
        for o, _ in planned
    ]


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
    session: Session, batches: Sequence[tuple[str, Sequence[str], SourceState]], now: datetime
) -> None:
    """New documents of every (source id, keys, state) in one multi-row INSERT; ids into states."""
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
        for source_id, keys, state in batches
        for key in keys
    ]
    if not rows:
        return
    statement = insert(Document).returning(Document.id, sort_by_parameter_order=True)
    ids = iter(session.execute(statement, rows))
    for _, keys, state in batches:
        for key in keys:
            (state.documents[key].id,) = next(ids)


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
