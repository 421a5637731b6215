"""Hostile scraped content and secrets, through a real crawl, `alerts send`, the site and logs.

One deployment: a feed whose new items carry `<script>`, event-handler attributes,
`javascript:` / `data:` links and a CR/LF header-injection attempt in the title, plus an openFDA
source crawled with `FDAWATCH_OPENFDA_API_KEY` set (it fails, so Scrapy logs its URL while
retrying), at DEBUG log level. Then `fdawatch alerts send` logs in to SMTP with a password,
`fdawatch digest` writes the site and `fdawatch alerts preview` an .eml. The hostile markup must
be inert everywhere, and neither secret may appear in any log, output, file or database byte.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlmodel import Session, select

from db.engine import open_database
from db.models import Change, CrawlRun
from monitor.config import load_settings
from monitor.history.writer import HistoryWriter
from monitor.sources import load_sources
from tests.reliability.conftest import PASSWORD, USER, Smtp
from tests.reliability.helpers import child_env, db_bytes, fdawatch, item, rss, write_deployment
from tests.reliability.hostile import Answer, HostileServer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning"),
]

API_KEY = "OPENFDA-KEY-9d41c7e2a8"
RSS_TYPE = {"Content-Type": "application/rss+xml; charset=utf-8"}
SAFE = item(
    "Compounded ketamine alert (SYNTHETIC)",
    "https://www.fda.gov/ketamine-a",
    description="Compounded ketamine risks.",
)
HOSTILE = [
    item(
        "Ketamine &lt;script&gt;alert('title')&lt;/script&gt; recall (SYNTHETIC)",
        "https://www.fda.gov/ketamine-script",
        description="&lt;p&gt;Compounded ketamine&lt;script&gt;alert('body')&lt;/script&gt;"
        "&lt;img src=x onerror=alert('img')&gt;&lt;/p&gt;",
    ),
    item(
        "Ketamine notice with a javascript link (SYNTHETIC)",
        "javascript:alert('link')",
        description="ketamine &lt;a href=\"javascript:alert('a')\"&gt;click&lt;/a&gt;",
    ),
    item(
        "Ketamine notice with a data link (SYNTHETIC)",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        description='ketamine &lt;a href="data:text/html,&amp;lt;script&amp;gt;"&gt;x&lt;/a&gt;',
    ),
    item(
        "Ketamine recall&#13;&#10;Bcc: attacker@evil.example&#13;&#10;X-Injected: yes (SYNTHETIC)",
        "https://www.fda.gov/ketamine-crlf",
        description="ketamine header injection attempt",
    ),
    item(
        "Ketamine \x1b[31mred\x1b[0m terminal escape (SYNTHETIC)".replace("\x1b", "&#27;"),
        "https://www.fda.gov/ketamine-ansi",
        description="ketamine log injection attempt",
    ),
]


@dataclass
class World:
    folder: Path
    env: dict[str, str]
    crawl_log: str
    outputs: list[str]
    received: list[EmailMessage]
    site: Path
    preview: Path


def _crawl(env: dict[str, str], engine_url: str, ids: list[str]) -> str:
    """The crawl child itself at DEBUG level, so its whole log can be searched."""
    settings = load_settings(env)
    engine = open_database(engine_url)
    with Session(engine) as session:
        HistoryWriter(list(load_sources(settings.sources_path).values())).sync_sources(session)
        run = CrawlRun(started_at=datetime.now(UTC), source_ids=ids)
        session.add(run)
        session.commit()
        run_id = run.id
    engine.dispose()
    child = subprocess.run(
        [
            sys.executable,
            "-m",
            "monitor.runtime.crawl_process",
            "--run-id",
            str(run_id),
            "--log-level",
            "DEBUG",
            *ids,
        ],
        env=child_env(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    return child.stdout + child.stderr


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("injection")
    with HostileServer() as server, Smtp(auth=True, accept=True) as smtp:
        label = "/drug/label.json?search=openfda.generic_name:ketamine&limit=1"
        env = write_deployment(
            folder,
            [
                ("hostile_feed", "feed", f"{server.url}/feed"),
                ("openfda_ketamine_label", "openfda_label", f"{server.url}{label}"),
            ],
        )
        env["FDAWATCH_OPENFDA_API_KEY"] = API_KEY
        keyed = label.replace("?", f"?api_key={API_KEY}&", 1)  # openFDA's advice: key first
        server.script(
            keyed, Answer(500, b'{"error": "boom"}', {"Content-Type": "application/json"})
        )
        ids = ["hostile_feed", "openfda_ketamine_label"]
        server.script("/feed", Answer(200, rss([SAFE]).encode(), RSS_TYPE))
        log = _crawl(env, env["FDAWATCH_DATABASE_URL"], ids)
        server.script("/feed", Answer(200, rss([SAFE, *HOSTILE]).encode(), RSS_TYPE))
        log += _crawl(env, env["FDAWATCH_DATABASE_URL"], ids)
        assert any(hit.target == keyed for hit in server.hits), server.hits
        mail_env = {
            **env,
            "FDAWATCH_SMTP_HOST": "127.0.0.1",
            "FDAWATCH_SMTP_PORT": str(smtp.port),
            "FDAWATCH_SMTP_USER": USER,
            "FDAWATCH_SMTP_PASSWORD": PASSWORD,
        }
        outputs = []
        for args in (
            ("alerts", "send"),
            ("alerts", "list", "--json"),
            ("changes", "--json"),
            ("status",),
            ("history", "openfda_ketamine_label"),
        ):
            result = fdawatch(mail_env, *args, cwd=folder)
            assert result.returncode == 0, result.stderr
            outputs.append(result.stdout + result.stderr)
        site = folder / "site"
        engine = open_database(env["FDAWATCH_DATABASE_URL"])
        with Session(engine) as session:
            first = session.exec(select(Change.id)).first()
        engine.dispose()
        preview = folder / "preview.eml"
        for args in (
            ("digest", "--since", "30d", "--out", str(site)),
            ("alerts", "preview", str(first), "--out", str(preview)),
        ):
            result = fdawatch(mail_env, *args, cwd=folder)
            assert result.returncode == 0, result.stderr
            outputs.append(result.stdout + result.stderr)
        received = [m.message for m in smtp.inbox.messages]
    yield World(folder, env, log, outputs, received, site, preview)


def test_the_hostile_items_were_recorded_and_alerted(world: World) -> None:
    """The premise: every hostile item is a change that reached the inbox."""
    text = "\n".join(str(m.get_body(("plain",)).get_content()) for m in world.received)  # type: ignore[union-attr]
    for needle in ("javascript link", "data link", "Bcc: attacker", "terminal escape"):
        assert needle in text


def test_email_subjects_and_headers_cannot_be_injected(world: World) -> None:
    for message in world.received:
        for name, value in message.items():
            assert "\r" not in str(value) and "\n" not in str(value), name
        assert message.get_all("Bcc") is None and message.get_all("X-Injected") is None
        assert message["To"] == "ops@clinic.example"


SCRIPTABLE = [
    re.compile(r"<script", re.IGNORECASE),
    re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.IGNORECASE),  # an event handler inside a tag
    re.compile(r"""(href|src)\s*=\s*["']?\s*(javascript|data:text)""", re.IGNORECASE),
]


