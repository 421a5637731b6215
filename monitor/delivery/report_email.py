"""The daily watch report as an email, rendered from the snapshot its outbox row carries."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Any

from monitor.config import Settings
from monitor.delivery.render import body_text, compose_email, header_text, render

#: How each verdict reads in the report, most urgent first.
ORDER = ("blocked", "failing", "stale", "fresh")


@dataclass(frozen=True)
class Report:
    """What the report templates show; built from `daily_report.report_snapshot` JSON."""

    day: str
    at: datetime
    sources: list[dict[str, Any]]
    counts: dict[str, int]
    open_changes: list[dict[str, Any]]
    open_rule: str
    alerts_sent: list[dict[str, Any]]
    alerts_not_listed: int
    failed_deliveries: int

    @property
    def attention(self) -> int:
        return len(self.sources) - self.counts.get("fresh", 0)

    @property
    def sources_by_urgency(self) -> list[dict[str, Any]]:
        return sorted(self.sources, key=lambda s: ORDER.index(s["freshness"]))


def parse_report(notice: str) -> Report:
    """The `Report` a queued row's JSON stands for; times back to datetimes."""
    data = json.loads(notice)

    def when(value: str | None) -> datetime | None:
        return datetime.fromisoformat(value) if value else None

    sources = [
        {**s, "last_success_at": when(s["last_success_at"]), "stale_after": when(s["stale_after"])}
        for s in data["sources"]
    ]
    changes = [
        {
            **c,
            "title": body_text(c["title"]),
            "detected_at": when(c["detected_at"]),
            "told": [(r, when(at)) for r, at in c["told"]],
        }
        for c in data["open_changes"]
    ]
    alerts = [{**a, "sent_at": when(a["sent_at"])} for a in data["alerts_sent"]]
    at = when(data["at"])
    assert at is not None
    return Report(
        day=data["day"],
        at=at,
        sources=sources,
        counts=data["counts"],
        open_changes=changes,
        open_rule=data["open_rule"],
        alerts_sent=alerts,
        alerts_not_listed=data["alerts_not_listed"],
        failed_deliveries=data["failed_deliveries"],
    )


def report_subject(report: Report) -> str:
    """`[fdawatch] Daily watch report 2026-12-06: 2 of 40 sources need attention (…)`."""
    total = len(report.sources)
    if report.attention:
        parts = ", ".join(f"{report.counts[v]} {v}" for v in ORDER[:3] if report.counts.get(v))
        state = f"{report.attention} of {total} sources need attention ({parts})"
    else:
        state = f"all {total} sources fresh"
    opened = len(report.open_changes)
    return header_text(
        f"[fdawatch] Daily watch report {report.day}: {state}; "
        f"{opened} open change{'s' if opened != 1 else ''}",
        250,
    )


def report_email(
    notice: str,
    *,
    settings: Settings,
    recipients: Sequence[str],
    message_id: str,
    now: datetime,
) -> EmailMessage:
    """The email of one queued report row (`notice`: its snapshot JSON)."""
    report = parse_report(notice)
    context = {"report": report, "now": now}
    return compose_email(
        subject=report_subject(report),
        text=render("report.txt.j2", **context),
        html=render("report.html.j2", **context),
        sender=settings.mail_from,
        recipients=recipients,
        message_id=message_id,
        date=now,
    )
