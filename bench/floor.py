"""`python -m bench.floor`: what the design card's fetch layer costs before fdawatch does anything.

Issue 7 asks for a changed pass 4× faster than urlwatch's. This measures the floor under that
figure on the same fixture as `make bench`: a fresh interpreter that only imports what
`fdawatch crawl` imports, and a bare Scrapy spider (no database, no parsing, no pipeline) that
fetches every page and feed of the fixture once (all 200) and then again with the validators
it got (all 304), with fdawatch's Scrapy components and the fixture's concurrency. Each step is
its own process (the reactor cannot restart); the JSON goes to `bench/results/floor-*.json`.
Compare its seconds with urlwatch's changed pass from `make bench PEERS=1` on the same day.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.fixture import Faults, FixtureServer, Site
from bench.run import machine, measured

#: What `fdawatch crawl --all` imports before its first request (monitor.cli pulls in the rest).
IMPORTS = (
    "import monitor.cli, monitor.crawl, monitor.crawl_process, monitor.history, scrapy.crawler"
)

SPIDER = '''
import json, logging, sys
import scrapy
from scrapy.crawler import CrawlerProcess
from scrapy.utils.project import get_project_settings

urls, validators_path, write = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3] == "1"
known = {} if write else json.load(open(validators_path))
seen = {}


class Bare(scrapy.Spider):
    """Fetch each URL once; keep the ETag; nothing else."""

    name = "bare"
    custom_settings = {"HTTPERROR_ALLOW_ALL": True}

    async def start(self):
        for url in urls:
            headers = {"If-None-Match": known[url]} if url in known else {}
            yield scrapy.Request(url, headers=headers, dont_filter=True)

    def parse(self, response):
        seen[response.url] = response.headers.get("ETag", b"").decode()
        return None


settings = get_project_settings()
settings.set("ADDONS", {}, priority="cmdline")  # no fdawatch add-on: no sources, no database
settings.set("SPIDER_MODULES", [], priority="cmdline")
settings.set("ITEM_PIPELINES", {}, priority="cmdline")
settings.set("ROBOTSTXT_OBEY", False, priority="cmdline")
settings.set("DOWNLOAD_DELAY", 0, priority="cmdline")
settings.set("CONCURRENT_REQUESTS", 16, priority="cmdline")
settings.set("CONCURRENT_REQUESTS_PER_DOMAIN", 16, priority="cmdline")
settings.set("LOG_LEVEL", "WARNING", priority="cmdline")
settings.set("WARN_ON_GENERATOR_RETURN_VALUE", False, priority="cmdline")  # as fdawatch's add-on
process = CrawlerProcess(settings)
logging.getLogger("scrapy").setLevel(logging.WARNING)  # as fdawatch: no DEBUG record per request
process.crawl(Bare)
process.start()
if write:
    json.dump(seen, open(validators_path, "w"))
print(len(seen))
'''


def run(args: argparse.Namespace) -> dict[str, Any]:
    site = Site(pages=args.pages, feeds=args.feeds, seed=args.seed)
    server = FixtureServer(site, Faults())
    server.start()
    work = Path(tempfile.mkdtemp(prefix="fdawatch-floor-"))
    try:
        server.set_version(1)
        for number in range(args.pages):
            site.page(number, 1, server.base)
        for number in range(args.feeds):
            site.feed(number, 1, server.base)
        index = server.index()
        urls = [*index["pages"], *index["feeds"]]
        (work / "urls.json").write_text(json.dumps(urls))
        (work / "spider.py").write_text(SPIDER)
        checkout = Path(args.fdawatch_dir).resolve()
        venv_python = checkout / ".venv" / "bin" / "python"
        python = str(venv_python) if venv_python.exists() else sys.executable
        steps: dict[str, Any] = {}
        commands = {
            "interpreter_only": [python, "-c", "pass"],
            "imports": [python, "-c", IMPORTS],
            "bare_scrapy_200": [python, "spider.py", "urls.json", "validators.json", "1"],
            "bare_scrapy_304": [python, "spider.py", "urls.json", "validators.json", "0"],
        }
        for name, command in commands.items():
            server.reset_stats()
            result = measured(command, _env(checkout), work, work / f"{name}.log")
            result["http"] = server.reset_stats()
            if result["rc"] != 0:
                raise SystemExit(f"{name} failed: see {work / (name + '.log')}")
            steps[name] = result
            print(
                f"{name}: {result['wall_s']} s wall, {result['cpu_s']} s CPU, "
                f"{result['peak_rss_mb']} MB, HTTP {result['http']}",
                file=sys.stderr,
            )
        return {
            "params": {"pages": args.pages, "feeds": args.feeds, "seed": args.seed},
            "machine": machine(),
            "steps": steps,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
    finally:
        server.shutdown()
        server.server_close()


def _env(checkout: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(checkout), "SCRAPY_SETTINGS_MODULE": "spiders.settings"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__)
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--feeds", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fdawatch-dir", default=".", help="checkout whose .venv to measure")
    parser.add_argument("--out", default="bench/results", help="folder for the JSON result")
    args = parser.parse_args(argv)
    result = run(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = f"floor-N{args.pages}-M{args.feeds}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    (out / name).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
