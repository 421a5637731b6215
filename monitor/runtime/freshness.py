"""Whether fdawatch can attest that a source is being watched: fresh, stale, blocked or failing.

A source is *stale* when no check succeeded within two of its scheduled checks: for an interval
source, 2 × the interval since the last success; for a cron source, once the second scheduled
time after the last success has passed (a weekday-only cron is not stale over a weekend). A
source that never succeeded is stale: nothing attests it. A blocked or failing (or drifted)
source is not being read, whatever its times say. Pure: `now` is passed in.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from monitor.cron import parse_cron
from monitor.sources import SourceConfig

FRESH = "fresh"
STALE = "stale"
BLOCKED = "blocked"
FAILING = "failing"
#: Checks a source may miss before it counts as stale.
MISSED_CHECKS = 2
#: Health states (`monitor.runtime.status.health_state`) in which a source is not being read.
NOT_READ = {"blocked": BLOCKED, "failing": FAILING, "drift": FAILING}


def stale_after(source: SourceConfig, last_success_at: datetime | None) -> datetime | None:
    """When the source turns stale without another success; None when it never succeeded."""
    if last_success_at is None:
        return None
    if not source.cron:
        return last_success_at + MISSED_CHECKS * timedelta(seconds=source.interval_seconds)
    trigger = parse_cron(source.cron)
    fire = last_success_at
    for _ in range(MISSED_CHECKS):
        following = trigger.get_next_fire_time(None, fire + timedelta(seconds=1))
        assert following is not None  # a crontab always fires again
        fire = following
    return fire


def freshness(state: str, deadline: datetime | None, now: datetime) -> str:
    """fresh / stale / blocked / failing, from the health state and `stale_after`."""
    if state in NOT_READ:
        return NOT_READ[state]
    if deadline is None or now > deadline:
        return STALE
    return FRESH
