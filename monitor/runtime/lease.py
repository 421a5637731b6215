"""The "scheduler" lease: one daemon (or one `run --once` pass) crawls a database at a time.

The lease is a row in the database (`db/leases.py`) that names its holder (`host:pid`) and
expires `LEASE_TTL` after its last renewal, so a daemon that died hands over by itself. A live
daemon renews it every `HEARTBEAT_SECONDS` (the deliverers' heartbeat job) and before each batch.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from db import leases

log = logging.getLogger("fdawatch.scheduler")

LEASE_NAME = "scheduler"
LEASE_TTL = timedelta(minutes=5)
HEARTBEAT_SECONDS = 60  # well inside LEASE_TTL, so a live daemon never loses its lock
LEASE_POLL_SECONDS = 2.0


def lease_holder() -> str:
    """Who we are in the lease table: host and process id, so an operator can find us."""
    return f"{socket.gethostname()}:{os.getpid()}"


class SchedulerLease:
    """The "scheduler" lease for one process: take it, renew it, wait for it, give it back."""

    def __init__(
        self,
        engine: Engine,
        holder: str | None = None,
        ttl: timedelta = LEASE_TTL,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.engine = engine
        self.holder = holder or lease_holder()
        self.ttl = ttl
        self.clock = clock

    def acquire(self) -> bool:
        """Take or renew the lease; False when another live process holds it."""
        return leases.acquire(self.engine, LEASE_NAME, self.holder, self.ttl, self.clock())

    def release(self) -> None:
        leases.release(self.engine, LEASE_NAME, self.holder)

    def other_holder(self) -> str | None:
        holder = leases.holder_of(self.engine, LEASE_NAME, self.clock())
        return holder if holder != self.holder else None

    def held_message(self) -> str:
        holder = self.other_holder() or "another process"
        return (
            f"another fdawatch scheduler ({holder}) holds the lock on this database; stop it "
            "first, or pass --wait to take over when it stops (the lock expires "
            f"{int(self.ttl.total_seconds())} s after its holder dies)"
        )

    def wait(self, stop: threading.Event, timeout: float | None, poll: float) -> bool:
        """Block until the lease is ours (True), `stop` is set or `timeout` passes (False)."""
        waited = 0.0
        announced = False
        while not self.acquire():
            if timeout is not None and waited >= timeout:
                return False
            if not announced:
                log.info("waiting for the scheduler lock held by %s", self.other_holder())
                announced = True
            if stop.wait(poll):
                return False
            waited += poll
        return True

    @contextlib.contextmanager
    def kept(self, every: float = HEARTBEAT_SECONDS) -> Iterator[None]:
        """Renew the lease in a background thread while the block runs (for `run --once`)."""
        done = threading.Event()

        def renew() -> None:
            while not done.wait(every):
                if not self.acquire():
                    log.warning("lost the scheduler lock to %s", self.other_holder())

        thread = threading.Thread(target=renew, name="fdawatch-lease", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()
