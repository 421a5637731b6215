"""Give the C heap's free pages back to the system after the daemon's bursts of work.

A long-running `fdawatch run` renders alerts from decompressed page bodies (hundreds of KB each)
and reads crawl output; glibc keeps the memory those buffers freed inside its heaps, scattered
between live blocks, so the daemon's resident size crept up by ~2 MB an hour while the memory in
use stayed flat (the soak of 6 December 2026, issue 21: heap 24.3 → 27.0 MB, in use 20.0 →
20.4 MB over 14 minutes). `malloc_trim(0)` returns every whole free page of every arena to the
kernel. Elsewhere than glibc it is absent and nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from collections.abc import Callable
from functools import cache

log = logging.getLogger("fdawatch.scheduler")


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, or None (musl, macOS, Windows)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        function = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_size_t]
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


def release_free_memory() -> bool:
    """Return the heap's free pages to the system; False where the C library cannot."""
    trim = _malloc_trim()
    if trim is None:
        return False
    try:
        trim(0)
    except OSError as error:  # never let housekeeping stop the daemon
        log.debug("malloc_trim failed: %s", error)
        return False
    return True
