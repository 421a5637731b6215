"""The only writer of the history: observations become snapshots, changes and outbox rows.

`record()` normalizes an observation, hashes it and compares it with the document's current
snapshot. Same hash: nothing new. A new document: a baseline snapshot (the first fetch of a
source never raises changes) or, after the baseline, a `new` change. A different hash: a new
snapshot and a `changed` change with its diff. `record_fetch()` keeps the source-health record;
for an API source, a document missing from a complete result set is a `removed` change.
A fetch that failed is never a content change. Nothing here commits: the caller owns the
transaction, so a change and its alert rows land together or not at all.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert
from sqlmodel import Session, col, select

from db.engine import in_batches
from db.models import Blob, Change, CrawlRun, Document, Fetch, HostBackoff, Snapshot, Source
from monitor.config import Recipient
from monitor.core import api_records as records
from monitor.core import diff, labels
from monitor.core.normalize import content_sha256, feed_item_text, html_to_text
from monitor.core.severity import classify
from monitor.core.terms import expand_terms, match_terms, weight
from monitor.delivery import outbox
from monitor.items import (
    BLOCKED,
    DRIFT,
    FAILED,
    FEED_ITEM,
    GONE,
    HELD,
    HTML,
    LABEL_OPENFDA,
    LABEL_SPL,
    NOT_MODIFIED,
    OK,
    RECORD,
    Observation,
    SourceFetch,
)
from monitor.sources import RESULT_SET_KINDS, SourceConfig, host_key

#: Outcomes that count as a failure in a row (a source-health problem, never a change).
UNHEALTHY = (FAILED, DRIFT, BLOCKED)
#: How a health notice is filed and worded, by the outcome that crossed the threshold.
NOTICE_KIND = {DRIFT: "layout_drift", BLOCKED: "source_blocked", FAILED: "source_failing"}
HEALTH_STATE = {DRIFT: "drift", BLOCKED: "blocked", FAILED: "failing"}
#: (first wait, longest wait) in seconds after a CDN refused a host; the wait doubles per refusal.
DEFAULT_BACKOFF = (1800.0, 86400.0)
#: Refusals of one host closer together than this are one refusal (one crawl, several sources).
SAME_REFUSAL = timedelta(minutes=2)


def source_rows(session: Session, ids: Sequence[str]) -> dict[str, Source]:
    """The `Source` rows of `ids` that exist: one query per 500 sources, not one per source."""
    rows: dict[str, Source] = {}
    for chunk in in_batches(sorted(set(ids))):
        rows.update(
            (row.id, row) for row in session.exec(select(Source).where(col(Source.id).in_(chunk)))
        )
    return rows


def _unregistered(source_id: str) -> LookupError:
    return LookupError(f"source {source_id!r} is not in the database; call sync_sources first")


def sync_sources(session: Session, sources: Sequence[SourceConfig]) -> None:
    """Create or update the `Source` rows of `sources`; a new URL forgets the old validators."""
    known = source_rows(session, [config.id for config in sources])
    for config in sources:
        row = known.get(config.id)
        if row is None:
            session.add(Source(id=config.id, kind=config.kind, url=config.url, title=config.title))
            continue
        if row.url != config.url:
            row.etag = row.last_modified = None
        row.kind, row.url, row.title = config.kind, config.url, config.title
        session.add(row)


def normalized_text(observation: Observation) -> tuple[str, dict[str, str]]:
    """The text that is hashed and diffed, and metadata kept beside it (the page's own date).

    Labels and records keep their content type in the metadata, so a later change knows to
    diff them by section or by field.
    """
    if observation.content_type == FEED_ITEM:
        return feed_item_text(observation.title, observation.content), {}
    if observation.content_type == LABEL_SPL:
        return labels.spl_text(observation.content), {"content_type": LABEL_SPL}
    if observation.content_type == LABEL_OPENFDA:
        return labels.openfda_label_text(observation.content), {"content_type": LABEL_OPENFDA}
    if observation.content_type == RECORD:
        return records.record_text(observation.content), {"content_type": RECORD}
    page = html_to_text(observation.content)
    meta = {"content_date": page.content_date} if page.content_date else {}
    return page.text, meta


#: Bump when `normalized_text` gives a different text for the same input: every document is then
#: normalized again once, instead of trusting the input hashes stored by the older version.
NORMALIZER_VERSION = "1"


def input_sha256(observation: Observation) -> str:
    """Hash of everything `normalized_text` reads: the same input gives the same text.

    Stored beside each snapshot, it lets an unchanged feed item or API record skip the HTML
    parse altogether; the region a page's selector picks is the input, so a new selector (or a
    new NORMALIZER_VERSION) still normalizes the page again.
    """
    digest = hashlib.sha256()
    parts = (NORMALIZER_VERSION, observation.content_type, observation.title, observation.content)
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()


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


def _snapshot(
    session: Session,
    observation: Observation,
    text: str,
    sha: str,
    meta: dict[str, str],
    *,
    first: bool = False,
    stored: dict[int, str] | None = None,
) -> Snapshot:
    """The snapshot of this version: an earlier one with the same hash, else a new one.

    `first`: the document has no snapshot yet (saves a query per new document).
    """
    existing = None
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
        body_sha256=store_body(session, observation.body, stored),
        http_status=observation.http_status,
        headers=observation.headers,
        meta=meta,
        fetched_at=observation.fetched_at,
    )
    session.add(snapshot)
    session.flush()
    return snapshot


def _document(session: Session, source_id: str, key: str) -> Document | None:
    return session.exec(
        select(Document).where(Document.source_id == source_id, Document.doc_key == key)
    ).first()


def _write_change(
    session: Session,
    *,
    source: SourceConfig,
    kind: str,
    key: str,
    old: Snapshot | None,
    new: Snapshot | None,
    now: datetime,
    recipients: Sequence[Recipient],
    run_id: int | None,
) -> Change:
    old_text = old.text if old else ""
    new_text = new.text if new else ""
    added, removed = diff.changed_lines(old_text, new_text)
    latest = new or old
    assert latest is not None
    content_type = str(latest.meta.get("content_type", HTML))
    sections = changed_parts(content_type, old_text, new_text) if old and new else []
    verdict = classify(
        source_tier=source.tier,
        source_title=source.title,
        kind=kind,
        url=latest.url,
        added=added,
        removed=removed,
        content_type=content_type,
        source_kind=source.kind,
        sections=sections,
        old_text=old_text,
        new_text=new_text,
    )
    change = Change(
        source_id=source.id,
        doc_key=key,
        kind=kind,
        old_snapshot_id=old.id if old else None,
        new_snapshot_id=new.id if new else None,
        title=latest.title or source.title,
        summary=_summary(content_type, old.text if old else None, new_text, kind, sections),
        diff=diff.unified(
            old_text,
            new_text,
            f"{key} {old.fetched_at.isoformat()}" if old else "/dev/null",
            f"{key} {new.fetched_at.isoformat()}" if new else "/dev/null",
        ),
        severity=verdict.tier,
        severity_reasons=list(verdict.reasons),
        matched_terms=match_terms("\n".join([*added, *removed])),
        sections=sections,
        run_id=run_id,
        detected_at=now,
    )
    session.add(change)
    session.flush()
    outbox.enqueue(session, change, recipients, source.tags, now)
    source_row = session.get(Source, source.id)
    if source_row is not None:
        source_row.last_change_at = now
    return change


def _summary(
    content_type: str, old: str | None, new: str, kind: str, sections: Sequence[str]
) -> str:
    """The one-line summary; a label's quotes its changed sections, not its version line."""
    if sections and content_type in (LABEL_SPL, LABEL_OPENFDA) and old is not None:
        old, new = labels.without_document(old), labels.without_document(new)
    return diff.summarize(old, new, kind, weigh=weight)


