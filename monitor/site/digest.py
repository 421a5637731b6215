"""The digest: what changed in a period, grouped by severity, and the job that queues its email.

`collect` gathers the changes of a time window (optionally only what one recipient follows) with
a plain one-line headline each, quoted from the stored summary and diff, never invented. The
site's index page and the digest email both render a `Digest`.

`queue_due_digests` is called hourly by the scheduler. For each subscriber it looks at the last
*completed* day or ISO week and queues one outbox row (kind "digest") whose `dedup_key` is unique
in the database: two schedulers racing both try to insert it and the database lets one win.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from db.models import Change, Snapshot, Source
from monitor.config import Recipient, Settings
from monitor.delivery import outbox, reading
from monitor.delivery.render import (
    body_text,
    evidence_url,
    header_text,
    link_url,
    source_title,
    source_url,
)
from monitor.sources import ID_PATTERN, SourceConfig

FREQUENCIES = ("daily", "weekly")
#: Tiers a digest email carries: T5 is noise and never reaches anyone's inbox.
EMAIL_TIERS = ("T1", "T2", "T3", "T4")
ALL_TIERS = (*EMAIL_TIERS, "T5")
ATTENTION_HEALTH = ("failing", "drift")
HEADLINE_MAX = 300


@dataclass(frozen=True)
class Period:
    """One digest period: a UTC day or ISO week, `start` inclusive, `end` exclusive."""

    frequency: str  # daily / weekly
    label: str  # 2026-11-28 / 2026-W48
    start: datetime
    end: datetime

    @property
    def key(self) -> str:
        """`weekly:2026-W48`: what an outbox row's `notice` holds."""
        return f"{self.frequency}:{self.label}"

    @property
    def title(self) -> str:
        if self.frequency == "weekly":
            last = self.end - timedelta(days=1)
            return f"week {self.label} ({self.start:%b %d} – {last:%b %d, %Y})"
        return f"{self.start:%A, %b %d, %Y}"


def _day(value: date) -> datetime:
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


def completed_period(frequency: str, now: datetime) -> Period:
    """The last day or ISO week (UTC) that has fully ended at `now`."""
    today = _day(now.date())
    if frequency == "daily":
        start = today - timedelta(days=1)
        return Period("daily", start.date().isoformat(), start, today)
    if frequency == "weekly":
        monday = today - timedelta(days=today.weekday())
        start = monday - timedelta(days=7)
        year, week, _ = start.isocalendar()
        return Period("weekly", f"{year}-W{week:02d}", start, monday)
    raise ValueError(f"digest frequency {frequency!r} is not one of {', '.join(FREQUENCIES)}")


def parse_period(key: str) -> Period:
    """The inverse of `Period.key`: `daily:2026-11-28` or `weekly:2026-W48`."""
    frequency, _, label = key.partition(":")
    try:
        if frequency == "daily":
            start = _day(date.fromisoformat(label))
            return Period("daily", label, start, start + timedelta(days=1))
        if frequency == "weekly":
            year, _, week = label.partition("-W")
            start = _day(date.fromisocalendar(int(year), int(week), 1))
            return Period("weekly", label, start, start + timedelta(days=7))
    except ValueError:
        pass
    raise ValueError(f"digest period {key!r} is not like daily:2026-11-28 or weekly:2026-W48")


def dedup_key(period: Period, email: str) -> str:
    """`digest:weekly:2026-W48:owner@clinic.example`: one digest per recipient per period."""
    return f"digest:{period.key}:{email.lower()}"


@dataclass(frozen=True)
class DigestItem:
    """One change as the digest lists it."""

    id: int
    severity: str
    kind: str
    headline: str
    title: str
    source_id: str
    source_title: str
    detected_at: datetime
    url: str
    url_link: str | None
    site_link: str | None  # the change's page on the published site, when configured

    @property
    def page(self) -> str:
        """The change page, relative to the site root."""
        return f"changes/{self.id}.html"

    @property
    def source_page(self) -> str:
        return source_page(self.source_id)


