"""`python -m bench.heap_probe run`: `fdawatch run` that writes where its memory is, every minute.

The soak sees the daemon's resident size from outside; this says what it is made of, from inside:
glibc's heap (`mallinfo2`: obtained from the system, in use, free inside it), SQLite's own
allocations (all of them, and per kind over the process's open connections: page cache, schema,
prepared statements), the number of Python objects. It is how the creep of issue 21 was told
apart from a leak — the heap grew faster than the memory in use — and how the fix was checked.
`make soak SOAK_ARGS=--heap-probe` runs the daemon through it and leaves `heap.jsonl` in the
soak's work folder (with `--keep`). Linux with glibc only; nothing here is timed or asserted.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import sqlite3
import sys
import threading
import time
from pathlib import Path

FIELDS = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
          "fordblks", "keepcost")  # fmt: skip
EVERY_SECONDS = 60.0


class Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in FIELDS]


def resident_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


#: `sqlite3_db_status` verbs: what one connection holds, by kind.
DB_STATUS = {"sqlite_cache_mb": 1, "sqlite_schema_mb": 2, "sqlite_statements_mb": 3}


def connection_handles(objects: list[object]) -> list[int]:
    """The `sqlite3 *` of every open `sqlite3.Connection` among `objects`.

    CPython's connection object starts with the handle right after its object header (seen on 3.11);
    a closed connection's is NULL.
    """
    handles = []
    for obj in objects:
        if type(obj) is sqlite3.Connection:
            handle = ctypes.c_void_p.from_address(id(obj) + object.__basicsize__).value
            if handle:
                handles.append(handle)
    return handles


def per_kind(sqlite: ctypes.CDLL, handles: list[int]) -> dict[str, float]:
    totals = {}
    for key, verb in DB_STATUS.items():
        used = 0
        for handle in handles:
            current, highest = ctypes.c_int(), ctypes.c_int()
            sqlite.sqlite3_db_status(
                ctypes.c_void_p(handle), verb, ctypes.byref(current), ctypes.byref(highest), 0
            )
            used += current.value
        totals[key] = round(used / 1e6, 2)
    return totals


def sample(libc: ctypes.CDLL, sqlite: ctypes.CDLL, started: float) -> dict[str, float]:
    heap = libc.mallinfo2()
    objects = gc.get_objects()
    handles = connection_handles(objects)
    return {
        "min": round((time.time() - started) / 60, 2),
        "rss_mb": round(resident_mb(), 2),
        "heap_mb": round(heap.arena / 1e6, 2),  # obtained from the system (sbrk + arenas)
        "heap_in_use_mb": round(heap.uordblks / 1e6, 2),
        "heap_free_mb": round(heap.fordblks / 1e6, 2),
        "mmapped_mb": round(heap.hblkhd / 1e6, 2),
        "sqlite_mb": round(sqlite.sqlite3_memory_used() / 1e6, 2),
        "sqlite_connections": len(handles),
        **per_kind(sqlite, handles),
        "python_objects": len(objects),
    }


def start(out: Path) -> None:
    """Sample every minute on a daemon thread (it dies with the process)."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = Mallinfo2
    sqlite = ctypes.CDLL("libsqlite3.so.0")
    sqlite.sqlite3_memory_used.restype = ctypes.c_int64
    sqlite.sqlite3_db_status.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p,
                                         ctypes.c_void_p, ctypes.c_int]  # fmt: skip
    started = time.time()

    def loop() -> None:
        while True:
            time.sleep(EVERY_SECONDS)
            with out.open("a") as file:
                file.write(json.dumps(sample(libc, sqlite, started)) + "\n")

    threading.Thread(target=loop, name="heap-probe", daemon=True).start()


def main() -> None:
    from monitor.cli import main as fdawatch

    if sys.argv[1:2] == ["run"]:
        start(Path(os.environ.get("BENCH_HEAP_PROBE", "heap.jsonl")))
    fdawatch()


if __name__ == "__main__":
    main()
