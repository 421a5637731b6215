"""Turn history rows into email: the Jinja environment, view models and `EmailMessage` building.

Everything that comes from a scraped page (titles, text, URLs) is untrusted. It reaches HTML only
through autoescaping templates, becomes a link only when it is an http(s) URL, and reaches a
header only after `header_text` has removed line breaks and control characters. The digest reuses
`environment`, `change_view` and `compose_email`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import css_inline
import jinja2
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlmodel import Session

from db.models import Change, Snapshot, Source
from monitor import display
from monitor.config import Settings
from monitor.core.outline import Hunk
from monitor.delivery import plain, reading
from monitor.sources import SourceConfig

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"
SEVERITY_LABELS = {
    "T1": "critical",
    "T2": "high",
    "T3": "medium",
    "T4": "low",
    "T5": "noise",
}
MAX_LINE_CHANGES = 60  # changed lines per change in an email; the change page has them all
_SPACES = re.compile(r"\s+")
_LINE_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")


def _is_control(char: str) -> bool:
    return unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp")


def header_text(value: object, limit: int = 200) -> str:
    """One safe header line: no CR/LF or other control characters, whitespace collapsed."""
    text = "".join(" " if _is_control(c) else c for c in str(value))
    text = _SPACES.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def body_text(value: object) -> str:
    """Page text for a body: keeps newlines and tabs, drops other control characters."""
    return _LINE_CONTROLS.sub("", str(value).replace("\r\n", "\n").replace("\r", "\n"))


def link_url(url: str | None) -> str | None:
    """`url` when it may become a link (http/https with a host), else None: no javascript:."""
    if not url:
        return None
    candidate = url.strip()
    if _LINE_CONTROLS.search(candidate) or any(c.isspace() for c in candidate):
        return None
    parts = urlsplit(candidate)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return candidate


@jinja2.pass_context
def format_time(context: jinja2.runtime.Context, value: datetime | None) -> str:
    """A timestamp in the reader's `[display] timezone` (the template's `timezone`), else UTC."""
    return display.format_time(value, context.get("timezone") or display.DEFAULT_ZONE)


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The shared Jinja environment: HTML templates autoescape, text templates do not."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(
            enabled_extensions=("html", "htm", "html.j2", "xml"),
            disabled_extensions=("txt", "txt.j2", "css.j2"),
            default_for_string=True,
            default=True,
        ),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["time"] = format_time
    env.filters["link"] = link_url
    env.globals["severity_labels"] = SEVERITY_LABELS
    env.globals["tier_meanings"] = plain.TIER_MEANINGS
    return env


_INLINER = css_inline.CSSInliner(load_remote_stylesheets=False, keep_link_tags=False)


def render(name: str, **context: Any) -> str:
    """Render one template; `.html.j2` output gets its CSS inlined (mail clients drop <style>)."""
    output = environment().get_template(name).render(**context)
    if name.endswith(".html.j2"):
        output = _INLINER.inline(output)
    return output


@dataclass(frozen=True)
class ChangeView:
    """Everything a template needs about one change, already cleaned and decided."""

    id: int
    kind: str
    severity: str
    title: str
    summary: str
    source_id: str
    source_title: str
    url: str  # shown as text always
    url_link: str | None  # shown as a link only when it is http(s)
    detected_at: datetime
    previous_at: datetime | None
    matched_terms: list[str]
    severity_reasons: list[str]
    evidence_url: str | None
    hunks: list[Hunk] = field(default_factory=list)
    headline: str = ""  # what changed, from the most significant section (reading.py)
    subject: str = ""  # `T1 Spravato REMS: REMS Requirements changed`
    hunks_truncated: int = 0  # changed lines past MAX_LINE_CHANGES, not shown in the email
    reasons: list[str] = field(default_factory=list)  # severity reasons as sentences
    open_label: str = "Open the source page"  # or "Open on fda.gov"
    content_date: str = ""  # FDA's own "Content current as of" date, when the page shows one
    seen_in: tuple[Any, ...] = ()  # one FDA action in several sources: `same_action.SeenIn`s


def _snapshot(session: Session, snapshot_id: int | None) -> Snapshot | None:
    return session.get(Snapshot, snapshot_id) if snapshot_id is not None else None


def source_title(session: Session, source_id: str, sources: Mapping[str, SourceConfig]) -> str:
    """The title people know a source by: sources.toml, then the stored row, then the id."""
    config = sources.get(source_id)
    if config is not None and config.title:
        return body_text(config.title)
    row = session.get(Source, source_id)
    return body_text(row.title) if row is not None and row.title else source_id


def source_url(session: Session, source_id: str, sources: Mapping[str, SourceConfig]) -> str:
    config = sources.get(source_id)
    if config is not None:
        return config.url
    row = session.get(Source, source_id)
    return row.url if row is not None else ""


def evidence_url(settings: Settings, change_id: int) -> str | None:
    """Where the published site keeps this change, when the site is configured."""
    base = link_url(settings.site_url)
    return f"{base.rstrip('/')}/changes/{change_id}.html" if base else None


def change_view(
    session: Session, change: Change, settings: Settings, sources: Mapping[str, SourceConfig]
) -> ChangeView:
    """Load the snapshots around `change` and work out what a reader sees of it."""
    assert change.id is not None, "change must be flushed before it is rendered"
    old = _snapshot(session, change.old_snapshot_id)
    new = _snapshot(session, change.new_snapshot_id)
    old_text = body_text(old.text) if old else ""
    new_text = body_text(new.text) if new else ""
    url = (new or old).url if (new or old) else source_url(session, change.source_id, sources)
    title = body_text(change.title or (new.title if new else old.title if old else ""))
    found = reading.change_hunks(session, change, (old_text, new_text))
    shown, hidden = reading.limit_rows(found, MAX_LINE_CHANGES)
    name = source_title(session, change.source_id, sources)
    headline = header_text(reading.reader_summary(change, found, title), limit=300)
    return ChangeView(
        id=change.id,
        kind=change.kind,
        severity=change.severity,
        title=title,
        summary=header_text(change.summary, limit=300),
        source_id=change.source_id,
        source_title=name,
        url=body_text(url),
        url_link=link_url(url),
        detected_at=change.detected_at,
        previous_at=old.fetched_at if old else None,
        matched_terms=[body_text(t) for t in change.matched_terms],
        severity_reasons=[body_text(r) for r in change.severity_reasons],
        evidence_url=evidence_url(settings, change.id),
        hunks=shown,
        hunks_truncated=hidden,
        reasons=plain.reason_sentences([body_text(r) for r in change.severity_reasons]),
        open_label=plain.open_label(link_url(url)),
        content_date=body_text((new or old).meta.get("content_date", "") if (new or old) else ""),
        headline=headline,
        subject=header_text(reading.subject_part(change, found, name, title, headline)),
    )


@dataclass(frozen=True)
class ListedChange:
    """A change past the storm cap: one line in the email's list, no diff computed for it."""

    id: int
    severity: str
    title: str
    summary: str
    source_title: str
    detected_at: datetime
    site_link: str | None


