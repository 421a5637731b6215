"""Waits for the daemon's main thread that keep waking up, so that a SIGTERM is handled at once.

Python runs signal handlers only in the main thread, and only while it runs bytecode. The kernel
hands a process's SIGTERM to any thread that does not block it: when a crawl or sender thread got
it, a main thread asleep in a plain `Event.wait()` or `Thread.join()` slept on, and the daemon
began to stop only at its next job, up to a minute later (issue 21). These waits wake every
`WAKE_SECONDS`, which is all the main thread needs to run a pending handler.
"""

from __future__ import annotations

import threading
import time

#: How late a signal that another thread received is handled, at most.
WAKE_SECONDS = 0.25


def wait_awake(event: threading.Event) -> None:
    """`event.wait()`, waking every WAKE_SECONDS."""
    while not event.wait(WAKE_SECONDS):
        pass


def join_awake(thread: threading.Thread, timeout: float | None = None) -> bool:
    """`thread.join(timeout)`, waking every WAKE_SECONDS; True when the thread has ended."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while thread.is_alive():
        left = WAKE_SECONDS if deadline is None else min(WAKE_SECONDS, deadline - time.monotonic())
        if left <= 0:
            return False
        thread.join(left)
    return True
