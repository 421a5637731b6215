"""One FDA action seen in several sources is one entry of an alert email: "seen in N sources".

A warning letter appears in two warning-letter listings, a Federal Register document in the
daily inspection desk and in the published-documents search, a safety communication in MedWatch
and on the page it links: each source records its own change, and without this the email would
show the same action two or three times. Changes of an email are one action when, detected within
`WINDOW` of each other and in at least two sources, they share a linked URL (the document's own
address, canonical: http/https, case of the host, tracking parameters do not matter) or a
document number (an API record's `document_number`, or its `html_url` / `pdf_url`). Labels are
never grouped: two label sources show different versions of one label on their own schedules.

Every change stays on record and in the email's `X-Fdawatch-Changes` header; only the first
(most severe) is shown in full, the others are listed under it with their source.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from db.engine import IN_LIST_MAX, in_batches
from db.models import Change, Snapshot
from monitor.core.api_records import parse_record_text
from monitor.delivery.render import body_text, link_url, source_title
from monitor.items import LABEL_OPENFDA, LABEL_SPL, RECORD, canonical_url
from monitor.sources import SourceConfig

WINDOW = timedelta(hours=24)
_RECORD_URL_FIELDS = ("html_url", "pdf_url")


@dataclass(frozen=True)
class SeenIn:
    """One source's change in a group: what the "seen in N sources" list shows of it."""

    change_id: int
    severity: str
    kind: str
    source_id: str
    source_title: str
    detected_at: datetime
    url: str
    url_link: str | None


def _url_key(value: str | None) -> str | None:
    value = (value or "").strip()
    if not value.lower().startswith(("http://", "https://")):
        return None
    try:
        return "url:" + canonical_url(value)
    except ValueError:
        return None


def action_keys(change: Change, snapshot: Snapshot | None) -> set[str]:
    """What identifies the FDA action behind `change`: its linked URLs and document numbers."""
    content_type = (snapshot.meta or {}).get("content_type") if snapshot else None
    if content_type in (LABEL_SPL, LABEL_OPENFDA):
        return set()
    if content_type == RECORD:
        assert snapshot is not None
        fields = parse_record_text(snapshot.text)
        keys = {_url_key(fields.get(name)) for name in _RECORD_URL_FIELDS}
        number = fields.get("document_number", "").strip()
        if number:
            keys.add(f"document:{number.upper()}")
        return {key for key in keys if key}
    candidates = (change.doc_key, snapshot.url if snapshot else None)
    return {key for key in map(_url_key, candidates) if key}


def _page(snapshot: Snapshot) -> str:
    """Where a reader sees the document: a record's own page (`html_url`), else its URL."""
    if (snapshot.meta or {}).get("content_type") == RECORD:
        page = parse_record_text(snapshot.text).get("html_url", "").strip()
        if page:
            return page
    return snapshot.url


def _snapshot(session: Session, change: Change) -> Snapshot | None:
    snapshot_id = change.new_snapshot_id or change.old_snapshot_id
    return session.get(Snapshot, snapshot_id) if snapshot_id is not None else None


def _documents(session: Session, changes: Sequence[Change]) -> dict[int, Snapshot]:
    """The snapshot each change points at (its newest), loaded in batches; a page's text is
    left out (only a record's is read), so a storm of long pages costs little memory."""
    ids = sorted({i for c in changes if (i := c.new_snapshot_id or c.old_snapshot_id)})
    found: dict[int, Snapshot] = {}
    for batch in in_batches(ids, IN_LIST_MAX):
        rows = session.exec(
            select(Snapshot.id, Snapshot.url, Snapshot.meta).where(col(Snapshot.id).in_(batch))
        )
        for snapshot_id, url, meta in rows:
            found[snapshot_id] = Snapshot(id=snapshot_id, url=url, meta=meta or {}, text="")
    records = [i for i, snapshot in found.items() if snapshot.meta.get("content_type") == RECORD]
    for batch in in_batches(records, IN_LIST_MAX):
        rows = session.exec(select(Snapshot.id, Snapshot.text).where(col(Snapshot.id).in_(batch)))
        for snapshot_id, text in rows:
            found[snapshot_id].text = text
    return found


def group_same_action(session: Session, ordered: Sequence[Change]) -> list[list[Change]]:
    """`ordered` split into entries: a group of several sources' changes, or one change alone.

    Entries keep the order of their first change; a change joins the first earlier group it
    shares a key with whose first change was detected within `WINDOW` of it.
    """
    documents = _documents(session, ordered)
    groups: list[list[Change]] = []
    by_key: dict[str, list[int]] = {}  # key → the groups (indexes) holding it, oldest first
    for change in ordered:
        snapshot = documents.get(change.new_snapshot_id or change.old_snapshot_id or 0)
        keys = action_keys(change, snapshot)
        candidates = sorted({index for key in keys for index in by_key.get(key, ())})
        home = next(
            (i for i in candidates if abs(change.detected_at - groups[i][0].detected_at) <= WINDOW),
            None,
        )
        if home is None:
            home = len(groups)
            groups.append([])
        groups[home].append(change)
        for key in keys:
            if home not in by_key.setdefault(key, []):
                by_key[key].append(home)
    entries: list[list[Change]] = []
    for members in groups:
        if len({member.source_id for member in members}) > 1:
            entries.append(members)
        else:  # one source only (one document changed twice): not "seen in N sources"
            entries.extend([member] for member in members)
    return entries


def seen_in(
    session: Session, members: Sequence[Change], sources: Mapping[str, SourceConfig]
) -> tuple[SeenIn, ...]:
    """The "seen in N sources" list of a group; empty for a change seen in one source."""
    if len(members) < 2:
        return ()
    listed = []
    for change in members:
        assert change.id is not None
        snapshot = _snapshot(session, change)
        url = _page(snapshot) if snapshot else change.doc_key
        listed.append(
            SeenIn(
                change_id=change.id,
                severity=change.severity,
                kind=change.kind,
                source_id=change.source_id,
                source_title=source_title(session, change.source_id, sources),
                detected_at=change.detected_at,
                url=body_text(url),
                url_link=link_url(url),
            )
        )
    return tuple(listed)