def changed_parts(content_type: str, old_text: str, new_text: str) -> list[str]:
    """The label sections or record fields an edit touched (nothing for pages and feeds)."""
    if content_type in (LABEL_SPL, LABEL_OPENFDA):
        return labels.changed_sections(old_text, new_text)
    if content_type == RECORD:
        return records.changed_fields(old_text, new_text)
    return []


@dataclass
class Known:
    """A document as `record` needs it: the row, and the hashes of its current version."""

    document: Document
    sha256: str
    input_sha256: str | None


@dataclass
class SourceState:
    """A source's row and its documents' current hashes, loaded in two queries per fetch.

    Recording a feed of 50 items (or an API result set of thousands) then looks each item up in
    memory instead of running three queries per item; `record` keeps it current as it writes.
    """

    row: Source
    documents: dict[str, Known]
    bodies: dict[int, str] = field(default_factory=dict)  # response bodies stored in this fetch

    @classmethod
    def load(cls, session: Session, source_id: str) -> SourceState:
        row = session.get(Source, source_id)
        if row is None:
            raise _unregistered(source_id)
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


def record(
    session: Session,
    observation: Observation,
    now: datetime,
    *,
    source: SourceConfig,
    recipients: Sequence[Recipient] = (),
    run_id: int | None = None,
    state: SourceState | None = None,
) -> Change | None:
    """Record one observation; return the change it makes, if any (nothing is committed).

    Pass the same `state` for every observation of one fetch (see `SourceState`).
    """
    state = state or SourceState.load(session, source.id)
    row = state.row
    known = state.documents.get(observation.key)
    input_sha = input_sha256(observation)
    if known and known.document.missing_checks:
        known.document.missing_checks = 0  # seen again: an earlier 404 or absence was not final
    if known and known.document.removed_at is None and known.input_sha256 == input_sha:
        known.document.last_seen_at = now  # the very input of the current version: unchanged
        return None
    text, meta = normalized_text(observation)
    if not text:
        return None
    meta["input_sha256"] = input_sha
    if known is None and source.terms:
        wanted = expand_terms(source.terms)
        if not match_terms(f"{observation.title}\n{text}", wanted):
            return None  # a feed item outside the watched terms is not kept
    if row.first_fetched_at is None:
        row.first_fetched_at = observation.fetched_at
    # Until one fetch of the source has been fully recorded (`record_fetch` marks it a success),
    # everything is baseline: a crawl killed halfway through its first fetch, or a feed whose
    # first fetch kept no item, must not turn the rest of its baseline into "new" alerts.
    baseline = row.last_success_at is None
    sha = content_sha256(text)
    if known is None:
        snapshot = _snapshot(session, observation, text, sha, meta, first=True, stored=state.bodies)
        document = Document(
            source_id=source.id,
            doc_key=observation.key,
            current_snapshot_id=snapshot.id,
            first_seen_at=now,
            last_seen_at=now,
        )
        session.add(document)
        state.documents[observation.key] = Known(document, sha, input_sha)
        if baseline:
            return None
        return _write_change(
            session,
            source=source,
            kind="new",
            key=observation.key,
            old=None,
            new=snapshot,
            now=now,
            recipients=recipients,
            run_id=run_id,
        )
    document = known.document
    document.last_seen_at = now
    if document.removed_at is None and known.sha256 == sha:
        # Compared by hash, the stored text is never loaded. A new input with the same text (a
        # date or markup change) keeps the old input hash, as snapshots are append-only: such a
        # document is parsed again on each fetch until its text changes.
        return None
    current = session.get(Snapshot, document.current_snapshot_id)
    assert current is not None
    snapshot = _snapshot(session, observation, text, sha, meta, stored=state.bodies)
    document.current_snapshot_id = snapshot.id
    document.removed_at = None
    state.documents[observation.key] = Known(document, sha, input_sha)
    return _write_change(
        session,
        source=source,
        kind="changed",
        key=observation.key,
        old=current,
        new=snapshot,
        now=now,
        recipients=recipients,
        run_id=run_id,
    )


