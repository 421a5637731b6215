"""A Scrapy add-on that plugs fdawatch's configuration into every crawl.

`spiders/settings.py` enables it, so `scrapy crawl page -a source=<id>` and `fdawatch crawl`
behave the same: sources from sources.toml, politeness from fdawatch.toml and the environment,
conditional-GET validators from the history, and the history pipeline.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, select

from db.engine import open_database
from db.models import HostBackoff, Source
from monitor.config import Settings, load_settings
from monitor.sources import SourceTable, load_sources

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

PRIORITY = "project"  # above the project's static defaults, below `-s` on the command line


def load_crawl_state(
    settings: Settings,
) -> tuple[dict[str, dict[str, str | None]], dict[str, str]]:
    """What a crawl needs from the history, in one connection.

    * ETag / Last-Modified per source, as stored after the last fully recorded 200;
    * hosts a CDN refused recently, and until when they are left alone (ISO times).
    """
    engine = open_database(settings.database_url)
    try:
        with Session(engine) as session:
            rows = session.exec(select(Source)).all()
            validators = {
                row.id: {"etag": row.etag, "last_modified": row.last_modified}
                for row in rows
                if row.etag or row.last_modified
            }
            now = datetime.now(UTC)
            refused = session.exec(select(HostBackoff).where(col(HostBackoff.until) > now)).all()
            return validators, {row.host: row.until.isoformat() for row in refused}
    finally:
        engine.dispose()


def scrapy_settings(
    config: Settings,
    sources: Mapping[str, Any] | None = None,
    validators: dict[str, dict[str, str | None]] | None = None,
    backoff: dict[str, str] | None = None,
) -> dict[str, object]:
    """The Scrapy settings that follow from fdawatch's own settings.

    `sources` and `validators` are read from sources.toml and the database unless given (a crawl
    of several spiders reads them once, not once per spider).
    """
    if sources is None:
        sources = SourceTable(load_sources(config.sources_path))
    if validators is None or backoff is None:
        stored_validators, stored_backoff = load_crawl_state(config)
        validators = stored_validators if validators is None else validators
        backoff = stored_backoff if backoff is None else backoff
    return {
        "FDAWATCH_SETTINGS": config,
        "FDAWATCH_SOURCES": sources,
        "FDAWATCH_VALIDATORS": validators,
        "FDAWATCH_BACKOFF": backoff,
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
            backoff=settings.get("FDAWATCH_BACKOFF"),
        )
        for name, value in given.items():
            settings.set(name, value, priority=PRIORITY)
        if settings.get("FDAWATCH_CHECK") is not None:  # `sources --check`: record nothing
            settings["ITEM_PIPELINES"]["monitor.runtime.preflight.CheckPipeline"] = 300
        else:
            settings["ITEM_PIPELINES"]["monitor.runtime.pipeline.HistoryPipeline"] = 300