@dataclass(frozen=True)
class SourceHealth:
    """A source that needs someone to look at it (failing, or its layout drifted)."""

    id: str
    title: str
    health: str
    last_error: str
    consecutive_failures: int
    last_success_at: datetime | None
    last_checked_at: datetime | None
    url: str
    url_link: str | None

    @property
    def page(self) -> str:
        return source_page(self.id)


@dataclass(frozen=True)
class Digest:
    """The changes of one window, most severe first, and the sources needing attention."""

    title: str
    start: datetime
    end: datetime
    items: tuple[DigestItem, ...]
    attention: tuple[SourceHealth, ...]

    @property
    def total(self) -> int:
        return len(self.items)

    @property
    def severity(self) -> str | None:
        """The most severe tier present (T1 is most severe), or None when nothing changed."""
        return min((item.severity for item in self.items), default=None)

    @property
    def groups(self) -> list[tuple[str, list[DigestItem]]]:
        """[(tier, items)] for the tiers present, T1 first."""
        tiers: dict[str, list[DigestItem]] = {}
        for item in self.items:
            tiers.setdefault(item.severity, []).append(item)
        return [(tier, tiers[tier]) for tier in sorted(tiers)]

    @property
    def counts(self) -> str:
        """`T1: 1, T2: 2`, or `none`."""
        return ", ".join(f"{tier}: {len(items)}" for tier, items in self.groups) or "none"


def source_page(source_id: str) -> str:
    """A source's page relative to the site root; ids outside the sources.toml pattern hashed."""
    if ID_PATTERN.match(source_id):
        return f"sources/{source_id}.html"
    return f"sources/source-{hashlib.sha1(source_id.encode()).hexdigest()[:12]}.html"


def headline(change: Change, source_name: str, summary: str) -> str:
    """One line a clinic owner can read: which source, then what changed, quoted from the page.

    `Spravato REMS · Healthcare Settings: added “…”`; a new item is named by its title.
    """
    where = reading.short_name(source_name)
    if change.kind == "new":
        text = f"{where} · new: {change.title or summary}"
    elif change.kind == "removed":
        text = f"{where} · no longer published: {change.title or summary}"
    else:
        text = f"{where} · {summary}"
    return header_text(text, HEADLINE_MAX)


def _summary(session: Session, change: Change) -> str:
    """What changed, from the most significant section (as the alert emails say it)."""
    found = reading.change_hunks(session, change)
    return reading.reader_summary(change, found, body_text(change.title))


def change_url(session: Session, change: Change, sources: Mapping[str, SourceConfig]) -> str:
    """The document's own URL (the newest snapshot's), else the source's."""
    snapshot_id = change.new_snapshot_id or change.old_snapshot_id
    snapshot = session.get(Snapshot, snapshot_id) if snapshot_id else None
    return snapshot.url if snapshot else source_url(session, change.source_id, sources)


def digest_item(
    session: Session, change: Change, settings: Settings, sources: Mapping[str, SourceConfig]
) -> DigestItem:
    assert change.id is not None
    name = source_title(session, change.source_id, sources)
    url = change_url(session, change, sources)
    return DigestItem(
        id=change.id,
        severity=change.severity,
        kind=change.kind,
        headline=headline(change, name, _summary(session, change)),
        title=header_text(change.title, HEADLINE_MAX),
        source_id=change.source_id,
        source_title=name,
        detected_at=change.detected_at,
        url=header_text(url, 2000),
        url_link=link_url(url),
        site_link=evidence_url(settings, change.id),
    )


def _tags(sources: Mapping[str, SourceConfig], source_id: str) -> tuple[str, ...]:
    config = sources.get(source_id)
    return config.tags if config is not None else ()


