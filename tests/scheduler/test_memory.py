"""The daemon's C heap does not creep: one malloc arena, free pages handed back (issue 21).

A soak of `fdawatch run` saw the C heap grow by 2.7 MB in 14 minutes while the memory in use
stayed flat: each scheduler thread that rendered an alert kept what it freed in an arena of its
own. The first tests show what `settle_allocator` and `release_free_memory` do (the allocator
test runs in a child process, so this one keeps its own settings); the others that the daemon
settles the allocator before its threads start and that every send ends with a trim.
"""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from monitor.delivery.alerts import SendReport
from monitor.runtime import deliverers as deliverers_module
from monitor.runtime import scheduler as scheduler_module
from monitor.runtime.deliverers import Deliverers
from monitor.runtime.memory import release_free_memory
from monitor.runtime.scheduler import LEASE_NAME, SchedulerLease, Watcher
from tests.scheduler.test_scheduler import SETTINGS, sources
from tests.support.sources import make_source

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def resident_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.mark.skipif(not GLIBC, reason="malloc_trim is glibc's")
def test_freed_blocks_between_live_ones_go_back_to_the_system() -> None:
    # 48 MB of 48 KB blocks (under glibc's mmap threshold, so inside the heap), then every block
    # but one in eight freed: the survivors pin the heap, so free() alone returns nothing.
    blocks = [bytearray(48 * 1024) for _ in range(1024)]
    survivors = blocks[::8]
    del blocks
    before = resident_mb()
    assert release_free_memory() is True
    after = resident_mb()
    assert before - after > 20, f"resident {before:.1f} MB → {after:.1f} MB after the trim"
    assert len(survivors) == 128


ARENAS = textwrap.dedent("""
    import ctypes, sys, threading
    from monitor.runtime.memory import settle_allocator
    if sys.argv[1] == "settle":
        assert settle_allocator()
    barrier = threading.Barrier(6)
    def work():
        kept = [bytearray(4096) for _ in range(200)]
        barrier.wait()
    threads = [threading.Thread(target=work) for _ in range(5)]
    for thread in threads:
        thread.start()
    barrier.wait()
    for thread in threads:
        thread.join()
    ctypes.CDLL("libc.so.6").malloc_stats()  # one "Arena N:" block per arena, on stderr
""")


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
@pytest.mark.parametrize(("mode", "arenas"), [("plain", 6), ("settle", 1)])
def test_a_settled_allocator_keeps_every_thread_in_one_arena(mode: str, arenas: int) -> None:
    # Five threads allocating at once: glibc gives each an arena of its own, unless settled.
    child = subprocess.run(
        [sys.executable, "-c", ARENAS, mode], capture_output=True, text=True, check=True
    )
    assert child.stderr.count("\nArena ") + child.stderr.startswith("Arena ") == arenas


def test_the_daemon_settles_the_allocator_and_sqlite_before_its_threads_start(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    order: list[str] = []
    monkeypatch.setattr(scheduler_module, "settle_allocator", lambda: order.append("settle"))
    monkeypatch.setattr(scheduler_module, "keep_caches_small", lambda _: order.append("caches"))
    watcher = Watcher(engine, SETTINGS, sources(make_source()), crawl=lambda batch: None)
    monkeypatch.setattr(watcher, "start_runner", lambda: order.append("threads"))
    watcher.stop()  # asked before it started: serve() ends right after its start-up,
    monkeypatch.setattr(watcher.stopping, "is_set", lambda: False)  # which it still goes through
    monkeypatch.setattr(scheduler_module, "wait_awake", lambda event: order.append("wait"))
    scheduler_module.serve(watcher)
    assert order[:3] == ["settle", "caches", "threads"]


def deliverers(engine: Engine, trims: list[int]) -> Deliverers:
    return Deliverers(
        engine,
        SETTINGS,
        sources(),
        SchedulerLease(engine, LEASE_NAME),
        lambda: datetime(2026, 12, 6, tzinfo=UTC),
        trim=lambda: trims.append(1),
    )


def test_every_send_ends_by_releasing_free_memory(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deliverers_module, "send_pending", lambda *a, **k: SendReport(via="test"))
    trims: list[int] = []
    sender = deliverers(engine, trims)
    sender.send_alerts()
    sender.send_alerts()
    assert trims == [1, 1]


def test_a_failed_send_still_releases_free_memory(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> SendReport:
        raise RuntimeError("mail server gone")

    monkeypatch.setattr(deliverers_module, "send_pending", broken)
    trims: list[int] = []
    assert deliverers(engine, trims).send_alerts() is None
    assert trims == [1]
