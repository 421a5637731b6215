"""The static site: pages render, links resolve, the feed parses, scraped markup is inert."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import feedparser
import pytest
from jinja2 import StrictUndefined, UndefinedError
from sqlalchemy import Engine
from sqlmodel import Session, select

from db.models import Snapshot
from monitor.config import Settings
from monitor.delivery.plain import TIER_MEANINGS, TIER_NAMES
from monitor.delivery.render import environment
from monitor.site.build import build_site, render_page
from tests.support import digest_history as data
from tests.support.digest_history import BuiltSite, History
from tests.support.html_pages import html_pages, parse


def test_every_page_is_written_once_per_change_and_source(site: BuiltSite) -> None:
    root = site.root
    history = site.history
    change_ids = [history.rems, history.ketamine, history.recall, history.hostile]
    with Session(site.engine) as session:  # every stored version is readable on the site
        snapshot_ids = session.exec(select(Snapshot.id)).all()
    assert len(snapshot_ids) == 8
    assert sorted(p.relative_to(root).as_posix() for p in html_pages(root)) == sorted(
        ["index.html"]
        + [f"changes/{i}.html" for i in change_ids]
        + [f"sources/{s}.html" for s in data.SOURCES]
        + [f"versions/{i}.html" for i in snapshot_ids]
    )
    assert sorted(p.name for p in (root / "evidence").iterdir()) == sorted(
        f"change-{i}.zip" for i in change_ids
    )
    assert (site.report.change_pages, site.report.source_pages) == (4, 5)


def test_templates_use_strict_undefined_so_a_missing_field_fails_loudly() -> None:
    assert environment().undefined is StrictUndefined
    with pytest.raises(UndefinedError, match="page"):
        render_page("change.html.j2", root="", now=data.NOW, site_url=None)


def _local_target(page: Path, href: str) -> tuple[Path, str]:
    parts = urlsplit(href)
    target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
    return target, parts.fragment


def test_every_link_between_pages_resolves(site: BuiltSite) -> None:
    root = site.root.resolve()
    checked = 0
    for page in html_pages(root):
        for href in parse(page).hrefs:
            if href == "data:,":  # the empty favicon that stops browsers asking for one
                continue
            scheme = urlsplit(href).scheme
            if scheme:
                assert scheme in ("http", "https"), f"{page.name}: link {href!r} is not http(s)"
                continue
            target, fragment = _local_target(page, href)
            assert target.is_file(), f"{page.relative_to(root)}: {href!r} points at nothing"
            assert root in target.parents, f"{page.relative_to(root)}: {href!r} leaves the site"
            if fragment and target.suffix == ".html":
                assert fragment in parse(target).ids, f"{href!r}: no id {fragment!r}"
            checked += 1
    assert checked > 40  # nav, breadcrumbs, change lists, evidence links …


def test_every_change_page_links_its_evidence_bundle_and_source(site: BuiltSite) -> None:
    for change_id in (site.history.rems, site.history.hostile):
        hrefs = parse(site.root / "changes" / f"{change_id}.html").hrefs
        assert f"../evidence/change-{change_id}.zip" in hrefs
        assert any(h.startswith("../sources/") for h in hrefs)


def test_index_lists_changes_by_severity_t1_first_with_counts_and_attention(
    site: BuiltSite,
) -> None:
    page = parse(site.root / "index.html")
    items = [attrs["data-severity"] for tag, attrs in page.tags if "data-severity" in attrs]
    assert items == ["T1", "T2", "T3", "T4"]
    text = page.visible_text
    assert text.index("Outpatient healthcare settings must have") < text.index("each dose")
    assert "4 changes" in text and "5 sources watched" in text and "2 need attention" in text
    attention = text[text.index("Sources needing attention") : text.index("1 change")]
    assert "FDA Compounding Risk Alerts index (SYNTHETIC): failing, 4 failures" in attention
    assert "HTTP 503 Service Unavailable from www.fda.gov" in attention
    assert "REMS@FDA" not in attention  # healthy sources are not listed


def test_change_page_shows_both_diffs_hashes_times_and_reasons(site: BuiltSite) -> None:
    html = (site.root / "changes" / f"{site.history.ketamine}.html").read_text()
    page = parse(site.root / "changes" / f"{site.history.ketamine}.html")
    inserted = re.findall(r"<ins>(.*?)</ins>", html)
    deleted = re.findall(r"<del>(.*?)</del>", html)
    # inline once, side by side once (after the legend's example words); the full stop is kept
    added = " and be monitored by a health care provider after each dose"
    assert inserted == ["underlined on green", added, added]
    assert deleted == ["struck through on red"]
    text = page.visible_text
    assert text.index("What changed") < text.index("About this change") < text.index("Evidence")
    for text in (data.KETAMINE_OLD, data.KETAMINE_NEW):
        assert hashlib.sha256(text.encode()).hexdigest() in page.visible_text
    assert "2026-11-26 08:30 UTC" in page.visible_text
    reason = f"Every change on {data.KETAMINE.title} is rated at least T2 (high)."
    assert reason in page.visible_text  # the writer's reason, as a sentence
    assert data.KETAMINE.url in page.hrefs


HOSTILE_MARKERS = ("alert(", "onerror", "javascript:")


def test_scraped_markup_renders_as_inert_text(site: BuiltSite) -> None:
    for path in [*html_pages(site.root)]:
        page = parse(path)
        for tag, attrs in page.tags:
            assert tag not in ("script", "img", "iframe", "object"), f"{path.name}: <{tag}>"
            for name, value in attrs.items():
                assert not name.startswith("on"), f"{path.name}: {name}= on <{tag}>"
                assert not any(m in value for m in HOSTILE_MARKERS), f"{path.name}: {value!r}"
    change = parse(site.root / "changes" / f"{site.history.hostile}.html").visible_text
    assert "<script>alert('change title')</script>" in change  # shown, as text
    assert '<img src=x onerror="alert(1)">' in change
    source = parse(site.root / "sources" / "hostile_fixture.html").visible_text
    assert "javascript:alert(document.cookie)" in source  # the bad URL is shown, never linked


def test_atom_feed_parses_with_one_entry_per_change(site: BuiltSite) -> None:
    feed = feedparser.parse((site.root / "feed.atom").read_bytes())
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "atom10"
    titles = [entry.title for entry in feed.entries]
    assert len(titles) == 4
    assert titles[0] == (  # newest first
        "[T1] Spravato REMS · Added “Outpatient healthcare settings must have a healthcare "
        "provider on site and a pulse oximeter available to monitor patients.”"
    )
    assert any("<script>alert(" in t for t in titles)  # hostile text survives as text
    links = {entry.link for entry in feed.entries}
    assert links == {f"changes/{i}.html" for i in (1, 2, 3, 4)}
    for link in links:
        assert (site.root / link).is_file()
    assert {entry.id for entry in feed.entries} == {
        f"tag:fdawatch.invalid,2026:change/{i}" for i in (1, 2, 3, 4)
    }


def test_pages_need_no_external_assets_and_no_javascript(site: BuiltSite) -> None:
    for path in html_pages(site.root):
        page = parse(path)
        for tag, attrs in page.tags:
            if tag == "link":
                assert attrs["href"].endswith("feed.atom") or attrs["href"] == "data:,", attrs
            assert "src" not in attrs, f"{path.name}: <{tag} src=…>"
        assert {"header", "nav", "main", "footer", "h1"} <= {tag for tag, _ in page.tags}


def test_published_feed_links_are_absolute(
    history_db: tuple[Engine, History], tmp_path: Path
) -> None:
    engine, _ = history_db
    settings = Settings(site_url="https://fdawatch.clinic.example/digest")
    build_site(
        engine,
        settings,
        data.SOURCES,
        tmp_path,
        since=data.WEEK_START,
        now=data.NOW,
    )
    feed = feedparser.parse((tmp_path / "feed.atom").read_bytes())

    base = "https://fdawatch.clinic.example/digest/"
    assert {entry.link for entry in feed.entries} == {
        f"{base}changes/{i}.html" for i in (1, 2, 3, 4)
    }
    assert feed.feed.link == f"{base}index.html"


def test_stored_versions_can_be_read_on_the_site(site: BuiltSite) -> None:
    source = parse(site.root / "sources" / "fda_spravato_rems.html")
    versions = sorted(h for h in source.hrefs if h.startswith("../versions/"))
    assert len(versions) == 2
    newest = parse(site.root / versions[-1].removeprefix("../"))

    assert data.REMS_ADDED in newest.visible_text
    change = parse(site.root / "changes" / f"{site.history.rems}.html")
    assert set(versions) <= set(change.hrefs)


DEVELOPER_WORDS = (
    "Kind",
    "HTTP",
    "Recent fetches",
    "Docs",
    "newest)",
    "Atom feed",
    "fdawatch show",
)


def test_owner_pages_speak_plainly_and_explain_the_severity_levels(site: BuiltSite) -> None:
    index = parse(site.root / "index.html").visible_text
    source = parse(site.root / "sources" / "fda_spravato_rems.html").visible_text

    assert [word for word in DEVELOPER_WORDS if word in source] == []
    # the index quotes a failing source's recorded error ("HTTP 503 …"), and nothing else of these
    assert [word for word in DEVELOPER_WORDS if word in index] == ["HTTP"]
    assert index.count("HTTP") == 1
    assert "What the severity levels mean" in index
    for tier in ("T1", "T2", "T3", "T4", "T5"):
        assert f"{tier} {TIER_NAMES[tier]} {TIER_MEANINGS[tier]}" in " ".join(index.split())
    assert "What it isa web page" in source  # a table row: header cell, then value
    assert "Statusworking" in source
    assert "Recent checks" in source and "Stored versions" in source
