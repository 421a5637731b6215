"""The digest site: a self-contained static site rendered from the history with Jinja.

`build_site` writes `index.html` (the changes of a window grouped by severity, sources needing
attention, counts), one page per change (side-by-side and inline word diff, hashes, severity
reasons, evidence bundle), one page per source (versions, changes, recent fetches), `feed.atom`
and `evidence/change-<id>.zip`. Pages use relative links only, inline CSS and no JavaScript, so the
folder can be opened from disk, served by `fdawatch serve` or copied to any web server.

Scraped text is untrusted: templates autoescape with StrictUndefined, and only http(s) URLs
become links (`render.link_url`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from db.models import Change, Snapshot, Source
from monitor.config import Settings
from monitor.core.diff import LineChange, Segment, paired_changes
from monitor.core.outline import Hunk
from monitor.delivery import plain, reading
from monitor.delivery.render import (
    ChangeView,
    body_text,
    change_view,
    environment,
    link_url,
    source_title,
    source_url,
)
from monitor.history import queries
from monitor.site import evidence
from monitor.site.digest import (
    Digest,
    DigestItem,
    collect,
    digest_item,
    source_page,
)
from monitor.sources import SourceConfig

SITE_TEMPLATES = "site"
FEED_LIMIT = 50  # newest changes in feed.atom
HISTORY_LIMIT = 50  # versions and changes on a source page
FETCH_LIMIT = 30  # recent fetches on a source page
MAX_DIFF_ROWS = 500  # changed lines on a change page
OWNED_FOLDERS = {"changes": ".html", "sources": ".html", "evidence": ".zip", "versions": ".html"}


def iso(value: datetime | None) -> str:
    """RFC 3339 in UTC, for `<time datetime>` and Atom."""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else ""


def render_page(name: str, **context: Any) -> str:
    """Render `templates/site/<name>` (autoescaped, StrictUndefined: a typo fails loudly)."""
    template = environment().get_template(f"{SITE_TEMPLATES}/{name}")
    return template.render(iso=iso, **context)


@dataclass(frozen=True)
class Version:
    """One stored version of a document, as a change page or source page shows it."""

    snapshot_id: int
    fetched_at: datetime
    sha256: str
    body_sha256: str | None
    http_status: int
    title: str
    url: str
    url_link: str | None
    content_date: str = ""

    @property
    def page(self) -> str:
        """The page showing this version's stored text, relative to the site root."""
        return f"versions/{self.snapshot_id}.html"


def version(snapshot: Snapshot | None) -> Version | None:
    if snapshot is None or snapshot.id is None:
        return None
    return Version(
        snapshot_id=snapshot.id,
        fetched_at=snapshot.fetched_at,
        sha256=snapshot.sha256,
        body_sha256=snapshot.body_sha256,
        http_status=snapshot.http_status,
        title=body_text(snapshot.title),
        url=body_text(snapshot.url),
        url_link=link_url(snapshot.url),
        content_date=body_text(snapshot.meta.get("content_date", "")),
    )


def sides(line: LineChange) -> tuple[list[Segment], list[Segment]]:
    """(before, after) word segments of one changed line, for the side-by-side view."""
    if line.kind == "added":
        return [], [("insert", line.new)]
    if line.kind == "removed":
        return [("delete", line.old)], []
    before = [(op, text) for op, text in line.words if op != "insert"]
    after = [(op, text) for op, text in line.words if op != "delete"]
    return before, after


@dataclass(frozen=True)
class ChangePage:
    """Everything `change.html.j2` shows about one change."""

    view: ChangeView
    item: DigestItem
    before: Version | None
    after: Version | None
    lines: list[LineChange]
    truncated: int
    sections: list[str]
    source_page: str
    evidence: str  # the bundle, relative to the site root
    hunks: list[Hunk] = field(default_factory=list)  # the changed lines under their headings
    hunks_truncated: int = 0

    @property
    def rows(self) -> list[tuple[list[Segment], list[Segment]]]:
        return [sides(line) for line in self.lines]


def change_page(
    session: Session, change: Change, settings: Settings, sources: Mapping[str, SourceConfig]
) -> ChangePage:
    assert change.id is not None
    old = session.get(Snapshot, change.old_snapshot_id) if change.old_snapshot_id else None
    new = session.get(Snapshot, change.new_snapshot_id) if change.new_snapshot_id else None
    lines = paired_changes(body_text(old.text) if old else "", body_text(new.text) if new else "")
    shown, hidden = reading.limit_rows(reading.change_hunks(session, change), MAX_DIFF_ROWS)
    return ChangePage(
        view=change_view(session, change, settings, sources),
        item=digest_item(session, change, settings, sources),
        before=version(old),
        after=version(new),
        lines=lines[:MAX_DIFF_ROWS],
        truncated=max(0, len(lines) - MAX_DIFF_ROWS),
        sections=[body_text(s) for s in change.sections],
        source_page=source_page(change.source_id),
        evidence=f"evidence/{evidence.bundle_name(change.id)}",
        hunks=shown,
        hunks_truncated=hidden,
    )


@dataclass(frozen=True)
class FetchView:
    fetched_at: datetime
    outcome: str
    http_status: int | None
    error: str
    documents: int
    changes: int
    duration_ms: int


@dataclass(frozen=True)
class SourcePage:
    """Everything `source.html.j2` shows about one source."""

    id: str
    title: str
    kind: str
    url: str
    url_link: str | None
    health: str
    last_error: str
    consecutive_failures: int
    last_success_at: datetime | None
    last_checked_at: datetime | None
    versions: list[Version]
    changes: list[DigestItem]
    fetches: list[FetchView]
    page: str = field(default="")


