"""The crawl itself: one Scrapy reactor for every selected source, in this process or a child.

Scrapy's Twisted reactor cannot be restarted, so a process crawls at most once. The scheduler and
the demo crawl many times, so `monitor.runtime.crawl.run_crawl` starts this module as a fresh child
process for each crawl; a single `fdawatch crawl` invocation crawls once, so it calls
`crawl_sources` in its own process and saves a second interpreter start and import of Scrapy,
SQLAlchemy and the migrations. One reactor covers all the selected sources: the page and feed
spiders share one engine.

Usage: python -m monitor.runtime.crawl_process --run-id N SOURCE_ID [SOURCE_ID …]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
from collections import deque
from collections.abc import Sequence
from typing import Any

from monitor.config import Settings, load_settings
from monitor.runtime.collector import collect_less
from monitor.sources import SourceConfig, SourceTable, load_sources, select

#: How many log lines an in-process crawl keeps for the "crawl crashed" message.
TAIL_LINES = 15
#: Seconds a timed-out in-process crawl gets to finish the requests in flight.
STOP_GRACE = 5.0


class TailHandler(logging.Handler):
    """Keeps the last log lines of an in-process crawl instead of printing them.

    A child's stderr was captured and only shown when the crawl failed; the in-process crawl keeps
    that behaviour, so `fdawatch crawl` prints its table, not Scrapy's warnings.
    """

    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.lines: deque[str] = deque(maxlen=TAIL_LINES)
        self.setFormatter(logging.Formatter("%(asctime)s [%(name)s] %(levelname)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.extend(self.format(record).splitlines()[-TAIL_LINES:])
        except Exception:  # a broken log record must never stop the crawl
            self.handleError(record)

    def tail(self) -> str:
        return "\n".join(self.lines)


def crawl_sources(
    config: Settings,
    sources: Sequence[SourceConfig],
    run_id: int,
    *,
    log_level: str = "WARNING",
    timeout: float | None = None,
    tail: TailHandler | None = None,
    check: Any = None,
) -> bool:
    """Crawl `sources` once in this process; False when `timeout` stopped it first.

    Only call it once per process (the reactor cannot restart). With `tail`, Scrapy's log goes to
    that handler instead of stderr. With `check` (a `monitor.runtime.preflight.Collected`), nothing
    is read from or written to the history: each source's fetch record is collected there instead.
    """
    # Imported here, near the bottom of the stack: Scrapy's deprecation shims in this module call
    # `inspect.stack()`, whose cost grows with the depth of the importing stack.
    import scrapy.core.downloader.contextfactory  # noqa: F401
    from scrapy.crawler import CrawlerProcess
    from scrapy.settings import Settings as ScrapySettings

    from monitor.runtime.scrapy_addon import CrawlState, load_crawl_state

    settings = ScrapySettings()
    settings.setmodule("spiders.settings", priority="project")
    settings.set("FDAWATCH_SETTINGS", config, priority="cmdline")
    settings.set("FDAWATCH_RUN_ID", run_id, priority="cmdline")
    # Read once here for every spider of the crawl, instead of once per spider by the add-on.
    chosen = SourceTable((source.id, source) for source in sources)
    settings.set("FDAWATCH_SOURCES", chosen, priority="cmdline")
    if check is None:
        state = load_crawl_state(config, chosen)
    else:  # one plain request per source, whatever the history says
        state = CrawlState()
        settings.set("FDAWATCH_CHECK", check, priority="cmdline")
    settings.set("FDAWATCH_VALIDATORS", state.validators, priority="cmdline")
    settings.set("FDAWATCH_BACKOFF", state.backoff, priority="cmdline")
    settings.set("FDAWATCH_KNOWN_DOCUMENTS", state.known, priority="cmdline")
    settings.set("FDAWATCH_DOCUMENTS", state.documents, priority="cmdline")
    settings.set("LOG_LEVEL", log_level, priority="cmdline")
    settings.set("LOG_INSTALL_ROOT_HANDLER", tail is None, priority="cmdline")
    if tail is not None:
        tail.setLevel(log_level)
        logging.getLogger().addHandler(tail)
    process = CrawlerProcess(settings)
    # Scrapy sets its own logger to DEBUG, so every request builds a "Crawled (304)" record that
    # the handlers then drop; at the wanted level the record is never made.
    scrapy_logger = logging.getLogger("scrapy")
    scrapy_level = scrapy_logger.level
    scrapy_logger.setLevel(log_level)
    by_kind: dict[str, list[str]] = {}
    for source in sources:
        by_kind.setdefault(source.kind, []).append(source.id)
    for kind, ids in by_kind.items():  # each kind's spider is named after the kind
        process.crawl(kind, source=",".join(ids))
    # Scrapy takes over SIGINT / SIGTERM for a graceful stop; give them back afterwards, so
    # Ctrl-C still works in whatever this process does after the crawl (sending the alerts).
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    timed_out = False
    if timeout is not None:
        from twisted.internet import reactor

        def stop() -> None:
            """Stop gracefully; past STOP_GRACE seconds, stop the reactor under the crawl."""
            nonlocal timed_out
            timed_out = True
            process.stop()
            reactor.callLater(STOP_GRACE, halt)  # type: ignore[attr-defined]

        def halt() -> None:
            if reactor.running:  # type: ignore[attr-defined]
                reactor.stop()  # type: ignore[attr-defined]

        call = reactor.callLater(timeout, stop)  # type: ignore[attr-defined]
    try:
        process.start()
    finally:
        for sig, handler in handlers.items():
            with contextlib.suppress(ValueError, TypeError):  # not the main thread / not Python's
                signal.signal(sig, handler)
        if timeout is not None and call.active():
            call.cancel()
        if tail is not None:
            logging.getLogger().removeHandler(tail)
        scrapy_logger.setLevel(scrapy_level)
    return not timed_out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monitor.runtime.crawl_process")
    parser.add_argument("--run-id", type=int, required=True)
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument("source_ids", nargs="+")
    args = parser.parse_args(argv)
    collect_less()  # one crawl, then exit (the daemon's own process keeps the default)
    config = load_settings()
    chosen = select(load_sources(config.sources_path), args.source_ids)
    crawl_sources(config, chosen, args.run_id, log_level=args.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
