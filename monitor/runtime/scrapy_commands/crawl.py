"""`scrapy crawl SPIDER -a source=ID`: Scrapy's command, with fdawatch's input checked first.

Scrapy only meets a bad `-a source=` inside the running crawl: it logs two tracebacks, closes the
spider with `start_error` and exits 0. Here the sources file, the settings and the `source`
argument are checked before any crawler starts, and a problem is one line and exit code 2, as
`fdawatch crawl` reports the same mistake. Scrapyd runs `scrapy crawl` too, so its jobs fail the
same way.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from scrapy.commands.crawl import Command as ScrapyCrawl
from scrapy.spiderloader import get_spider_loader

from monitor.config import load_settings
from monitor.errors import FdawatchError
from monitor.sources import load_sources

if TYPE_CHECKING:
    import argparse

EXIT_USAGE = 2


class Command(ScrapyCrawl):
    def process_options(self, args: list[str], opts: argparse.Namespace) -> None:
        super().process_options(args, opts)
        try:
            check_source_argument(args[0] if args else "", opts.spargs or {}, self.settings)
        except (FdawatchError, ValueError) as error:
            print(f"scrapy crawl: error: {' '.join(str(error).split())}", file=sys.stderr)
            sys.exit(EXIT_USAGE)


def check_source_argument(spider_name: str, spider_args: dict[str, str], settings: object) -> None:
    """Raise the error the crawl would meet for `-a source=`, before any crawler exists.

    Spiders without a `kind` (none today) and unknown spider names are left to Scrapy.
    """
    from spiders.base import select_sources

    try:
        spider = get_spider_loader(settings).load(spider_name)  # type: ignore[arg-type]
    except KeyError:
        return
    kind = getattr(spider, "kind", None)
    if kind is None:
        return
    sources = load_sources(load_settings().sources_path)
    select_sources(sources, spider_args.get("source", "all"), kind)
