"""The digest site in a real headless Chromium (Debian's /usr/bin/chromium driven by Playwright).

Skipped, with the reason shown, only when Chromium or Playwright is missing on a developer's
machine; in CI (CI=true) a missing browser fails the run instead. Screenshots are written to
var/test-artifacts/ for a person to look at.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from db.models import Change
from monitor.cli.digest import serve_in_thread
from monitor.config import Settings
from monitor.delivery.render import alert_email, change_view
from tests.support import digest_history
from tests.support.digest_history import BuiltSite
from tests.support.paths import ROOT

CHROMIUM = Path(os.environ.get("FDAWATCH_CHROMIUM", "/usr/bin/chromium"))
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}
ARTIFACTS = ROOT / "var" / "test-artifacts"


def _missing() -> str | None:
    if not CHROMIUM.is_file():
        return f"{CHROMIUM} is missing: apt-get install -y chromium (make test does this)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is missing: pip install -e '.[test]'"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    missing = _missing()
    if missing:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI needs the browser tests: {missing}")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def base_url(site: BuiltSite) -> Iterator[str]:
    """The site as `fdawatch serve` serves it, on a free loopback port."""
    server, url = serve_in_thread(site.root)
    yield url
    server.shutdown()
    server.server_close()


class Visit:
    """A phone-sized page that records console errors and uncaught exceptions."""

    def __init__(self, browser: Any) -> None:
        self.page = browser.new_page(viewport=PHONE)
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.dialogs: list[str] = []
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

    def open(self, url: str) -> Any:
        response = self.page.goto(url, wait_until="load")
        assert response is not None and response.ok, url
        return self.page

    def scroll_width(self) -> int:
        return int(self.page.evaluate("document.documentElement.scrollWidth"))

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / name
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def visit(browser: Any) -> Iterator[Visit]:
    visitor = Visit(browser)
    yield visitor
    visitor.page.close()


def test_index_lists_the_t1_change_first_and_fits_a_phone(
    visit: Visit, base_url: str, site: BuiltSite
) -> None:
    page = visit.open(base_url + "index.html")
    first = page.locator("main li.item").first
    assert first.get_attribute("data-severity") == "T1"
    assert "pulse oximeter" in first.inner_text()
    assert first.locator("a.headline").get_attribute("href") == f"changes/{site.history.rems}.html"
    assert page.get_by_role("heading", name="Sources needing attention").is_visible()
    assert page.get_by_role("main").is_visible() and page.get_by_role("navigation").is_visible()
    assert visit.scroll_width() <= PHONE["width"]
    assert visit.screenshot("digest-index-390.png").stat().st_size > 10_000
    assert visit.errors == [] and visit.dialogs == []


def test_change_page_highlights_inserted_words_and_fits_a_phone(
    visit: Visit, base_url: str, site: BuiltSite
) -> None:
    page = visit.open(base_url + f"changes/{site.history.ketamine}.html")
    inserted = page.locator("main section ins", has_text="health care provider after each dose")
    assert inserted.count() == 2  # inline and side by side
    for index in range(inserted.count()):
        assert inserted.nth(index).is_visible()
    background = inserted.first.evaluate("e => getComputedStyle(e).backgroundColor")
    assert background not in ("rgba(0, 0, 0, 0)", "transparent")
    evidence = page.get_by_role("link", name="Download the evidence bundle (zip)")
    assert evidence.get_attribute("href") == f"../evidence/change-{site.history.ketamine}.zip"
    assert visit.scroll_width() <= PHONE["width"]
    visit.screenshot("digest-change-390.png")
    assert visit.errors == [] and visit.dialogs == []


def test_clicking_from_the_index_reaches_the_t1_change_page(
    visit: Visit, base_url: str, site: BuiltSite
) -> None:
    page = visit.open(base_url + "index.html")
    page.locator("main li.item a.headline").first.click()
    page.wait_for_load_state("load")
    assert page.url == base_url + f"changes/{site.history.rems}.html"
    assert page.locator("main ins", has_text="pulse oximeter").first.is_visible()
    assert visit.errors == []


def test_hostile_change_runs_nothing_and_shows_its_markup_as_text(
    visit: Visit, base_url: str, site: BuiltSite
) -> None:
    page = visit.open(base_url + f"changes/{site.history.hostile}.html")
    assert page.locator("script, img, iframe").count() == 0
    assert page.locator("a[href^='javascript:']").count() == 0
    assert '<script>alert("title")</script>' in page.locator("h1").inner_text()
    document = page.locator("table.facts td").first.inner_text()
    assert document == "<script>alert('change title')</script><img src=x onerror=alert(3)>"
    assert visit.dialogs == [] and visit.errors == []
    assert visit.scroll_width() <= PHONE["width"]
    visit.screenshot("digest-hostile-390.png")


def test_the_site_reads_from_disk_too(visit: Visit, site: BuiltSite) -> None:
    page = visit.page
    page.goto((site.root / "sources" / "fda_spravato_rems.html").as_uri())
    assert page.get_by_role("heading", level=1).inner_text().startswith("REMS@FDA: Spravato")
    assert visit.scroll_width() <= PHONE["width"]
    assert visit.errors == []


def test_chromium_is_the_debian_build(browser: Any) -> None:
    """The browser driven is Debian's `chromium` package (apt), not a build Playwright fetched."""
    assert shutil.which("chromium") is not None or CHROMIUM.is_file()
    query = ["dpkg-query", "--show", "--showformat=${Version}", "chromium"]
    package = subprocess.run(query, capture_output=True, text=True, check=False)
    assert package.returncode == 0, package.stderr
    assert package.stdout.startswith(f"{browser.version}-"), (package.stdout, browser.version)


def test_a_multi_change_alert_email_fits_a_phone_and_leads_with_the_overview(
    visit: Visit, site: BuiltSite
) -> None:
    settings = Settings(site_url="https://fdawatch.clinic.example/")
    with Session(site.engine) as session:
        changes = session.exec(select(Change)).all()
        views = [change_view(session, c, settings, digest_history.SOURCES) for c in changes]
    views.sort(key=lambda view: view.severity)
    message = alert_email(
        views, [], settings=settings, recipients=["owner@clinic.example"],
        message_id="<test@clinic.example>", now=digest_history.NOW,
    )  # fmt: skip
    html = message.get_body(("html",))
    assert html is not None
    page = visit.page
    page.set_content(str(html.get_content()), wait_until="load")

    overview = page.get_by_role("heading", name="In this email")
    first_card = page.locator("div.change").first
    assert overview.bounding_box()["y"] < first_card.bounding_box()["y"]
    assert page.locator("div.overview li").count() == len(views)
    button = first_card.get_by_role("link", name="View change & evidence")
    assert button.is_visible() and button.bounding_box()["width"] <= PHONE["width"]
    assert page.get_by_text("How to read this email.").is_visible()
    assert visit.scroll_width() <= PHONE["width"]
    assert visit.screenshot("alert-email-390.png").stat().st_size > 10_000
    assert visit.errors == [] and visit.dialogs == []