def _inert(html: str, where: str) -> None:
    for pattern in SCRIPTABLE:
        assert not pattern.search(html), f"{where}: {pattern.pattern}"


def test_email_html_is_inert(world: World) -> None:
    for message in world.received:
        html = message.get_body(("html",))
        assert html is not None
        _inert(str(html.get_content()), str(message["Subject"]))


def test_the_digest_site_is_inert(world: World) -> None:
    pages = list(world.site.rglob("*.html")) + list(world.site.rglob("*.atom"))
    assert len(pages) > 3
    for path in pages:
        _inert(path.read_text(encoding="utf-8"), str(path))


def test_logs_and_command_output_carry_no_control_characters(world: World) -> None:
    for text in [world.crawl_log, *world.outputs]:
        assert "\x1b" not in text
        assert not re.search(r"^Bcc:", text, re.MULTILINE)


def test_the_openfda_key_is_never_logged_stored_or_rendered(world: World) -> None:
    assert "api_key=REDACTED" in world.crawl_log  # the log did mention the keyed URL
    for text in [world.crawl_log, *world.outputs]:
        assert API_KEY not in text
    assert API_KEY.encode() not in db_bytes(world.folder / "history.db")
    assert API_KEY.encode() not in world.preview.read_bytes()
    for path in world.site.rglob("*"):
        if path.is_file():
            assert API_KEY.encode() not in path.read_bytes(), path


def test_the_smtp_password_is_never_logged_stored_or_rendered(world: World) -> None:
    assert world.received, "the password did log in"
    for text in world.outputs:
        assert PASSWORD not in text
    assert PASSWORD.encode() not in db_bytes(world.folder / "history.db")
    assert PASSWORD.encode() not in world.preview.read_bytes()
    for message in world.received:
        assert PASSWORD not in message.as_string()
    for path in world.site.rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path