def _remove(
    session: Session,
    document: Document,
    now: datetime,
    source: SourceConfig,
    recipients: Sequence[Recipient],
    run_id: int | None,
) -> None:
    """Mark one document removed and write its `removed` change."""
    document.removed_at = now
    _write_change(
        session,
        source=source,
        kind="removed",
        key=document.doc_key,
        old=session.get(Snapshot, document.current_snapshot_id),
        new=None,
        now=now,
        recipients=recipients,
        run_id=run_id,
    )


def _missing_again(
    session: Session,
    document: Document,
    now: datetime,
    source: SourceConfig,
    recipients: Sequence[Recipient],
    run_id: int | None,
) -> int:
    """One more check that found the document gone; removed once `confirm_removal` agree.

    A single 404 is as often a deploy, a CDN hiccup or a block as a removal, and a false "FDA
    removed its ketamine alert" is the worst alert fdawatch could send.
    """
    document.missing_checks += 1
    if document.missing_checks < source.confirm_removal:
        return 0
    _remove(session, document, now, source, recipients, run_id)
    return 1


def _record_gone(
    session: Session,
    fetch: SourceFetch,
    now: datetime,
    source: SourceConfig,
    recipients: Sequence[Recipient],
    run_id: int | None,
) -> int:
    """A page answering 404/410 at its own URL: removed after `confirm_removal` such answers."""
    document = _document(session, source.id, source.url)
    if document is None or document.removed_at is not None:
        return 0
    return _missing_again(session, document, now, source, recipients, run_id)


