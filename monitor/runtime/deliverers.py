"""The daemon's deliverers: sending alerts, draining the outbox at exit, renewing the lock.

They run on their own executor (`scheduler.DELIVER_EXECUTOR`), never behind a crawl: a long
crawl once filled every scheduler thread, so the sender and the lock renewal were skipped and
alerts waited minutes (the soak review of 1 December 2026, issue 21). One send runs at a time;
the sender also runs right after each batch and, on SIGTERM, once more after the last crawl.
Each send ends by handing the C heap's free pages back (`memory.release_free_memory`): what
rendering freed goes back to the system instead of waiting in the heap.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime

from sqlalchemy import Engine

from monitor.config import Settings
from monitor.delivery.alerts import SendReport, send_pending
from monitor.runtime.awake import join_awake
from monitor.runtime.lease import SchedulerLease
from monitor.runtime.memory import release_free_memory
from monitor.sources import SourceConfig

log = logging.getLogger("fdawatch.scheduler")

#: On SIGTERM, after the running crawl: how long the final send of the outbox may take.
DRAIN_SECONDS = 30.0


class Deliverers:
    """The jobs that must never wait behind a crawl, as plain methods."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        sources: Mapping[str, SourceConfig],
        lease: SchedulerLease,
        clock: Callable[[], datetime],
        trim: Callable[[], object] = release_free_memory,
    ) -> None:
        self.engine = engine
        self.trim = trim
        self.settings = settings
        self.sources = sources
        self.lease = lease
        self.clock = clock
        self.last_send: SendReport | None = None
        self._send_lock = threading.Lock()

    def send_alerts(self) -> SendReport | None:
        """Drain the outbox once (every minute, after each batch, at exit, after `run --once`).

        One send at a time: a run that starts while another sends waits for it, then sends
        what is still due.
        """
        with self._send_lock:
            try:
                report = send_pending(self.engine, self.settings, self.sources, self.clock())
            except Exception:
                log.exception("sending alerts failed; the outbox keeps them for the next try")
                return None
            finally:
                self.trim()  # rendering freed page-sized buffers: give them back (memory.py)
        self.last_send = report
        if not report.nothing_due:
            log.info(
                "alerts: %d emails (%d alerts) via %s; %d to retry, %d failed",
                report.emails,
                report.alerts,
                report.via,
                report.retry_emails,
                report.failed_emails,
            )
        for error in report.errors:
            log.warning("alerts: %s", error)
        return report

    def drain_outbox(self, timeout: float = DRAIN_SECONDS) -> SendReport | None:
        """Send what is queued before exiting, waiting at most `timeout` seconds.

        The send runs in its own thread, so a mail server that hangs cannot hold the exit; rows
        it had claimed are sent again by the next start (same Message-ID).
        """
        reports: list[SendReport | None] = []
        sender = threading.Thread(
            target=lambda: reports.append(self.send_alerts()), name="fdawatch-drain", daemon=True
        )
        sender.start()
        if not join_awake(sender, timeout):
            log.warning(
                "gave up sending the queued alerts after %.0f s; they are sent at the next start",
                timeout,
            )
            return None
        report = reports[0] if reports else None
        if report is not None and report.nothing_due:
            log.info("outbox empty at exit")
        return report

    def heartbeat(self) -> None:
        """Renew the lock; if another process took it (we were frozen too long), say so."""
        if self.settings.scheduler_shared:
            return  # shared workers hold per-source claims only while crawling
        if not self.lease.acquire():
            log.warning("crawls paused: %s", self.lease.held_message())
