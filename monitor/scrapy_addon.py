"""A Scrapy add-on that plugs fdawatch's configuration into every crawl.

`spiders/settings.py` enables it, so `scrapy crawl page -a source=<id>` and `fdawatch crawl`
behave the same: sources from sources.toml, politeness from fdawatch.toml and the environment,
conditional-GET validators from the history, the keys of the documents already stored (for the
kinds that fetch only what is new), and the history pipeline.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, select

from db.engine import open_database
from db.models import Document, Source
from monitor.config import Settings, load_settings
from monitor.sources import KNOWN_KEYS_KINDS, SourceConfig, SourceTable, load_sources

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

PRIORITY = "project"  # above the project's static defaults, below `-s` on the command line


def load_validators(settings: Settings) -> dict[str, dict[str, str | None]]:
    """ETag / Last-Modified per source, as stored after the last fully recorded 200."""
    engine = open_database(settings.database_url)
    try:
        with Session(engine) as session:
            rows = session.exec(select(Source)).all()
            return {
                row.id: {"etag": row.etag, "last_modified": row.last_modified}
                for row in rows
                if row.etag or row.last_modified
            }
    finally:
        engine.dispose()


def load_known_documents(settings: Settings, sources: Mapping[str, Any]) -> dict[str, list[str]]:
    """The stored document keys of each source whose kind fetches only new documents.

    Read-only and small (one key per warning letter ever stored); sources of other kinds are not
    queried at all, so a crawl without such sources never opens the database for this.
    """
    wanted = sorted(
        source_id
        for source_id, value in sources.items()
        if SourceConfig.coerce(value).kind in KNOWN_KEYS_KINDS
    )
    if not wanted:
        return {}
    known: dict[str, list[str]] = {source_id: [] for source_id in wanted}
    engine = open_database(settings.database_url)
    try:
        with Session(engine) as session:
            query = select(Document.source_id, Document.doc_key).where(
                col(Document.source_id).in_(wanted)
            )
            for source_id, key in session.exec(query):
                known[source_id].append(key)
    finally:
        engine.dispose()
    return known


def scrapy_settings(
    config: Settings,
    sources: Mapping[str, Any] | None = None,
    validators: dict[str, dict[str, str | None]] | None = None,
    known: dict[str, list[str]] | None = None,
) -> dict[str, object]:
    """The Scrapy settings that follow from fdawatch's own settings.

    `sources`, `validators` and `known` (stored document keys) are read from sources.toml and
    the database unless given (a crawl of several spiders reads them once, not once per spider).
    """
    if sources is None:
        sources = SourceTable(load_sources(config.sources_path))
    return {
        "FDAWATCH_SETTINGS": config,
        "FDAWATCH_SOURCES": sources,
        "FDAWATCH_VALIDATORS": load_validators(config) if validators is None else validators,
        "FDAWATCH_KNOWN_DOCUMENTS": (
            load_known_documents(config, sources) if known is None else known
        ),
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
        config = settings.get("FDAWATCH_SETTINGS") or load_settings()
        given = scrapy_settings(
            config,
            sources=settings.get("FDAWATCH_SOURCES") or None,
            validators=settings.get("FDAWATCH_VALIDATORS"),
            known=settings.get("FDAWATCH_KNOWN_DOCUMENTS"),
        )
        for name, value in given.items():
            settings.set(name, value, priority=PRIORITY)
        settings["ITEM_PIPELINES"]["monitor.pipeline.HistoryPipeline"] = 300
