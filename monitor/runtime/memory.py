"""Hold down a long-running daemon's C heap: one malloc arena, free pages returned.

`fdawatch run` renders alerts from decompressed page bodies and parsed HTML on whichever of its
scheduler threads runs the send, and glibc gives each new thread a malloc arena of its own (up
to eight per core). Each arena keeps the memory its thread once freed, so the daemon's resident
size rose in steps whenever a send landed on a thread that had not rendered yet, while the memory
in use stayed flat (the soaks of 6 December 2026, issue 21, sampled with `bench/heap_probe.py`:
heap 24.3 → 27.0 MB, in use 20.0 → 20.4 MB over 14 minutes). `settle_allocator` keeps the daemon
to one arena (its threads mostly sleep, so they hardly contend for it), and `release_free_memory`
(`malloc_trim(0)`) hands every whole free page back to the kernel after each send. Elsewhere than
glibc both are absent and nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from collections.abc import Callable
from functools import cache

log = logging.getLogger("fdawatch.scheduler")

M_ARENA_MAX = -8  # glibc's mallopt parameter number


@cache
def _glibc(name: str) -> Callable[..., int] | None:
    """A glibc allocator function, or None (musl, macOS, Windows)."""
    library = ctypes.util.find_library("c")
    if library is None:
        return None
    try:
        function = getattr(ctypes.CDLL(library), name)
    except (OSError, AttributeError):
        return None
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


def settle_allocator() -> bool:
    """One malloc arena for every thread started from now on (call before starting them)."""
    mallopt = _glibc("mallopt")
    if mallopt is None:
        return False
    return bool(mallopt(ctypes.c_int(M_ARENA_MAX), ctypes.c_int(1)))


def release_free_memory() -> bool:
    """Return the heap's free pages to the system; False where the C library cannot."""
    trim = _glibc("malloc_trim")
    if trim is None:
        return False
    try:
        trim(ctypes.c_size_t(0))
    except OSError as error:  # never let housekeeping stop the daemon
        log.debug("malloc_trim failed: %s", error)
        return False
    return True
