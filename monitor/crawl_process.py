"""The crawl child process: one Scrapy reactor for every selected source, then exit.

Scrapy's Twisted reactor cannot be restarted, so every crawl runs in a fresh process started by
`monitor.crawl.run_crawl` (the CLI, the scheduler and the demo all go through it). One process
covers all the selected sources: the page and feed spiders share one reactor and one engine.

Usage: python -m monitor.crawl_process --run-id N SOURCE_ID [SOURCE_ID …]
"""

from __future__ import annotations

import argparse

from scrapy.crawler import CrawlerProcess
from scrapy.settings import Settings as ScrapySettings

from monitor.config import load_settings
from monitor.sources import load_sources, select


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monitor.crawl_process")
    parser.add_argument("--run-id", type=int, required=True)
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument("source_ids", nargs="+")
    args = parser.parse_args(argv)
    config = load_settings()
    chosen = select(load_sources(config.sources_path), args.source_ids)
    settings = ScrapySettings()
    settings.setmodule("spiders.settings", priority="project")
    settings.set("FDAWATCH_SETTINGS", config, priority="cmdline")
    settings.set("FDAWATCH_RUN_ID", args.run_id, priority="cmdline")
    settings.set("LOG_LEVEL", args.log_level, priority="cmdline")
    settings.set("LOG_INSTALL_ROOT_HANDLER", True, priority="cmdline")
    process = CrawlerProcess(settings)
    by_kind: dict[str, list[str]] = {}
    for source in chosen:
        by_kind.setdefault(source.kind, []).append(source.id)
    for kind, ids in by_kind.items():  # each kind's spider is named after the kind
        process.crawl(kind, source=",".join(ids))
    process.start()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
