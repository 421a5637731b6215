"""The tables of fdawatch's history.

Snapshots and blobs are append-only: a row, once written, is never updated. A `Document` points
at the snapshot currently believed to be the live version of one watched document; a `Change`
is one transition between two snapshots; an `Alert` is one outbox row (one recipient, one change).

This module imports nothing of ours: `db/` is the bottom layer.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from db.packed import PackedText


class Source(SQLModel, table=True):
    """One watched thing from sources.toml, plus what we learned fetching it."""

    id: str = Field(primary_key=True, max_length=100)
    kind: str = Field(max_length=40)
    url: str = Field(sa_column=Column(Text, nullable=False))
    title: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    etag: str | None = Field(default=None, sa_column=Column(Text))
    last_modified: str | None = Field(default=None, sa_column=Column(Text))
    first_fetched_at: datetime | None = None  # the baseline fetch: nothing before it is "new"
    last_checked_at: datetime | None = None
    last_success_at: datetime | None = None
    last_change_at: datetime | None = None
    consecutive_failures: int = 0
    #: unknown / ok / failing / drift / blocked
    health: str = Field(default="unknown", max_length=20)
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    failure_alerted_at: datetime | None = None  # set when "source failing" was sent
    #: Where a permanent redirect last led (a `moved` change was written for it); None: not moved.
    moved_to: str | None = Field(default=None, sa_column=Column(Text))
    #: When a fetch that followed the source's linked documents was first fully recorded: the
    #: documents seen until then are its documents' baseline, later ones are `new`. None while the
    #: source does not follow documents (turning it on again starts a new baseline).
    documents_since: datetime | None = None


class Blob(SQLModel, table=True):
    """A raw body exactly as fetched, stored once per SHA-256, packed by `codec`.

    `zlib` or `zstd`: packed alone (a keyframe); `zstd-delta`: packed with the keyframe
    `base_sha256` as its dictionary (`monitor.history.bodies`).
    """

    sha256: str = Field(primary_key=True, max_length=64)
    size: int
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    codec: str = Field(default="zlib", max_length=12)
    base_sha256: str | None = Field(default=None, max_length=64)


class Snapshot(SQLModel, table=True):
    """One distinct normalized version of one document (append-only)."""

    __table_args__ = (
        # Its index also serves every lookup by (source_id, doc_key): no second index for that.
        UniqueConstraint("source_id", "doc_key", "sha256", name="uq_snapshot_version"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source_id: str = Field(foreign_key="source.id", max_length=100)
    doc_key: str = Field(sa_column=Column(Text, nullable=False))
    url: str = Field(sa_column=Column(Text, nullable=False))
    title: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    text: str = Field(sa_column=Column(PackedText, nullable=False))  # zstd-packed (db.packed)
    sha256: str = Field(max_length=64)
    body_sha256: str | None = Field(default=None, foreign_key="blob.sha256", max_length=64)
    http_status: int = 200
    headers: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    meta: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    fetched_at: datetime


class Document(SQLModel, table=True):
    """Where each watched document stands now: its current snapshot and whether it is gone."""

    __table_args__ = (UniqueConstraint("source_id", "doc_key", name="uq_document_key"),)

    id: int | None = Field(default=None, primary_key=True)
    source_id: str = Field(foreign_key="source.id", max_length=100)
    doc_key: str = Field(sa_column=Column(Text, nullable=False))
    current_snapshot_id: int = Field(foreign_key="snapshot.id")
    first_seen_at: datetime
    last_seen_at: datetime
    removed_at: datetime | None = None
    #: Checks in a row that found it gone (404/410, or absent from a complete result set); it
    #: counts as removed only when this reaches the source's `confirm_removal`.
    missing_checks: int = 0


class CrawlRun(SQLModel, table=True):
    """One `fdawatch crawl` (or scheduled pass): which sources, and what came of them."""

    id: int | None = Field(default=None, primary_key=True)
    started_at: datetime
    finished_at: datetime | None = None
    source_ids: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    checked: int = 0
    unchanged: int = 0
    changed: int = 0
    failed: int = 0
    status: str = Field(default="running", max_length=20)  # running / finished / crashed


class Fetch(SQLModel, table=True):
    """One fetch of one source in one run: the source-health record."""

    __table_args__ = (Index("ix_fetch_source", "source_id", "fetched_at"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int | None = Field(default=None, foreign_key="crawlrun.id")
    source_id: str = Field(foreign_key="source.id", max_length=100)
    url: str = Field(sa_column=Column(Text, nullable=False))
    outcome: str = Field(max_length=20)  # ok / not_modified / gone / failed / drift
    http_status: int | None = None
    error: str | None = Field(default=None, sa_column=Column(Text))
    documents: int = 0
    changes: int = 0
    bytes: int = 0
    duration_ms: int = 0
    fetched_at: datetime
    final_url: str | None = Field(default=None, sa_column=Column(Text))  # after redirects
    server: str | None = Field(default=None, sa_column=Column(Text))  # evidence of a block


class HostBackoff(SQLModel, table=True):
    """A host whose CDN refused us: not asked again before `until` (doubling, capped).

    Cleared by the next successful fetch of any source on that host.
    """

    host: str = Field(primary_key=True, max_length=253)
    refusals: int = 0  # refusals in a row (requests actually made)
    first_refused_at: datetime
    last_refused_at: datetime
    until: datetime
    evidence: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))


class Change(SQLModel, table=True):
    """One material transition of one document: new, changed or removed."""

    __table_args__ = (Index("ix_change_detected", "detected_at"),)

    id: int | None = Field(default=None, primary_key=True)
    source_id: str = Field(foreign_key="source.id", max_length=100)
    doc_key: str = Field(sa_column=Column(Text, nullable=False))
    kind: str = Field(max_length=10)  # new / changed / removed / moved
    old_snapshot_id: int | None = Field(default=None, foreign_key="snapshot.id")
    new_snapshot_id: int | None = Field(default=None, foreign_key="snapshot.id")
    title: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    summary: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    diff: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    severity: str = Field(default="T3", max_length=2)  # T1 (critical) … T5 (noise)
    severity_reasons: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    matched_terms: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    sections: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    run_id: int | None = Field(default=None, foreign_key="crawlrun.id")
    detected_at: datetime


class Alert(SQLModel, table=True):
    """One outbox row: one change (or source-health notice) for one recipient.

    State machine: pending → sending → sent | failed. A row in `sending` whose lease ran out is
    retried with the same Message-ID, so the one possible duplicate is recognisable.
    """

    __table_args__ = (
        UniqueConstraint("change_id", "recipient", name="uq_alert_change_recipient"),
        Index("ix_alert_status", "status", "next_attempt_at"),
        Index("uq_alert_dedup_key", "dedup_key", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    change_id: int | None = Field(default=None, foreign_key="change.id")
    source_id: str = Field(max_length=100)
    kind: str = Field(default="change", max_length=20)  # change / source_failing / recovered
    notice: str | None = Field(default=None, sa_column=Column(Text))  # health notice text
    recipient: str = Field(max_length=320)
    severity: str = Field(default="T3", max_length=2)
    status: str = Field(default="pending", max_length=10)
    attempts: int = 0
    next_attempt_at: datetime | None = None
    sending_since: datetime | None = None
    message_id: str | None = Field(default=None, sa_column=Column(Text))
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime
    sent_at: datetime | None = None
    #: Unique when set: one digest per recipient and period ("digest:weekly:2026-W48:ops@x").
    dedup_key: str | None = Field(default=None, max_length=400)


class Lease(SQLModel, table=True):
    """A named, expiring lock held by one process: the daemon lock, a source claim, a job.

    Taken with a conditional write (free or expired → mine), so it works the same on SQLite and
    PostgreSQL and a holder that dies releases it when `expires_at` passes.
    """

    name: str = Field(primary_key=True, max_length=200)
    holder: str = Field(max_length=200)
    acquired_at: datetime
    expires_at: datetime


class Setting(SQLModel, table=True):
    """One value the installation keeps about itself, such as its random install id.

    Lives in the database, not in a file, so that it goes with the history it describes: a new
    database (a rebuild) is a new installation whose emails never reuse the old Message-IDs.
    """

    name: str = Field(primary_key=True, max_length=100)
    value: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime


class Review(SQLModel, table=True):
    """One review of one change by one person (append-only): the newest is the change's review.

    A later review adds a row, never edits one, so an auditor sees every decision and who took
    it. A change without a row is open; a review never mutes later changes of the document.
    """

    __table_args__ = (Index("ix_review_change", "change_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    change_id: int = Field(foreign_key="change.id")
    reviewer: str = Field(max_length=320)  # an email address
    disposition: str = Field(max_length=20)  # no-action / action-needed / done
    note: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    reviewed_at: datetime
    via: str = Field(default="cli", max_length=10)  # cli / web
