"""The digest email: one period's changes grouped by severity, and the sources needing care."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage

from monitor.config import Settings
from monitor.delivery.render import compose_email, header_text, link_url, render
from monitor.site.digest import Digest


def digest_subject(digest: Digest, frequency: str) -> str:
    """`[fdawatch] Weekly digest, week 2026-W48 (…): 3 changes (T1: 1, T2: 2)`."""
    plural = "s" if digest.total != 1 else ""
    return header_text(
        f"[fdawatch] {frequency.capitalize()} digest, {digest.title}: "
        f"{digest.total} change{plural} ({digest.counts})",
        250,
    )


def digest_email(
    digest: Digest,
    *,
    frequency: str,
    settings: Settings,
    recipients: Sequence[str],
    message_id: str,
    now: datetime,
) -> EmailMessage:
    """One digest email: the period's changes grouped by severity, and sources needing care."""
    context = {
        "digest": digest,
        "site_url": link_url(settings.site_url),
        "now": now,
        "timezone": settings.timezone,
    }
    return compose_email(
        subject=digest_subject(digest, frequency),
        text=render("digest.txt.j2", **context),
        html=render("digest.html.j2", **context),
        sender=settings.mail_from,
        recipients=recipients,
        message_id=message_id,
        date=now,
        extra_headers={"X-Fdawatch-Changes": " ".join(str(item.id) for item in digest.items)},
    )