def _record_missing(
    session: Session,
    fetch: SourceFetch,
    now: datetime,
    source: SourceConfig,
    recipients: Sequence[Recipient],
    run_id: int | None,
) -> int:
    """Documents absent from a complete result set: removed after `confirm_removal` absences.

    Only API sources return complete sets; the caller passes only OK fetches, and a spider
    reports a failed or truncated crawl as FAILED, so a partial set never counts as an absence.
    """
    present = set(fetch.document_keys)
    documents = session.exec(
        select(Document).where(Document.source_id == source.id, col(Document.removed_at).is_(None))
    ).all()
    missing = [document for document in documents if document.doc_key not in present]
    return sum(
        _missing_again(session, document, now, source, recipients, run_id) for document in missing
    )


def _record_move(
    session: Session,
    row: Source,
    fetch: SourceFetch,
    now: datetime,
    source: SourceConfig,
    recipients: Sequence[Recipient],
    run_id: int | None,
) -> int:
    """A permanent redirect to a new address: one `moved` change per new address.

    The content at the new address is compared as usual (the document keeps its key), so a
    page that moves is neither a removal nor silence.
    """
    if fetch.moved_to is None:
        row.moved_to = None  # back at its own address (or no longer redirected): nothing to say
        return 0
    if fetch.moved_to == row.moved_to:
        return 0
    old_url = row.moved_to or source.url
    row.moved_to = fetch.moved_to
    document = _document(session, source.id, source.url)
    current = session.get(Snapshot, document.current_snapshot_id) if document else None
    verdict = classify(
        source_tier=source.tier, source_title=source.title, kind="moved", url=fetch.moved_to,
        added=[], removed=[], source_kind=source.kind,
    )  # fmt: skip
    change = Change(
        source_id=source.id,
        doc_key=source.url,
        kind="moved",
        old_snapshot_id=current.id if current else None,
        new_snapshot_id=current.id if current else None,
        title=(current.title if current else "") or source.title,
        summary=f"Moved: {old_url} → {fetch.moved_to}",
        diff=f"- {old_url}\n+ {fetch.moved_to}\n",
        severity=verdict.tier,
        severity_reasons=list(verdict.reasons),
        run_id=run_id,
        detected_at=now,
    )
    session.add(change)
    session.flush()
    outbox.enqueue(session, change, recipients, source.tags, now)
    row.last_change_at = now
    return 1


def _notice_text(source: SourceConfig, row: Source, outcome: str) -> str:
    """The words of a "source failing / blocked / drifted" notice."""
    if outcome == BLOCKED:
        return (
            f"{source.title} ({source.id}): the site refused fdawatch's requests "
            f"{row.consecutive_failures} times in a row; last: {row.last_error}. No content change "
            "is inferred from a block. What to do: see the README, 'When FDA blocks fdawatch'."
        )
    return (
        f"{source.title} ({source.id}) failed {row.consecutive_failures} times in a row; "
        f"last error: {row.last_error}. No content change is inferred from a failure."
    )


