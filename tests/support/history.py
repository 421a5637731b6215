"""Histories for tests, written the way fdawatch writes them: through `HistoryWriter`.

A test describes what a source *served* (the text of each version, a failed fetch) and
`HistoryBuilder` records it with the product's writer: `record_observation` for each version,
`record_fetch` for how each fetch went. Snapshots, documents, changes (their diff, summary,
severity, reasons, terms), alert rows (through `monitor.delivery.outbox`, for the builder's
recipients) and source health therefore cannot drift from what a real crawl stores. Nothing here
commits: the caller owns the transaction, as with the writer itself.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlmodel import Session

from db.models import Change, Document, Fetch
from monitor.config import Recipient
from monitor.history.changes import find_document
from monitor.history.writer import HistoryWriter
from monitor.items import FAILED, FEED_ITEM, HTML, OK, Observation, SourceFetch
from monitor.sources import SourceConfig


def page_html(text: str) -> str:
    """A page's watched region whose normalized text is `text`: one paragraph per line.

    The lines are escaped, so markup in `text` (a hostile page) stays text, as it would be on a
    page that shows it.
    """
    paragraphs = "".join(f"<p>{html.escape(line, quote=False)}</p>" for line in text.splitlines())
    return f"<main>{paragraphs}</main>"


def raw_page(title: str, text: str) -> bytes:
    """The raw body a server would send for `text` (SYNTHETIC), kept as the evidence."""
    return (
        "<!DOCTYPE html>\n<!-- SYNTHETIC fixture for fdawatch tests -->\n<html><head><title>"
        f"{html.escape(title)}</title></head><body>{page_html(text)}</body></html>\n"
    ).encode()


class HistoryBuilder:
    """Records what sources served, through one `HistoryWriter` (its recipients get alerts)."""

    def __init__(
        self,
        session: Session,
        sources: Iterable[SourceConfig],
        recipients: Sequence[Recipient] = (),
        failure_threshold: int = 3,
    ) -> None:
        self.session = session
        self.sources = {source.id: source for source in sources}
        self.writer = HistoryWriter(
            self.sources, recipients=recipients, failure_threshold=failure_threshold
        )
        self.writer.sync_sources(session)
        session.flush()

    def document(self, source: SourceConfig, key: str | None = None) -> Document | None:
        return find_document(self.session, source.id, key or source.url)

    def observe(
        self,
        source: SourceConfig,
        text: str,
        at: datetime,
        *,
        key: str | None = None,
        title: str = "",
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Change | None:
        """One document as fetched at `at`: a page's text, or a feed item's (its title first)."""
        lines = text.splitlines()
        title = title or (lines[0] if lines else source.title)
        if source.kind == "feed":  # an item's text is its title, then its description
            content_type, content = FEED_ITEM, page_html("\n".join(lines[1:]))
        else:
            content_type, content = HTML, page_html(text)
        observation = Observation(
            source_id=source.id,
            key=key or source.url,
            url=key or source.url,
            title=title,
            content=content,
            content_type=content_type,
            fetched_at=at,
            body=raw_page(title, text) if body is None else body,
            headers=dict(headers or {}),
        )
        change = self.writer.record_observation(self.session, observation, at)
        self.session.flush()
        return change

    def fetched(
        self,
        source: SourceConfig,
        at: datetime,
        keys: Sequence[str] = (),
        changes: int = 0,
        http_status: int = 200,
    ) -> Fetch:
        """The fetch record that ends a successful fetch of `keys` (documents, in order)."""
        fetch = SourceFetch(
            source.id, source.url, OK, at, http_status=http_status,
            documents=len(keys), document_keys=list(keys),
        )  # fmt: skip
        return self.writer.record_fetch(self.session, fetch, at, changes=changes)

    def version(
        self,
        source: SourceConfig,
        text: str,
        at: datetime,
        *,
        key: str | None = None,
        title: str = "",
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Change | None:
        """A whole fetch of a page (or of a feed with one item): the document, then its record."""
        change = self.observe(source, text, at, key=key, title=title, body=body, headers=headers)
        self.fetched(source, at, [key or source.url], changes=int(change is not None))
        return change

    def failed(
        self,
        source: SourceConfig,
        at: datetime,
        error: str,
        *,
        outcome: str = FAILED,
        http_status: int | None = None,
    ) -> Fetch:
        """A fetch that went wrong: a source-health record, never a content change."""
        fetch = SourceFetch(
            source.id, source.url, outcome, at, http_status=http_status, error=error
        )
        return self.writer.record_fetch(self.session, fetch, at)
