"""Crontab schedules in sources.toml: 5 fields, UTC, weekday numbers as crontab counts them.

APScheduler is imported only when a cron is parsed, so commands that never schedule (`fdawatch
sources`, `--help`) start without it.
"""

from __future__ import annotations

import re
from datetime import UTC
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from apscheduler.triggers.cron import CronTrigger


CRONTAB_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def crontab_weekdays(field: str) -> str:
    """Crontab day-of-week numbers (0 and 7 = Sunday) as names.

    APScheduler 3 numbers days from Monday = 0, so `from_crontab("0 6 * * 1")` would run on
    Tuesdays; names mean the same to both.
    """
    days: set[int] = set()
    for part in field.split(","):
        if re.search(r"[a-z]", part, re.IGNORECASE):
            return field  # names already: APScheduler reads them as cron does
        base, _, step = part.partition("/")
        if base == "*":
            first, last = 0, 6
        elif "-" in base:
            first, last = (int(n) for n in base.split("-", 1))
        else:
            first = int(base)
            last = 6 if step else first
        if not 0 <= first <= 7 or not 0 <= last <= 7 or first > last:
            raise ValueError(f"day of week {part!r} is outside 0-7")
        days.update(day % 7 for day in range(first, last + 1, int(step or 1)))
    if days == set(range(7)):
        return "*"
    return ",".join(CRONTAB_DAYS[day] for day in sorted(days))


def parse_cron(cron: str) -> CronTrigger:
    """A 5-field crontab (minute hour day month weekday, UTC) as a trigger; ValueError if bad.

    Checked when sources.toml is loaded, so `fdawatch sources` and `crawl` reject a cron the
    daemon could never schedule, before anything is written.
    """
    fields = cron.split()
    if len(fields) != 5:
        raise ValueError(f"it has {len(fields)} fields, not 5")
    from apscheduler.triggers.cron import CronTrigger

    fields[4] = crontab_weekdays(fields[4])
    return CronTrigger.from_crontab(" ".join(fields), timezone=UTC)
