"""One batch of observations of one source, decided in memory, then written as set operations.

`record_observation` used to run an ORM object and a flush per snapshot, blob and document. A
`BatchPlan` decides what each observation records in observation order (exactly as recording them
one by one would), then `write` stores the batch in a few multi-row statements
(`monitor.history.snapshots`) and writes its changes with their alert rows. Nothing commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session

from db.models import Change, Snapshot, Source
from monitor.core.canonical import input_sha256, normalized_text, version_sha256
from monitor.core.terms import expand_terms, match_terms
from monitor.history.changes import ChangeWriter
from monitor.history.snapshots import (
    Known,
    SourceState,
    earlier_versions,
    insert_documents,
    insert_snapshots,
    load_snapshots,
    snapshot_values,
    update_documents,
)
from monitor.items import DOCUMENT, Observation
from monitor.sources import SourceConfig

#: A snapshot: ("id", id) once stored, ("new", index into `BatchPlan.snapshots`) while planned.
Ref = tuple[str, int]


class Unrecordable(Exception):
    """An observation the normalizer could not read (a parser limit, a RecursionError)."""

    def __init__(self, observation: Observation, error: Exception) -> None:
        super().__init__(f"could not record {observation.key}: {type(error).__name__}: {error}")
        self.observation = observation


#: The normalized text, its metadata and its hash; None when the input was not normalized.
Normalized = tuple[str, dict[str, str], str] | None


def in_baseline(row: Source, observation: Observation) -> bool:
    """Whether a document seen for the first time is baseline (kept silently) rather than new.

    Until one fetch of the source has been fully recorded (its fetch record marks it a success),
    everything is baseline: a crawl killed halfway through its first fetch, or a feed whose first
    fetch kept no item, must not turn the rest of its baseline into "new". A linked document is
    baseline until a fetch that followed the source's documents has been fully recorded, so
    turning `follow_documents` on is not a burst of "new" documents.
    """
    if observation.content_type == DOCUMENT and row.documents_since is None:
        return True
    return row.last_success_at is None


def _normalize(observation: Observation) -> tuple[str, dict[str, str], str]:
    try:
        text, meta = normalized_text(observation)
    except Exception as error:
        raise Unrecordable(observation, error) from error
    return text, meta, version_sha256(observation.content_type, text) if text else ""


def prepare(observation: Observation, state: SourceState) -> tuple[Observation, str, Normalized]:
    """The input hash, and the text unless the document's current version has this very input."""
    input_sha = input_sha256(observation)
    known = state.documents.get(observation.key)
    if known and not known.removed and known.input_sha256 == input_sha:
        return observation, input_sha, None
    return observation, input_sha, _normalize(observation)