def needing_attention(
    session: Session,
    sources: Mapping[str, SourceConfig],
    recipient: Recipient | None = None,
) -> list[SourceHealth]:
    """Sources whose health is failing or drift (the ones `recipient` follows, when given)."""
    rows = session.exec(
        select(Source).where(col(Source.health).in_(ATTENTION_HEALTH)).order_by(col(Source.id))
    ).all()
    found = []
    for row in rows:
        if recipient is not None and not recipient.follows(row.id, _tags(sources, row.id)):
            continue
        url = source_url(session, row.id, sources)
        found.append(
            SourceHealth(
                id=row.id,
                title=source_title(session, row.id, sources),
                health=row.health,
                last_error=header_text(row.last_error or "no error recorded", 500),
                consecutive_failures=row.consecutive_failures,
                last_success_at=row.last_success_at if row.last_success_at else None,
                last_checked_at=row.last_checked_at if row.last_checked_at else None,
                url=header_text(url, 2000),
                url_link=link_url(url),
            )
        )
    return found


def collect(
    session: Session,
    settings: Settings,
    sources: Mapping[str, SourceConfig],
    start: datetime,
    end: datetime,
    *,
    title: str,
    recipient: Recipient | None = None,
    tiers: Sequence[str] = ALL_TIERS,
) -> Digest:
    """The changes detected in [start, end) at `tiers`, limited to what `recipient` follows.

    A recipient's `min_severity` governs instant alerts only: the digest is the catch-up view
    and lists every followed change from T1 to T4.
    """
    changes = session.exec(
        select(Change)
        .where(col(Change.detected_at) >= start, col(Change.detected_at) < end)
        .where(col(Change.severity).in_(list(tiers)))
        .order_by(col(Change.severity), col(Change.detected_at).desc(), col(Change.id))
    ).all()
    if recipient is not None:
        changes = [
            c for c in changes if recipient.follows(c.source_id, _tags(sources, c.source_id))
        ]
    return Digest(
        title=title,
        start=start,
        end=end,
        items=tuple(digest_item(session, c, settings, sources) for c in changes),
        attention=tuple(needing_attention(session, sources, recipient)),
    )


def recipient_for(settings: Settings, email: str) -> Recipient:
    """The configured recipient with `email`; one following everything if it was removed."""
    for recipient in settings.recipients:
        if recipient.email.lower() == email.lower():
            return recipient
    return Recipient(email=email)


def period_digest(
    session: Session,
    settings: Settings,
    sources: Mapping[str, SourceConfig],
    period: Period,
    recipient: Recipient,
) -> Digest:
    """What one recipient's digest email for `period` carries."""
    return collect(
        session,
        settings,
        sources,
        period.start,
        period.end,
        title=period.title,
        recipient=recipient,
        tiers=EMAIL_TIERS,
    )


def queue_due_digests(
    engine: Engine, settings: Settings, sources: Mapping[str, SourceConfig], now: datetime
) -> list[str]:
    """Queue each subscriber's digest for their last completed period; return the keys queued.

    Idempotent and safe to run concurrently: a period already queued (by this or another
    process) is skipped, and the unique `dedup_key` rejects the loser of a race. A period with
    no changes queues nothing. The outbox (`monitor.delivery.alerts.send_pending`) delivers them.
    """
    now = now
    queued: list[str] = []
    seen: set[str] = set()
    for recipient in settings.recipients:
        if recipient.digest not in FREQUENCIES or recipient.email.lower() in seen:
            continue
        seen.add(recipient.email.lower())
        period = completed_period(recipient.digest, now)
        key = dedup_key(period, recipient.email)
        if outbox.is_queued(engine, key):
            continue
        with Session(engine) as session:
            digest = period_digest(session, settings, sources, period, recipient)
            if digest.severity is None:
                continue
            if outbox.queue_digest(session, recipient.email, period.key, digest.severity, key, now):
                queued.append(key)
    return queued


