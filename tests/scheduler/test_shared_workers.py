"""Shared mode (`[scheduler] shared = true`): daemons on one database split the sources."""

from __future__ import annotations

import threading
from dataclasses import replace

from sqlalchemy import Engine

from db import leases
from monitor.runtime.claims import lease_name
from monitor.runtime.scheduler import LEASE_NAME, SchedulerLease, Watcher, run_once
from tests.conftest import make_source
from tests.scheduler.test_scheduler import SETTINGS, Recorder, sources

SHARED = replace(SETTINGS, scheduler_shared=True)


def worker(engine: Engine, name: str, crawl: Recorder, *items: object) -> Watcher:
    lease = SchedulerLease(engine, holder=name)
    return Watcher(engine, SHARED, sources(*items), crawl=crawl, batch_window=0, lease=lease)


def test_two_shared_workers_never_crawl_one_source_at_once(shared_engine: Engine) -> None:
    engine = shared_engine
    crawl = Recorder(seconds=0.5)
    source = make_source(id="rems", interval="1h")
    workers = [worker(engine, f"host-{n}:1", crawl, source) for n in (1, 2)]
    for each in workers:
        each.mark_due("rems")
    threads = [threading.Thread(target=w.run_due) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert crawl.batches == [("rems",)]  # the second worker found it claimed
    assert leases.holder_of(engine, lease_name("rems"), workers[0].clock()) is None  # released


def test_shared_once_passes_split_the_sources_and_take_no_database_lock(
    shared_engine: Engine,
) -> None:
    engine = shared_engine
    crawl = Recorder(seconds=0.3)
    a, b = make_source(id="a"), make_source(id="b")
    first = worker(engine, "host-1:1", crawl, a, b)
    leases.acquire(engine, lease_name("b"), "host-9:9", first.crawl_timeout_delta(), first.clock())
    run_once(first, lock_timeout=0)
    assert crawl.batches == [("a",)]  # b is claimed by a live worker elsewhere
    assert leases.holder_of(engine, LEASE_NAME, first.clock()) is None
