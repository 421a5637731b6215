"""A fixed start time and a clock the test moves by hand: history never reads the real time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


class Clock:
    """A controllable `now`: every call to `tick()` moves it on by an hour; settable via `now`."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        """The clock as a `now` function (what the scheduler's `clock=` takes)."""
        return self.now

    def tick(self, hours: float = 1) -> datetime:
        self.now += timedelta(hours=hours)
        return self.now
