"""Hostile scraped content and secrets, through real crawls, `alerts send`, the site and logs.

One deployment: a feed whose new items carry `<script>`, event-handler attributes,
`javascript:` / `data:` links and a CR/LF header-injection attempt in the title, plus openFDA
sources crawled with `FDAWATCH_OPENFDA_API_KEY` set: one fails (so Scrapy logs its URL while
retrying), two answer with a `Link: rel="next"` to another host and to another port (which must
never be requested). The database URL carries a password (a SQLite URI parameter, which SQLite
ignores), so every command and the crawl child hold it. Two crawls run at DEBUG log level, a
third through `fdawatch crawl`; then `alerts send` logs in to SMTP with a password, and
`status`, `changes`, `history`, `show`, `digest`, `alerts preview` and `evidence` run, as do
two commands that fail on the database and print its URL. The hostile markup must be inert
everywhere, and no secret may appear in any output, log, file (.eml, site, evidence zip
members), delivered email or database column (zlib-compressed bodies decompressed).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from db.engine import open_database
from db.models import Change, CrawlRun, Fetch
from monitor.config import load_settings
from monitor.history.writer import HistoryWriter
from monitor.sources import load_sources
from tests.support.deployment import child_env, fdawatch, item, rss, stored_values, write_deployment
from tests.support.loopback import Answer, LoopbackServer
from tests.support.paths import FIXTURES
from tests.support.smtp import PASSWORD, USER, SmtpServer

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


DB_PASSWORD = "Db-pa55word-c41e"  # in the database URL (SQLite ignores the URI parameter)
SECRETS = {"openFDA key": API_KEY, "SMTP password": PASSWORD, "database password": DB_PASSWORD}
LABEL = json.loads((FIXTURES / "openfda" / "SYNTHETIC-spravato-label-v1.json").read_text())


@dataclass
class World:
    folder: Path
    env: dict[str, str]
    crawl_log: str
    outputs: list[str]
    received: list[EmailMessage]
    site: Path
    preview: Path
    thief_hits: list[str]  # requests that reached another origin (another host or port)
    fetch_errors: dict[str, str | None]


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


def _keyed(target: str) -> str:
    return target.replace("?", f"?api_key={API_KEY}&", 1)  # openFDA's advice: key first


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("injection")
    with (
        LoopbackServer() as server,
        LoopbackServer() as thief,
        SmtpServer(auth=True, accept=True) as smtp,
    ):
        label = "/drug/label.json?search=openfda.generic_name:ketamine&limit=1"
        away = "/drug/label.json?search=openfda.generic_name:esketamine&limit=1"
        other_port = "/drug/label.json?search=openfda.brand_name:spravato&limit=1"
        env = write_deployment(
            folder,
            [
                ("hostile_feed", "feed", f"{server.url}/feed"),
                ("openfda_ketamine_label", "openfda_label", f"{server.url}{label}"),
                ("openfda_link_other_host", "openfda_label", f"{server.url}{away}"),
                ("openfda_link_other_port", "openfda_label", f"{server.url}{other_port}"),
            ],
        )
        env["FDAWATCH_OPENFDA_API_KEY"] = API_KEY
        db_file = folder / "history.db"
        env["FDAWATCH_DATABASE_URL"] = f"sqlite:///file:{db_file}?password={DB_PASSWORD}&uri=true"
        json_type = {"Content-Type": "application/json"}
        server.script(_keyed(label), Answer(500, b'{"error": "boom"}', json_type))
        for target, next_url in (
            (away, f"http://localhost:{server.port}/steal?search=x"),  # another host
            (other_port, f"{thief.url}/steal?search=x"),  # the same host, another port
        ):
            headers = {**json_type, "Link": f'<{next_url}>; rel="next"'}
            server.script(_keyed(target), Answer(200, json.dumps(LABEL).encode(), headers))
        ids = [
            "hostile_feed",
            "openfda_ketamine_label",
            "openfda_link_other_host",
            "openfda_link_other_port",
        ]
        server.script("/feed", Answer(200, rss([SAFE]).encode(), RSS_TYPE))
        log = _crawl(env, env["FDAWATCH_DATABASE_URL"], ids)
        server.script("/feed", Answer(200, rss([SAFE, *HOSTILE]).encode(), RSS_TYPE))
        log += _crawl(env, env["FDAWATCH_DATABASE_URL"], ids)
        assert any(hit.target == _keyed(label) for hit in server.hits), server.hits
        mail_env = {
            **env,
            "FDAWATCH_SMTP_HOST": "127.0.0.1",
            "FDAWATCH_SMTP_PORT": str(smtp.port),
            "FDAWATCH_SMTP_USER": USER,
            "FDAWATCH_SMTP_PASSWORD": PASSWORD,
        }
        outputs = []
        for args in (
            ("crawl", "--all", "--no-send"),  # a third crawl, through the command line
            ("alerts", "send"),
            ("alerts", "list", "--json"),
            ("changes", "--json"),
            ("status",),
            ("status", "--json"),
            ("sources",),
            ("history", "openfda_ketamine_label"),
            ("history", "openfda_link_other_port"),
        ):
            result = fdawatch(mail_env, *args, cwd=folder)
            assert result.returncode == 0, result.stderr
            outputs.append(result.stdout + result.stderr)
        site = folder / "site"
        engine = open_database(env["FDAWATCH_DATABASE_URL"])
        with Session(engine) as session:
            first = session.exec(select(Change.id)).first()
            fetches = session.exec(select(Fetch).order_by(col(Fetch.id))).all()
            errors = {fetch.source_id: fetch.error for fetch in fetches}  # each source's last
        engine.dispose()
        preview = folder / "preview.eml"
        for args in (
            ("digest", "--since", "30d", "--dir", str(site)),
            ("alerts", "preview", str(first), "--out", str(preview)),
            ("show", str(first)),
            ("evidence", str(first), "--out", str(folder / "evidence" / "change.zip")),
        ):
            result = fdawatch(mail_env, *args, cwd=folder)
            assert result.returncode == 0, result.stderr
            outputs.append(result.stdout + result.stderr)
        # Two commands that fail on the database print its URL: masked, too.
        (folder / "garbage.db").write_bytes(b"not a database " * 64)
        for url, args in (
            (  # a read-only database refuses the crawl's first write
                env["FDAWATCH_DATABASE_URL"].replace("?", "?mode=ro&", 1),
                ("crawl", "hostile_feed", "--no-send"),
            ),
            (  # not a database at all
                f"sqlite:///file:{folder / 'garbage.db'}?password={DB_PASSWORD}&uri=true",
                ("alerts", "send"),
            ),
        ):
            result = fdawatch({**mail_env, "FDAWATCH_DATABASE_URL": url}, *args, cwd=folder)
            assert result.returncode == 2 and "fdawatch: error: " in result.stderr, result.stderr
            assert "password=***" in result.stderr
            outputs.append(result.stdout + result.stderr)
        received = [m.message for m in smtp.inbox.messages]
        stolen = [hit.target for hit in thief.hits] + [
            hit.target for hit in server.hits if hit.target.startswith("/steal")
        ]
    yield World(folder, env, log, outputs, received, site, preview, stolen, errors)


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


def test_the_openfda_key_is_sent_only_to_the_sources_own_origin(world: World) -> None:
    """A `Link: rel="next"` to another host or port is never requested, with or without key."""
    assert world.thief_hits == []
    for source_id in ("openfda_link_other_host", "openfda_link_other_port"):
        error = world.fetch_errors[source_id] or ""
        assert error.startswith("the next page is on another server (http://"), error
        assert "/steal?search=x), not the source's http://127.0.0.1:" in error


def _found_in_database(db_file: Path, secret: bytes) -> list[str]:
    """Every column of every row, packed bodies and texts unpacked: where `secret` is."""
    return sorted(
        {f"database table {table}" for table, data in stored_values(db_file) if secret in data}
    )


def _found_in_files(folder: Path, secret: bytes) -> list[str]:
    """Every file of the deployment (logs, outbox .eml, site, evidence zips opened up)."""
    found = []
    for path in folder.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as bundle:
                data += b"".join(bundle.read(name) for name in bundle.namelist())
        if secret in data:
            found.append(str(path.relative_to(folder)))
    return found


def test_the_sweep_sees_what_it_searches(world: World) -> None:
    """The premises: the key was used (and logged redacted), the password logged in to SMTP,
    the database password was in the URL every command used, and there was much to search."""
    assert "api_key=REDACTED" in world.crawl_log
    assert world.received
    assert DB_PASSWORD in world.env["FDAWATCH_DATABASE_URL"]
    files = [p.name for p in world.folder.rglob("*") if p.is_file()]
    assert {"history.db", "preview.eml", "change.zip", "feed.atom"} <= set(files), files
    with zipfile.ZipFile(world.folder / "evidence" / "change.zip") as bundle:
        assert "manifest.json" in bundle.namelist()
    # Feed bodies are stored packed (zstd): only the unpacking search finds their text.
    assert b"onerror=alert" not in (world.folder / "history.db").read_bytes()
    assert "database table blob" in _found_in_database(world.folder / "history.db", b"onerror")


@pytest.mark.parametrize("what", SECRETS)
def test_no_secret_is_in_any_output_log_file_row_or_email(world: World, what: str) -> None:
    secret = SECRETS[what]
    texts = {
        "crawl log": world.crawl_log,
        **{f"output #{n}": o for n, o in enumerate(world.outputs)},
    }
    texts |= {f"email {m['Subject']}": m.as_string() for m in world.received}
    found = [where for where, text in texts.items() if secret in text]
    found += _found_in_files(world.folder, secret.encode())
    found += _found_in_database(world.folder / "history.db", secret.encode())
    assert found == [], f"the {what} leaked into {found}"
