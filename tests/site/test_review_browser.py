"""The review flow in the real headless Chromium, at phone width: open the signed link from the
alert email, submit the form, and see the review on the change page, in the review queue and in
`fdawatch audit`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner

from db.engine import open_database
from monitor.cli import cli
from monitor.cli.digest import serve_in_thread
from monitor.site.build import build_site
from tests.site.test_browser import Visit, browser  # noqa: F401  (the module's Chromium)
from tests.support import alert_history as factory
from tests.support.alert_history import NOW, SOURCES, queue_change
from tests.support.review_history import review_links_in, review_settings, send

LATER = NOW + timedelta(hours=3)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """A history with change 1 alerted to Alice, the site, and `fdawatch serve` on both;
    yields the database URL, the base URL and Alice's review link pointed at that server."""
    url = f"sqlite:///{tmp_path / 'history.db'}"
    engine = open_database(url)
    queue_change(engine, [factory.ALICE, factory.BOB])
    _, mail = send(engine, review_settings(), NOW)
    alice = next(m for m in mail.messages if m["To"] == factory.ALICE.email)
    (link,) = review_links_in(alice)
    build_site(engine, review_settings(), SOURCES, tmp_path / "site", since=NOW, now=LATER)
    server, base = serve_in_thread(
        tmp_path / "site", settings=review_settings(), history=lambda: engine, now=lambda: LATER
    )
    parts = urlsplit(link)
    yield url, base, f"{base.rstrip('/')}{parts.path}?{parts.query}"
    server.shutdown()
    engine.dispose()


@pytest.fixture
def visit(browser: Any) -> Iterator[Visit]:  # noqa: F811
    visitor = Visit(browser)
    yield visitor
    visitor.page.close()


def test_a_reviewer_records_a_review_from_the_email_link_on_a_phone(
    visit: Visit, served: tuple[str, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    database, base, link = served
    page = visit.open(link)
    assert page.get_by_text("Reviewing as alice@pharmacy.example.").is_visible()
    assert visit.scroll_width() <= 390
    visit.screenshot("review-form-390.png")
    page.get_by_label("action-needed").check()
    page.get_by_label("Note").fill("Update the leaflet, then tell pharmacists")
    page.get_by_role("button", name="Record review").click()
    page.wait_for_url(f"{base}change/1?reviewed=1")

    assert page.get_by_role("status").inner_text() == "Your review of change 1 is recorded."
    assert page.locator("#reviews li").all_inner_texts() == [
        "action-needed by alice@pharmacy.example on 2023-10-10 17:35 UTC: Update the leaflet, "
        "then tell pharmacists (current)"
    ]
    assert visit.scroll_width() <= 390
    visit.screenshot("review-recorded-390.png")

    queue = visit.open(base + "queue")
    assert queue.get_by_text("0 waiting for a review").is_visible()
    assert visit.errors == [] and visit.dialogs == []

    monkeypatch.setenv("FDAWATCH_CONFIG", "")
    audit = CliRunner().invoke(
        cli, ["--database", database, "audit", "--since", "2023-10-01", "--format", "json"]
    )
    assert audit.exit_code == 0, audit.output
    rows = [json.loads(line) for line in audit.stdout.splitlines()]
    assert [
        (r["recipient"], r["review_state"], r["reviewer"], r["disposition"], r["reviewed_at"])
        for r in rows
    ] == [
        (recipient, "acknowledged", "alice@pharmacy.example", "action-needed",
         "2023-10-10T17:35:00+00:00")
        for recipient in ("alice@pharmacy.example", "bob@pharmacy.example")
    ]  # fmt: skip