def listed_change(
    session: Session, change: Change, settings: Settings, sources: Mapping[str, SourceConfig]
) -> ListedChange:
    """The list line for `change`; its snapshots are read only when the change has no title."""
    assert change.id is not None, "change must be flushed before it is listed"
    title = change.title
    if not title:
        for snapshot_id in (change.new_snapshot_id, change.old_snapshot_id):
            snapshot = _snapshot(session, snapshot_id)
            if snapshot is not None:
                title = snapshot.title
                break
    return ListedChange(
        id=change.id,
        severity=change.severity,
        title=body_text(title),
        summary=header_text(change.summary, limit=300),
        source_title=source_title(session, change.source_id, sources),
        detected_at=change.detected_at,
        site_link=evidence_url(settings, change.id),
    )


def severity_counts(views: Sequence[ChangeView | ListedChange]) -> str:
    """`T2: 1, T3: 4` — how a list of changes splits by tier, most severe first."""
    counts: dict[str, int] = {}
    for view in views:
        counts[view.severity] = counts.get(view.severity, 0) + 1
    return ", ".join(f"{tier}: {counts[tier]}" for tier in sorted(counts))


def alert_subject(views: Sequence[ChangeView], total: int) -> str:
    """The most severe change's subject, plus how many more of `total` the email carries.

    `views` are the changes shown in full, in `reading.rank` order; the storm cap keeps the most
    severe among them.
    """
    return header_text(reading.subject([views[0].subject], total), 250)