def _update_health(
    session: Session,
    row: Source,
    fetch: SourceFetch,
    now: datetime,
    source: SourceConfig,
    recipients: Sequence[Recipient],
    threshold: int,
) -> None:
    """Count failures in a row; notify once when a source starts failing and once when it heals.

    A block shows as `blocked` at once (it is evidence, not a guess); failures and drift show
    once they reach the threshold (before that the source is "degraded").
    """
    if fetch.outcome == HELD:
        return  # not a check yet: the second look decides
    row.last_checked_at = now
    if fetch.outcome in UNHEALTHY:
        row.consecutive_failures += 1
        row.last_error = fetch.error or (f"HTTP {fetch.http_status}" if fetch.http_status else None)
        if fetch.outcome == BLOCKED:
            row.health = "blocked"
        elif row.health == "blocked":
            row.health = "failing" if row.failure_alerted_at else "ok"
        limit = source.failure_threshold or threshold
        if row.consecutive_failures >= limit and row.failure_alerted_at is None:
            row.health = HEALTH_STATE[fetch.outcome]
            row.failure_alerted_at = now
            outbox.enqueue_notice(
                session, source.id, NOTICE_KIND[fetch.outcome],
                _notice_text(source, row, fetch.outcome), recipients, now, source_tags=source.tags,
            )  # fmt: skip
        return
    if row.failure_alerted_at is not None:
        notice = (
            f"{source.title} ({source.id}) works again after {row.consecutive_failures} failures."
        )
        outbox.enqueue_notice(
            session, source.id, "source_recovered", notice, recipients, now, source_tags=source.tags
        )
    row.consecutive_failures = 0
    row.failure_alerted_at = None
    row.last_error = None
    row.health = "ok"
    row.last_success_at = now


def _note_refusal(
    session: Session, fetch: SourceFetch, now: datetime, backoff: tuple[float, float]
) -> None:
    """A request the host's CDN refused: back off from that host, doubling the wait each time.

    A BLOCKED fetch that was never requested (the host was already backing off) changes nothing:
    only real refusals lengthen the wait.
    """
    if fetch.outcome != BLOCKED or fetch.http_status is None:
        return
    host = host_key(fetch.url)
    row = session.get(HostBackoff, host)
    if row is None:
        row = HostBackoff(
            host=host, refusals=0, first_refused_at=now, last_refused_at=now, until=now
        )
        session.add(row)
    elif now - row.last_refused_at < SAME_REFUSAL:
        row.evidence = fetch.error or row.evidence
        return  # another source of the same crawl: the same refusal
    row.refusals += 1
    row.last_refused_at = now
    first, longest = backoff
    row.until = now + timedelta(seconds=min(longest, first * 2 ** min(row.refusals - 1, 20)))
    row.evidence = fetch.error or ""


def _forget_refusals(session: Session, hosts: set[str]) -> None:
    """Hosts that answered normally again: no more backing off from them."""
    for chunk in in_batches(sorted(hosts)):
        session.execute(delete(HostBackoff).where(col(HostBackoff.host).in_(chunk)))


def backoff_until(session: Session, now: datetime) -> dict[str, datetime]:
    """Hosts not to be asked before a time (for the crawl's FDAWATCH_BACKOFF setting)."""
    rows = session.exec(select(HostBackoff).where(col(HostBackoff.until) > now)).all()
    return {row.host: row.until for row in rows}