def source_view(
    session: Session, row: Source, settings: Settings, sources: Mapping[str, SourceConfig]
) -> SourcePage:
    found = queries.source_history(session, row.id, limit=HISTORY_LIMIT, fetch_limit=FETCH_LIMIT)
    url = source_url(session, row.id, sources)
    return SourcePage(
        id=row.id,
        title=source_title(session, row.id, sources),
        kind=row.kind,
        url=body_text(url),
        url_link=link_url(url),
        health=row.health,
        last_error=body_text(row.last_error or ""),
        consecutive_failures=row.consecutive_failures,
        last_success_at=row.last_success_at if row.last_success_at else None,
        last_checked_at=row.last_checked_at if row.last_checked_at else None,
        versions=[v for v in map(version, found.snapshots) if v is not None],
        changes=[digest_item(session, c, settings, sources) for c in found.changes],
        fetches=[
            FetchView(
                fetched_at=f.fetched_at,
                outcome=f.outcome,
                http_status=f.http_status,
                error=body_text(f.error or ""),
                documents=f.documents,
                changes=f.changes,
                duration_ms=f.duration_ms,
            )
            for f in found.fetches
        ],
        page=source_page(row.id),
    )


@dataclass
class SiteReport:
    """What `build_site` wrote; `fdawatch digest` prints it."""

    out: Path
    digest: Digest
    change_pages: int = 0
    source_pages: int = 0
    bundles: int = 0
    written: list[Path] = field(default_factory=list)

    @property
    def index(self) -> Path:
        return self.out / "index.html"


def _feed_id(settings: Settings) -> str:
    """The authority of the feed's tag: URIs: the site's host when published, else a stand-in."""
    base = link_url(settings.site_url)
    return (urlsplit(base).hostname or "fdawatch.invalid") if base else "fdawatch.invalid"


def _remove_stale(out: Path, written: Sequence[Path]) -> None:
    """Pages and bundles of an earlier build that this build no longer links to."""
    keep = {path.resolve() for path in written}
    for folder, suffix in OWNED_FOLDERS.items():
        for path in (out / folder).glob(f"*{suffix}"):
            if path.resolve() not in keep:
                path.unlink()


def build_site(
    engine: Engine,
    settings: Settings,
    sources: Mapping[str, SourceConfig],
    out: Path,
    *,
    since: datetime,
    now: datetime,
    window: str = "",
) -> SiteReport:
    """Render the whole site into `out` (created if needed); the index covers [since, now]."""
    since, now = since, now
    out = Path(out)
    title = window or f"{since:%Y-%m-%d %H:%M} – {now:%Y-%m-%d %H:%M} UTC"
    with Session(engine) as session:
        digest = collect(session, settings, sources, since, now, title=title)
        report = SiteReport(out=out, digest=digest)
        feed = session.exec(
            select(Change)
            .order_by(col(Change.detected_at).desc(), col(Change.id).desc())
            .limit(FEED_LIMIT)
        ).all()
        source_rows = session.exec(select(Source).order_by(col(Source.id))).all()
        source_pages = [source_view(session, row, settings, sources) for row in source_rows]
        wanted = {item.id for item in digest.items} | {c.id for c in feed if c.id is not None}
        wanted |= {item.id for page in source_pages for item in page.changes}
        common = {
            "now": now,
            "site_url": link_url(settings.site_url),
            "timezone": settings.timezone,
        }
        versions: dict[int, Version] = {}

        def write(relative: str, text: str | bytes) -> None:
            data = text.encode("utf-8") if isinstance(text, str) else text
            report.written.append(evidence.write_atomic(out / relative, data))

        for change_id in sorted(wanted):
            change = session.get(Change, change_id)
            assert change is not None
            page = change_page(session, change, settings, sources)
            write(
                f"changes/{change_id}.html",
                render_page("change.html.j2", page=page, root="../", **common),
            )
            write(page.evidence, evidence.build_bundle(session, change_id))
            report.change_pages += 1
            report.bundles += 1
            versions.update({v.snapshot_id: v for v in (page.before, page.after) if v})
        for source in source_pages:
            write(source.page, render_page("source.html.j2", source=source, root="../", **common))
            report.source_pages += 1
            versions.update({v.snapshot_id: v for v in source.versions})
        for snapshot_id, stored in sorted(versions.items()):
            snapshot = session.get(Snapshot, snapshot_id)
            assert snapshot is not None
            write(
                stored.page,
                render_page(
                    "version.html.j2",
                    version=stored,
                    lines=body_text(snapshot.text).splitlines(),
                    source_title=source_title(session, snapshot.source_id, sources),
                    source_page=source_page(snapshot.source_id),
                    root="../",
                    **common,
                ),
            )
        write(
            "index.html",
            render_page(
                "index.html.j2",
                digest=digest,
                sources=source_pages,
                root="",
                **common,
            ),
        )
        entries = [digest_item(session, change, settings, sources) for change in feed]
        write(
            "feed.atom",
            render_page(
                "feed.atom.j2",
                entries=entries,
                reasons={
                    c.id: plain.reason_sentences([body_text(r) for r in c.severity_reasons])
                    for c in feed
                },
                base=f"{common['site_url'].rstrip('/')}/" if common["site_url"] else "",
                feed_id=_feed_id(settings),
                updated=entries[0].detected_at if entries else now,
                **common,
            ),
        )
    _remove_stale(out, report.written)
    return report