@dataclass
class BatchPlan:
    """What one batch writes, decided in memory in observation order, then written at once.

    A snapshot is referred to by id once stored, or as `("new", index)` into `snapshots` while
    planned. Documents of `state` planned here have no id until `write` inserts them.
    """

    session: Session
    source: SourceConfig
    state: SourceState
    now: datetime
    snapshots: list[tuple[Observation, dict[str, Any]]] = field(default_factory=list)
    planned: dict[tuple[str, str], int] = field(default_factory=dict)  # (key, hash) → index
    earlier: dict[tuple[str, str], int] = field(default_factory=dict)  # (key, hash) → id
    asked: set[tuple[str, str]] = field(default_factory=set)
    refs: dict[str, Ref] = field(default_factory=dict)  # key → planned current
    new_keys: list[str] = field(default_factory=list)
    seen: dict[str, Known] = field(default_factory=dict)
    moved: dict[str, Known] = field(default_factory=dict)
    found: dict[str, Known] = field(default_factory=dict)
    changes: list[tuple[str, str, Ref | None, Ref]] = field(default_factory=list)

    def prefetch_earlier(self, prepared: Sequence[tuple[Observation, str, Normalized]]) -> None:
        """One query for the earlier versions a known document might flip back to."""
        wanted = {
            (observation.key, normalized[2])
            for observation, _, normalized in prepared
            if normalized and normalized[0] and observation.key in self.state.documents
        }
        self.asked |= wanted
        self.earlier.update(earlier_versions(self.session, self.source.id, wanted))

    def add(self, observation: Observation, input_sha: str, normalized: Normalized) -> None:
        """Decide what one observation records, as `record_observation` always has."""
        key = observation.key
        known = self.state.documents.get(key)
        if known and known.missing_checks:
            known.missing_checks = 0  # seen again: an earlier 404 was not final
            self.found[key] = known
        if known and not known.removed and known.input_sha256 == input_sha:
            self.seen[key] = known  # the very input of the current version: unchanged
            return
        text, meta, sha = normalized or _normalize(observation)
        if not text:
            return
        meta["input_sha256"] = input_sha
        if known is None and self.source.terms:
            wanted = expand_terms(self.source.terms)
            if not match_terms(f"{observation.title}\n{text}", wanted):
                return  # a feed item outside the watched terms is not kept
        row = self.state.row
        if row.first_fetched_at is None:
            row.first_fetched_at = observation.fetched_at
        baseline = in_baseline(row, observation)
        if known is None:
            ref = self._new_snapshot(observation, text, sha, meta)
            self.state.documents[key] = Known(None, sha, input_sha, None)
            self.refs[key] = ref
            self.new_keys.append(key)
            if not baseline:
                self.changes.append(("new", key, None, ref))
            return
        self.seen[key] = known
        if not known.removed and known.sha256 == sha:
            # Compared by hash, the stored text is never loaded. A new input with the same text (a
            # date or markup change) keeps the old input hash, as snapshots are append-only: such
            # a document is parsed again on each fetch until its text changes.
            return
        old = self._current(key, known)
        ref = self._version(observation, text, sha, meta)
        known.sha256, known.input_sha256, known.removed = sha, input_sha, False
        if ref[0] == "new":
            known.snapshot_id = None
            self.refs[key] = ref
        else:
            known.snapshot_id = ref[1]
            self.refs.pop(key, None)
        self.moved[key] = known
        self.changes.append(("changed", key, old, ref))

    def _current(self, key: str, known: Known) -> Ref:
        if key in self.refs:
            return self.refs[key]
        assert known.snapshot_id is not None
        return ("id", known.snapshot_id)

    def _version(self, observation: Observation, text: str, sha: str, meta: dict[str, str]) -> Ref:
        """An earlier snapshot with this hash (a document flipping back), else a new one."""
        key = (observation.key, sha)
        if key in self.planned:
            return ("new", self.planned[key])
        if key not in self.asked:  # the text was first normalized after the prefetch
            self.asked.add(key)
            self.earlier.update(earlier_versions(self.session, self.source.id, [key]))
        if key in self.earlier:
            return ("id", self.earlier[key])
        return self._new_snapshot(observation, text, sha, meta)

    def _new_snapshot(
        self, observation: Observation, text: str, sha: str, meta: dict[str, str]
    ) -> Ref:
        self.snapshots.append((observation, snapshot_values(observation, text, sha, meta)))
        index = len(self.snapshots) - 1
        self.planned[(observation.key, sha)] = index
        return ("new", index)

    def write(self, changes: ChangeWriter) -> list[Change]:
        """The batch's snapshots, documents and changes, a few statements in all."""
        return write_plans(self.session, [self], changes)[0]

    def stored_refs(self) -> set[int]:
        """The ids of stored snapshots this batch's changes compare (their old sides mostly)."""
        refs = [ref for _, _, old, new in self.changes for ref in (old, new) if ref]
        return {ref[1] for ref in refs if ref[0] == "id"}

    def edits(self, stored: dict[int, Snapshot]) -> list[tuple[str, str, str, str]]:
        """(doc key, old text, new text, new hash) of each edited document, before writing.

        What `monitor.core.suspect` reviews; `stored` holds the snapshots of `stored_refs`.
        """
        return [
            (key, self._text(old, stored), self._text(new, stored), self._sha(new, stored))
            for kind, key, old, new in self.changes
            if kind == "changed" and old
        ]

    def _text(self, ref: Ref, stored: dict[int, Snapshot]) -> str:
        return stored[ref[1]].text if ref[0] == "id" else self.snapshots[ref[1]][1]["text"]

    def _sha(self, ref: Ref, stored: dict[int, Snapshot]) -> str:
        return stored[ref[1]].sha256 if ref[0] == "id" else self.snapshots[ref[1]][1]["sha256"]


def write_plans(
    session: Session,
    plans: Sequence[BatchPlan],
    changes: ChangeWriter,
    stored: dict[int, Snapshot] | None = None,
) -> list[list[Change]]:
    """Write the batches of several sources at once: bodies, snapshots and documents as a few
    multi-row statements for all of them, then each one's changes with their alert rows.

    `stored` holds snapshots already loaded (see `BatchPlan.stored_refs`); the rest are loaded
    here. New documents are dated by the first plan's `now` (the plans of a group share one).
    The changes come back per plan, in plan order.
    """
    if not plans:
        return []
    ids = insert_snapshots(session, [(plan.snapshots, plan.state) for plan in plans])
    for plan, plan_ids in zip(plans, ids, strict=True):
        for key, (_, index) in plan.refs.items():
            plan.state.documents[key].snapshot_id = plan_ids[index]
    now = plans[0].now
    insert_documents(session, [(plan.source.id, plan.new_keys, plan.state) for plan in plans], now)
    seen: list[Known] = []
    moved: list[Known] = []
    found: list[Known] = []
    for plan in plans:
        fresh = set(plan.new_keys)
        seen += [known for key, known in plan.seen.items() if key not in fresh]
        moved += [known for key, known in plan.moved.items() if key not in fresh]
        found += [known for key, known in plan.found.items() if key not in fresh]
    update_documents(session, now, seen=seen, moved=moved, found=found)
    stored = dict(stored or {})
    wanted = {i for plan in plans for i in plan.stored_refs()} - stored.keys()
    stored.update(load_snapshots(session, wanted))
    made: list[list[Change]] = []
    built: list[tuple[SourceConfig, Change]] = []
    for plan, plan_ids in zip(plans, ids, strict=True):
        made.append([])
        for kind, key, old, new in plan.changes:
            before = _snapshot(plan, plan_ids, stored, old) if old else None
            after = _snapshot(plan, plan_ids, stored, new)
            change = changes.build(
                plan.source, kind=kind, key=key, old=before, new=after, now=plan.now
            )
            made[-1].append(change)
            built.append((plan.source, change))
    if built:
        changes.file_all(session, built)  # one flush for all, then their alert rows
    return made


def _snapshot(plan: BatchPlan, ids: list[int], stored: dict[int, Snapshot], ref: Ref) -> Snapshot:
    if ref[0] == "id":
        return stored[ref[1]]
    return Snapshot(id=ids[ref[1]], **plan.snapshots[ref[1]][1])