def record_fetch(
    session: Session,
    fetch: SourceFetch,
    now: datetime,
    *,
    source: SourceConfig,
    recipients: Sequence[Recipient] = (),
    run_id: int | None = None,
    changes: int = 0,
    failure_threshold: int = 3,
    row: Source | None = None,
    backoff: tuple[float, float] = DEFAULT_BACKOFF,
) -> Fetch:
    """Record how a fetch went; keep validators only from a fully recorded 200 response.

    `row` is the source's row when the caller already loaded it (a batch of 304s).
    """
    row = row or session.get(Source, source.id)
    if row is None:
        raise _unregistered(source.id)
    if fetch.outcome == GONE and source.kind == "page":
        changes += _record_gone(session, fetch, now, source, recipients, run_id)
    if fetch.outcome == OK and source.kind in RESULT_SET_KINDS:
        changes += _record_missing(session, fetch, now, source, recipients, run_id)
    if fetch.outcome == OK:
        row.etag, row.last_modified = fetch.etag, fetch.last_modified
        changes += _record_move(session, row, fetch, now, source, recipients, run_id)
    if fetch.outcome == BLOCKED:
        _note_refusal(session, fetch, now, backoff)
    elif fetch.outcome in (OK, NOT_MODIFIED, GONE) and session.get(
        HostBackoff, host_key(fetch.url)
    ):
        _forget_refusals(session, {host_key(fetch.url)})
    _update_health(session, row, fetch, now, source, recipients, failure_threshold)
    entry = Fetch(**_fetch_values(fetch, run_id, changes))
    session.add(entry)
    return entry


def record_not_modified(
    session: Session,
    fetches: Sequence[SourceFetch],
    now: datetime,
    *,
    sources: Mapping[str, SourceConfig],
    recipients: Sequence[Recipient] = (),
    run_id: int | None = None,
    failure_threshold: int = 3,
) -> None:
    """Record many 304 answers at once: what `record_fetch` does, in a few statements.

    A 304 carries no content, so only the sources' health changes (a source failing before
    recovers, with its notice); the fetch rows go in as one multi-row INSERT instead of one ORM
    object each. An unchanged pass of a thousand sources is mostly this.
    """
    if any(fetch.outcome != NOT_MODIFIED for fetch in fetches):
        raise ValueError("record_not_modified takes only NOT_MODIFIED fetches")
    rows = source_rows(session, [fetch.source_id for fetch in fetches])
    for fetch in fetches:
        row = rows.get(fetch.source_id)
        if row is None:
            raise _unregistered(fetch.source_id)
        source = sources[fetch.source_id]
        _update_health(session, row, fetch, now, source, recipients, failure_threshold)
    if fetches:
        if session.exec(select(HostBackoff.host).limit(1)).first() is not None:
            _forget_refusals(session, {host_key(fetch.url) for fetch in fetches})
        session.execute(insert(Fetch), [_fetch_values(fetch, run_id, 0) for fetch in fetches])


def _fetch_values(fetch: SourceFetch, run_id: int | None, changes: int) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "source_id": fetch.source_id,
        "url": fetch.url,
        "outcome": fetch.outcome,
        "http_status": fetch.http_status,
        "error": fetch.error,
        "documents": fetch.documents,
        "changes": changes,
        "bytes": fetch.bytes,
        "duration_ms": fetch.duration_ms,
        "fetched_at": fetch.fetched_at,
        "final_url": fetch.final_url,
        "server": fetch.server,
    }


def finish_run(
    session: Session, run: CrawlRun, now: datetime, status: str = "finished"
) -> CrawlRun:
    """Close a crawl run: its counts come from the fetch records written during it.

    A selected source with no fetch record (the crawl process died, or was killed on timeout)
    counts as failed, so a summary never reports fewer sources than were asked for.
    """
    rows = session.exec(
        select(Fetch.source_id, Fetch.outcome, Fetch.changes)
        .where(Fetch.run_id == run.id)
        .order_by(col(Fetch.id))  # a source fetched twice in a run counts by its last fetch
    ).all()
    last = {source_id: (outcome, changes) for source_id, outcome, changes in rows}
    run.checked = len(run.source_ids)
    run.changed = sum(1 for _, changes in last.values() if changes > 0)
    run.failed = sum(1 for outcome, _ in last.values() if outcome in (*UNHEALTHY, HELD))
    run.failed += sum(1 for source_id in run.source_ids if source_id not in last)
    run.unchanged = run.checked - run.changed - run.failed
    run.finished_at = now
    run.status = status
    session.add(run)
    return run
