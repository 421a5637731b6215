"""One worker of the several-workers test, as a deployment would run it on each machine.

Claims due sources (`monitor.runtime.claims`), crawls them in a child process
(`monitor.runtime.crawl.run_crawl`), gives the claims back, drains the outbox; again and again until
the stop file appears. Prints one JSON line per crawl, with the moments the claim was held, so the
test can check that no two workers ever crawled one source at the same time.

Usage: python -m tests.multi.worker NAME STOP_FILE
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from db.engine import make_engine
from monitor.config import load_settings
from monitor.delivery.alerts import send_pending
from monitor.runtime.claims import claim_sources, release_sources
from monitor.runtime.crawl import run_crawl
from monitor.sources import load_sources

LEASE = timedelta(seconds=60)  # longer than CRAWL_TIMEOUT: a live worker never loses a claim
CRAWL_TIMEOUT = 45.0
LIMIT = 2  # a worker takes at most two sources a turn, so the others get the rest


def main(argv: list[str]) -> int:
    name, stop_file = argv
    settings = load_settings()
    # Every source due every 2 s, so workers compete for them again and again. Only in memory:
    # sources.toml refuses intervals under 1m (politeness to FDA's hosts).
    sources = {
        source_id: replace(source, interval="2s")
        for source_id, source in load_sources(settings.sources_path).items()
    }
    engine = make_engine(settings.database_url)
    while not Path(stop_file).exists():
        claimed = claim_sources(
            engine, name, list(sources.values()), datetime.now(UTC), LEASE, limit=LIMIT
        )
        if claimed:
            start = time.time()
            try:
                summary = run_crawl(engine, settings, claimed, timeout=CRAWL_TIMEOUT)
                status = summary.status
            finally:
                end = time.time()
                release_sources(engine, name, claimed)
            line = {"worker": name, "sources": [s.id for s in claimed], "start": start, "end": end}
            print(json.dumps({**line, "status": status}), flush=True)
        send_pending(engine, settings, sources, datetime.now(UTC))
        time.sleep(0.05)
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
