"""A Scrapy add-on that plugs fdawatch's configuration into every crawl.

`spiders/settings.py` enables it, so `scrapy crawl page -a source=<id>` and `fdawatch crawl`
behave the same: sources from sources.toml, politeness from fdawatch.toml and the environment,
conditional-GET validators from the history, the keys of the documents already stored (for the
kinds that fetch only what is new), the validators of stored linked documents (for sources that
follow them), and the history pipeline.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, select

from db.engine import open_database
from db.models import Document, HostBackoff, Snapshot, Source
from monitor.config import Settings, load_settings
from monitor.items import DOCUMENT
from monitor.sources import KNOWN_KEYS_KINDS, SourceConfig, SourceTable, load_sources

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

PRIORITY = "project"  # above the project's static defaults, below `-s` on the command line
#: Where Scrapy's redirect middlewares warn that RefererMiddleware is off (spiders/settings.py
#: turns it off on purpose: our requests are not links a reader followed, so no Referer is sent).
REDIRECT_LOGGER = "scrapy.downloadermiddlewares.redirect"


class NoRefererNotice(logging.Filter):
    """Drops the two WARNINGs every crawl logged about the RefererMiddleware we disabled."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "found no scrapy.spidermiddlewares.referer.RefererMiddleware" not in str(record.msg)


def quiet_referer_notice() -> None:
    """Install `NoRefererNotice` once per process."""
    logger = logging.getLogger(REDIRECT_LOGGER)
    if not any(isinstance(f, NoRefererNotice) for f in logger.filters):
        logger.addFilter(NoRefererNotice())


@dataclass(frozen=True)
class CrawlState:
    """What a crawl needs from the history, read once (one connection) for all its spiders."""

    #: ETag / Last-Modified per source, as stored after the last fully recorded 200.
    validators: dict[str, dict[str, str | None]] = field(default_factory=dict)
    #: Hosts a CDN refused recently, and until when they are left alone (ISO times).
    backoff: dict[str, str] = field(default_factory=dict)
    #: Stored document keys of the sources whose kind fetches only what is new.
    known: dict[str, list[str]] = field(default_factory=dict)
    #: The linked documents stored for sources that follow them: key → ETag / Last-Modified of
    #: the stored version, for conditional requests (spiders/documents.py).
    documents: dict[str, dict[str, dict[str, str | None]]] = field(default_factory=dict)


def load_crawl_state(settings: Settings, sources: Mapping[str, Any]) -> CrawlState:
    """The crawl's state from the history (read-only)."""
    wanted = sorted(
        source_id
        for source_id, value in sources.items()
        if SourceConfig.coerce(value).kind in KNOWN_KEYS_KINDS
    )
    engine = open_database(settings.database_url)
    try:
        with Session(engine) as session:
            validators = {
                row.id: {"etag": row.etag, "last_modified": row.last_modified}
                for row in session.exec(select(Source)).all()
                if row.etag or row.last_modified
            }
            now = datetime.now(UTC)
            refused = session.exec(select(HostBackoff).where(col(HostBackoff.until) > now)).all()
            known: dict[str, list[str]] = {source_id: [] for source_id in wanted}
            if wanted:
                query = select(Document.source_id, Document.doc_key).where(
                    col(Document.source_id).in_(wanted)
                )
                for source_id, key in session.exec(query):
                    known[source_id].append(key)
            documents = linked_documents(session, sources)
    finally:
        engine.dispose()
    backoff = {row.host: row.until.isoformat() for row in refused}
    return CrawlState(validators, backoff, known, documents)


def linked_documents(
    session: Session, sources: Mapping[str, Any]
) -> dict[str, dict[str, dict[str, str | None]]]:
    """The stored linked documents of the sources that follow them, with their validators."""
    following = sorted(
        source_id
        for source_id, value in sources.items()
        if SourceConfig.coerce(value).follow_documents
    )
    documents: dict[str, dict[str, dict[str, str | None]]] = {sid: {} for sid in following}
    if not following:
        return documents
    query = (
        select(Document.source_id, Document.doc_key, Snapshot.headers, Snapshot.meta)
        .join(Snapshot, col(Snapshot.id) == col(Document.current_snapshot_id))
        .where(col(Document.source_id).in_(following), col(Document.removed_at).is_(None))
    )
    for source_id, key, headers, meta in session.exec(query):
        if (meta or {}).get("content_type") == DOCUMENT:
            headers = headers or {}
            documents[source_id][key] = {
                "etag": headers.get("etag"),
                "last_modified": headers.get("last-modified"),
            }
    return documents


def scrapy_settings(
    config: Settings, sources: Mapping[str, Any] | None = None, state: CrawlState | None = None
) -> dict[str, object]:
    """The Scrapy settings that follow from fdawatch's own settings.

    `sources` and the history's `state` are read from sources.toml and the database unless
    given (a crawl of several spiders reads them once, not once per spider).
    """
    if sources is None:
        sources = SourceTable(load_sources(config.sources_path))
    if state is None:
        state = load_crawl_state(config, sources)
    return {
        "FDAWATCH_SETTINGS": config,
        "FDAWATCH_SOURCES": sources,
        "FDAWATCH_VALIDATORS": state.validators,
        "FDAWATCH_BACKOFF": state.backoff,
        "FDAWATCH_KNOWN_DOCUMENTS": state.known,
        "FDAWATCH_DOCUMENTS": state.documents,
        "USER_AGENT": config.user_agent,
        "DOWNLOAD_DELAY": config.crawl_delay,
        "CONCURRENT_REQUESTS_PER_DOMAIN": config.concurrency_per_host,
        "CONCURRENT_REQUESTS": max(16, config.concurrency_per_host),
        "ROBOTSTXT_OBEY": config.obey_robots,
        "DOWNLOAD_TIMEOUT": config.crawl_timeout,
        "RETRY_TIMES": config.retry_times,
        # Scrapy re-reads each callback's source with `inspect` + `ast` on every response (its
        # cache is keyed by the bound method, new each time): ~1 ms a page, for a lint warning.
        "WARN_ON_GENERATOR_RETURN_VALUE": False,
        # The history pipeline is synchronous, so parallel item "workers" gain nothing; Scrapy
        # starts CONCURRENT_ITEMS asyncio tasks per response (100 by default), which cost more
        # than the crawl itself when most answers are 304s. One keeps the items in order, too.
        "CONCURRENT_ITEMS": 1,
    }


class FdawatchAddon:
    """Loads fdawatch's configuration into the crawler settings and adds the history pipeline."""

    def update_settings(self, settings: BaseSettings) -> None:
        quiet_referer_notice()
        config = settings.get("FDAWATCH_SETTINGS") or load_settings()
        state = None
        if settings.get("FDAWATCH_VALIDATORS") is not None:  # set by `crawl_sources`
            state = CrawlState(
                settings.getdict("FDAWATCH_VALIDATORS"),
                settings.getdict("FDAWATCH_BACKOFF"),
                settings.getdict("FDAWATCH_KNOWN_DOCUMENTS"),
                settings.getdict("FDAWATCH_DOCUMENTS"),
            )
        given = scrapy_settings(config, settings.get("FDAWATCH_SOURCES") or None, state)
        for name, value in given.items():
            settings.set(name, value, priority=PRIORITY)
        if settings.get("FDAWATCH_CHECK") is not None:  # `sources --check`: record nothing
            settings["ITEM_PIPELINES"]["monitor.runtime.preflight.CheckPipeline"] = 300
        else:
            settings["ITEM_PIPELINES"]["monitor.runtime.pipeline.HistoryPipeline"] = 300