def compose_email(
    *,
    subject: str,
    text: str,
    html: str,
    sender: str,
    recipients: Sequence[str],
    message_id: str,
    date: datetime,
    extra_headers: Mapping[str, str] | None = None,
) -> EmailMessage:
    """A multipart/alternative message; every header value passes through `header_text`."""
    message = EmailMessage()
    message["Subject"] = header_text(subject, 250)
    message["From"] = header_text(sender)
    message["To"] = ", ".join(header_text(r) for r in recipients) or "undisclosed-recipients:;"
    message["Date"] = format_datetime(date)
    message["Message-ID"] = header_text(message_id)
    message["Auto-Submitted"] = "auto-generated"
    for name, value in (extra_headers or {}).items():
        message[name] = header_text(value)
    message.set_content(text, subtype="plain", charset="utf-8")
    message.add_alternative(html, subtype="html", charset="utf-8")
    return message


def alert_email(
    views: Sequence[ChangeView],
    overflow: Sequence[ListedChange],
    *,
    settings: Settings,
    recipients: Sequence[str],
    message_id: str,
    now: datetime,
    review_links: Mapping[int, str] | None = None,
) -> EmailMessage:
    """One alert email: `views` in full, `overflow` (past the storm cap) as a short list;
    `review_links` maps a change id to its signed review link for this recipient."""
    everything: list[ChangeView | ListedChange] = [*views, *overflow]
    context = {
        "changes": list(views),
        "overflow": list(overflow),
        "overflow_counts": severity_counts(overflow),
        "total": len(everything),
        "site_url": link_url(settings.site_url),
        "now": now,
        "review_links": dict(review_links or {}),
        "timezone": settings.timezone,
    }
    return compose_email(
        subject=alert_subject(views, len(everything)),
        text=render("alert.txt.j2", **context),
        html=render("alert.html.j2", **context),
        sender=settings.mail_from,
        recipients=recipients,
        message_id=message_id,
        date=now,
        extra_headers={"X-Fdawatch-Changes": " ".join(str(v.id) for v in everything)},
    )


@dataclass(frozen=True)
class NoticeView:
    """One source-health notice (failing / recovered / layout drift) for the templates."""

    kind: str
    source_id: str
    source_title: str
    url: str
    url_link: str | None
    notice: str
    created_at: datetime

    @property
    def headline(self) -> str:
        return {
            "source_failing": "is failing",
            "source_recovered": "has recovered",
            "layout_drift": "changed its layout",
            "source_blocked": "is blocked (the site refuses fdawatch's requests)",
        }.get(self.kind, self.kind.replace("_", " "))


def notice_view(
    session: Session,
    *,
    kind: str,
    source_id: str,
    notice: str | None,
    created_at: datetime,
    sources: Mapping[str, SourceConfig],
) -> NoticeView:
    url = source_url(session, source_id, sources)
    return NoticeView(
        kind=kind,
        source_id=source_id,
        source_title=source_title(session, source_id, sources),
        url=body_text(url),
        url_link=link_url(url),
        notice=body_text(notice or ""),
        created_at=created_at,
    )


def health_email(
    notices: Sequence[NoticeView],
    *,
    settings: Settings,
    recipients: Sequence[str],
    message_id: str,
    now: datetime,
) -> EmailMessage:
    """One email carrying a recipient's source-health notices."""
    first = notices[0]
    subject = f"[fdawatch] T2 {first.source_title}: source {first.headline}"
    if len(notices) > 1:
        subject += f" (+{len(notices) - 1} more)"
    context = {
        "notices": list(notices),
        "now": now,
        "timezone": settings.timezone,
        "site_url": link_url(settings.site_url),
    }
    return compose_email(
        subject=subject,
        text=render("health.txt.j2", **context),
        html=render("health.html.j2", **context),
        sender=settings.mail_from,
        recipients=recipients,
        message_id=message_id,
        date=now,
    )
