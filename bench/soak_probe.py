"""The soak's view of the daemon from outside: /proc samples of it and its process tree.

Every `every` seconds: the daemon's RSS, open fds, threads and CPU time; the tree's (daemon plus
crawl children) process count and summed RSS; the database and WAL file sizes. Every `scan_every`
seconds (shorter than a crawl child lives): which children exist, so process starts are counted
from outside too, beside the daemon's own `crawlrun` rows. Linux only; stdlib only.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")
MB = 2**20


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    rss: int  # bytes
    cpu_s: float  # user + system
    children_cpu_s: float  # user + system of the children it has waited for
    threads: int


def read_proc(pid: int) -> Proc | None:
    """One process from /proc/<pid>/stat, or None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return Proc(
        pid=pid,
        ppid=int(fields[1]),
        rss=int(fields[21]) * PAGE,
        cpu_s=(int(fields[11]) + int(fields[12])) / TICKS,
        children_cpu_s=(int(fields[13]) + int(fields[14])) / TICKS,
        threads=int(fields[17]),
    )


def descendants(root: int) -> list[Proc]:
    """`root`'s children, grandchildren, … (not `root`) from one pass over /proc."""
    table: dict[int, list[Proc]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (proc := read_proc(int(entry.name))):
            table.setdefault(proc.ppid, []).append(proc)
    found, todo = [], [root]
    while todo:
        for child in table.get(todo.pop(), []):
            found.append(child)
            todo.append(child.pid)
    return found


def open_fds(pid: int) -> int | None:
    try:
        return sum(1 for _ in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return None


def file_kb(path: Path) -> float | None:
    try:
        return round(path.stat().st_size / 1024, 1)
    except OSError:
        return None


class Probe(threading.Thread):
    """Samples `pid` until stopped; writes one JSON line per sample to `out`."""

    def __init__(
        self, pid: int, database: Path, out: TextIO, every: float = 5.0, scan_every: float = 1.0
    ) -> None:
        super().__init__(name="soak-probe", daemon=True)
        self.pid, self.database, self.out = pid, database, out
        self.every, self.scan_every = every, scan_every
        self.started = time.time()
        self.children: dict[int, dict[str, float]] = {}  # pid → first / last seen
        self.samples = 0
        self.done = threading.Event()

    def run(self) -> None:
        next_sample = time.time()
        while not self.done.is_set():
            now = time.time()
            tree = self._scan(now)
            if now >= next_sample:
                self._sample(now, tree)
                next_sample += self.every
            self.done.wait(self.scan_every)

    def stop(self) -> None:
        self.done.set()
        self.join(10)

    def _scan(self, now: float) -> list[Proc]:
        tree = descendants(self.pid)
        for child in tree:
            seen = self.children.setdefault(child.pid, {"first": now, "last": now})
            seen["last"] = now
        return tree

    def _sample(self, now: float, tree: list[Proc]) -> None:
        daemon = read_proc(self.pid)
        if daemon is None:
            return
        wal = self.database.with_name(self.database.name + "-wal")
        line: dict[str, Any] = {
            "t": round(now, 3),
            "rss_mb": round(daemon.rss / MB, 2),
            "fds": open_fds(self.pid),
            "threads": daemon.threads,
            "cpu_s": round(daemon.cpu_s, 2),
            "tree_procs": 1 + len(tree),
            "tree_rss_mb": round((daemon.rss + sum(p.rss for p in tree)) / MB, 2),
            # everything the daemon and its crawl children used so far, the exited ones included
            "tree_cpu_s": round(
                daemon.cpu_s + daemon.children_cpu_s + sum(p.cpu_s for p in tree), 2
            ),
            "db_kb": file_kb(self.database),
            "wal_kb": file_kb(wal),
        }
        self.out.write(json.dumps(line) + "\n")
        self.out.flush()
        self.samples += 1
