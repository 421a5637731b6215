"""Writing changes: a `Change` row with its diff, summary, severity and alert rows.

`ChangeWriter` holds what every change of one crawl shares (who is told, which run found it), so
the functions that decide *that* something changed (`monitor.history.writer`) only say *what*.
Removals are confirmed here: a document counts as removed only after `confirm_removal` checks in a
row found it gone. Nothing here commits: the caller owns the transaction, so a change and its
alert rows land together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from db.models import Change, Document, Snapshot, Source
from monitor.config import Recipient
from monitor.core import canonical, diff
from monitor.core.severity import classify
from monitor.core.terms import match_terms
from monitor.delivery import outbox
from monitor.items import DOCUMENT, HTML, SourceFetch
from monitor.sources import SourceConfig


def find_document(session: Session, source_id: str, key: str) -> Document | None:
    return session.exec(
        select(Document).where(Document.source_id == source_id, Document.doc_key == key)
    ).first()


def linked_keys(session: Session, source_id: str) -> set[str]:
    """The keys of the documents a source linked (stored as DOCUMENT), whatever it does now."""
    rows = session.exec(
        select(Document.doc_key, Snapshot.meta)
        .join(Snapshot, col(Snapshot.id) == col(Document.current_snapshot_id))
        .where(Document.source_id == source_id)
    ).all()
    return {key for key, meta in rows if (meta or {}).get("content_type") == DOCUMENT}


@dataclass(frozen=True)
class ChangeWriter:
    """Writes the changes of one crawl (or one test): its recipients and its run id."""

    recipients: Sequence[Recipient] = ()
    run_id: int | None = None

    def write(
        self,
        session: Session,
        source: SourceConfig,
        *,
        kind: str,
        key: str,
        old: Snapshot | None,
        new: Snapshot | None,
        now: datetime,
    ) -> Change:
        """One `new`, `changed` or `removed` change between two snapshots, with its alerts."""
        change = self.build(source, kind=kind, key=key, old=old, new=new, now=now)
        return self._file(session, source, change, now)

    def build(
        self,
        source: SourceConfig,
        *,
        kind: str,
        key: str,
        old: Snapshot | None,
        new: Snapshot | None,
        now: datetime,
    ) -> Change:
        """The change between two snapshots (diff, summary, severity), not yet in the session."""
        old_text = old.text if old else ""
        new_text = new.text if new else ""
        added, removed = diff.changed_lines(old_text, new_text)
        latest = new or old
        assert latest is not None
        content_type = str(latest.meta.get("content_type", HTML))
        sections = canonical.changed_parts(content_type, old_text, new_text) if old and new else []
        verdict = classify(
            source_tier=source.tier, source_title=source.title, kind=kind, url=latest.url,
            added=added, removed=removed, content_type=content_type, source_kind=source.kind,
            sections=sections, old_text=old_text, new_text=new_text,
        )  # fmt: skip
        change = Change(
            source_id=source.id,
            doc_key=key,
            kind=kind,
            old_snapshot_id=old.id if old else None,
            new_snapshot_id=new.id if new else None,
            title=latest.title or source.title,
            summary=canonical.summary(
                content_type, old.text if old else None, new_text, kind, sections
            ),
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
            run_id=self.run_id,
            detected_at=now,
        )
        return change

    def _file(
        self, session: Session, source: SourceConfig, change: Change, now: datetime
    ) -> Change:
        session.add(change)  # enqueue flushes it: a change without an id queues no lookup
        outbox.enqueue(session, change, self.recipients, source.tags, now)
        self._touch(session, source, now)
        return change

    def file_all(self, session: Session, built: Sequence[tuple[SourceConfig, Change]]) -> None:
        """File changes built together (a group of sources): one flush gives all of them their
        ids, then their alert rows, none looked up (a change inserted here can have none yet).
        Filed one by one, each change was a flush of its own (~2 % of a changed crawl)."""
        session.add_all([change for _, change in built])
        session.flush()
        for source, change in built:
            outbox.enqueue(
                session, change, self.recipients, source.tags, change.detected_at, inserted=True
            )
            self._touch(session, source, change.detected_at)

    @staticmethod
    def _touch(session: Session, source: SourceConfig, now: datetime) -> None:
        source_row = session.get(Source, source.id)
        if source_row is not None:
            source_row.last_change_at = now

    def missing_again(
        self, session: Session, document: Document, now: datetime, source: SourceConfig
    ) -> int:
        """One more check that found the document gone; removed once `confirm_removal` agree.

        A single 404 is as often a deploy, a CDN hiccup or a block as a removal, and a false "FDA
        removed its ketamine alert" is the worst alert fdawatch could send.
        """
        document.missing_checks += 1
        if document.missing_checks < source.confirm_removal:
            return 0
        document.removed_at = now
        self.write(
            session, source, kind="removed", key=document.doc_key,
            old=session.get(Snapshot, document.current_snapshot_id), new=None, now=now,
        )  # fmt: skip
        return 1

    def gone(self, session: Session, now: datetime, source: SourceConfig) -> int:
        """A page answering 404/410 at its own URL: removed after `confirm_removal` such answers."""
        document = find_document(session, source.id, source.url)
        if document is None or document.removed_at is not None:
            return 0
        return self.missing_again(session, document, now, source)

    def absent(
        self, session: Session, fetch: SourceFetch, now: datetime, source: SourceConfig
    ) -> int:
        """Documents absent from a complete result set: removed after `confirm_removal` absences.

        Only API sources return complete sets; the caller passes only OK fetches, and a spider
        reports a failed or truncated crawl as FAILED, so a partial set never counts as an absence.
        """
        present = set(fetch.document_keys)
        documents = session.exec(
            select(Document).where(
                Document.source_id == source.id, col(Document.removed_at).is_(None)
            )
        ).all()
        missing = [document for document in documents if document.doc_key not in present]
        if missing and not source.follow_documents:  # documents it linked are not in the set
            linked = linked_keys(session, source.id)
            missing = [document for document in missing if document.doc_key not in linked]
        return sum(self.missing_again(session, document, now, source) for document in missing)

    def relinked(self, session: Session, source: SourceConfig, keys: Sequence[str]) -> None:
        """Linked documents still linked (a 304 records no observation): their misses reset."""
        present = set(keys)
        for document in session.exec(
            select(Document).where(
                Document.source_id == source.id, col(Document.missing_checks) > 0
            )
        ).all():
            if document.doc_key in present:
                document.missing_checks = 0

    def unlinked(
        self, session: Session, fetch: SourceFetch, now: datetime, source: SourceConfig
    ) -> int:
        """A page's documents it no longer links: removed after `confirm_removal` such fetches.

        Each is also noted on the page's change of this fetch, when there is one (the link's
        text usually went with it).
        """
        present = set(fetch.document_keys)
        documents = session.exec(
            select(Document).where(
                Document.source_id == source.id,
                Document.doc_key != source.url,
                col(Document.removed_at).is_(None),
            )
        ).all()
        missing = [document for document in documents if document.doc_key not in present]
        if missing:
            self.note_unlinked(session, source, missing, now)
        return sum(self.missing_again(session, document, now, source) for document in missing)

    def note_unlinked(
        self, session: Session, source: SourceConfig, documents: Sequence[Document], now: datetime
    ) -> None:
        page = session.exec(
            select(Change).where(
                Change.source_id == source.id,
                Change.doc_key == source.url,
                Change.detected_at == now,
            )
        ).first()
        if page is None:
            return
        notes = []
        for document in documents:
            snapshot = session.get(Snapshot, document.current_snapshot_id)
            title = snapshot.title if snapshot and snapshot.title else document.doc_key
            checks = document.missing_checks + 1
            notes.append(
                f"no longer links to the document {title!r} ({document.doc_key}): "
                f"missing {checks} of the {source.confirm_removal} checks in a row that remove it"
            )
        page.severity_reasons = [*page.severity_reasons, *notes]
        session.add(page)

    def moved(
        self, session: Session, row: Source, fetch: SourceFetch, now: datetime, source: SourceConfig
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
        document = find_document(session, source.id, source.url)
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
            run_id=self.run_id,
            detected_at=now,
        )
        self._file(session, source, change, now)
        return 1
