"""What the live FDA does to a watcher, replayed on loopback: blocks, moves, removals, cut bodies.

Five crawls (`run_crawl`, one child process each) of sources spread over several loopback
servers — one per CDN behaviour, because a block makes the whole host wait — each source
answering its own script per crawl:

* www.fda.gov's Akamai answers a bot with a 302 to `/apology_objects/abuse-detection-apology.html`
  (which itself answers 404), with `403 Access Denied … Reference #…` from `AkamaiGHost`, or with a
  200 challenge page; robots.txt can be refused the same way. Each must be `blocked` — never a
  content change, never a removal — with one "source blocked" notice at the threshold and one
  "recovered" notice after;
* a removal counts only after `confirm_removal` (2) 404s in a row at the page's own URL; a
  permanent redirect is one `moved` change, after which content is compared as usual;
* transfers cut short (no length and an early close, a gzip stream cut with a matching
  Content-Length, a feed cut in the middle of an item) are failed fetches; a page that shrinks to a
  fraction of its text is fetched again (the second look) and raised only if the second look agrees.

Every page and feed here is SYNTHETIC, built on the fda.gov structure; the block pages copy the
shape of Akamai's and Cloudflare's interstitials (see spiders/blocks.py).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from db.engine import open_database
from db.models import Alert, Change, Fetch, Source
from monitor.config import load_settings
from monitor.runtime.crawl import run_crawl
from monitor.sources import load_sources
from tests.support.deployment import child_env, fdawatch, integrity, item, page, rss
from tests.support.loopback import Answer, LoopbackServer

pytestmark = pytest.mark.slow

HTML = {"Content-Type": "text/html; charset=utf-8"}
RSS = {"Content-Type": "application/rss+xml; charset=utf-8"}
AKAMAI = {"Server": "AkamaiGHost", "Content-Type": "text/html", "Mime-Version": "1.0"}
APOLOGY = "/apology_objects/abuse-detection-apology.html"
ACCESS_DENIED = (
    b"<HTML><HEAD>\n<TITLE>Access Denied</TITLE>\n</HEAD><BODY>\n<H1>Access Denied</H1>\n \n"
    b'You don\'t have permission to access "http&#58;&#47;&#47;www&#46;fda&#46;gov&#47;drugs&#47;" '
    b"on this server.<P>\nReference&#32;&#35;18&#46;4f2d3b17&#46;1764950400&#46;2a1b3c4d\n"
    b"<P>https&#58;&#47;&#47;errors&#46;edgesuite&#46;net&#47;18&#46;4f2d3b17\n</BODY>\n</HTML>\n"
)
CHALLENGE = (
    b'<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title>'
    b'<meta http-equiv="refresh" content="390"></head><body><div class="main-wrapper">'
    b"<noscript>Enable JavaScript and cookies to continue</noscript>"
    b'<script src="/cdn-cgi/challenge-platform/h/b/orchestrate/chl_page/v1"></script>'
    b"</div></body></html>"
)
PARAGRAPHS = [
    f"Paragraph {n}: FDA is aware that compounded ketamine products are marketed for use at "
    f"home, without monitoring by a health care provider ({n})."
    for n in range(1, 301)
]
LONG_PAGE = page("</p><p>".join(PARAGRAPHS)).encode()
FEW_PAGE = page("</p><p>".join(PARAGRAPHS[:30])).encode()  # 10 % of the text
ERROR_PAGE = page("Service Unavailable. Please try again later.").encode()
EDITED = page("FDA warns that compounded ketamine must not be used at home.").encode()
SHORT_PAGE = page("FDA is aware of compounded ketamine products marketed for use at home.").encode()
FEED_ITEMS = [
    item(
        f"FDA alert {n} on compounded ketamine (SYNTHETIC)",
        f"https://www.fda.gov/drugs/ketamine-alert-{n}",
        description=f"Compounded ketamine risks, part {n}. " * 8,
    )
    for n in range(1, 21)
]
FEED = rss(FEED_ITEMS).encode()
FEED_CUT = FEED[: FEED.index(b"part 13.") + 4]  # in the middle of item 13's description
ROBOTS_OK = b"User-agent: *\nAllow: /\n"
GZIPPED = gzip.compress(LONG_PAGE)
GZIP_CUT = GZIPPED[: len(GZIPPED) * 6 // 10]


@dataclass(frozen=True)
class Script:
    """One source: its kind, server, path, and what it answers in crawls 0-4 (None: as before)."""

    source_id: str
    kind: str
    server: str
    path: str
    crawls: tuple[tuple[Answer, ...] | None, ...]
    routes: dict[str, tuple[Answer, ...]] = field(default_factory=dict)  # other paths it uses


def ok(body: bytes = SHORT_PAGE, headers: dict[str, str] = HTML) -> tuple[Answer, ...]:
    return (Answer(200, body, headers),)


APOLOGY_REDIRECT = (Answer(302, b"", {"Location": APOLOGY, "Server": "AkamaiGHost"}),)
SCRIPTS = [
    Script(
        "apology_redirect", "page", "apology", "/drugs/alert",
        (ok(), APOLOGY_REDIRECT, None, ok(), None),
        {APOLOGY: (Answer(404, b"Not found", {"Content-Type": "text/plain"}),)},
    ),
    Script(
        "akamai_403", "page", "akamai", "/drugs/alert",
        (ok(), (Answer(403, ACCESS_DENIED, AKAMAI),), None, ok(), None),
    ),
    Script(
        "challenge_feed", "feed", "challenge", "/rss.xml",
        (ok(FEED, RSS), (Answer(200, CHALLENGE, {"Content-Type": "text/html"}),), None,
         ok(FEED, RSS), None),
    ),
    Script(
        "robots_refused", "page", "robots", "/drugs/alert",
        (ok(), None, None, None, None),
        {"/robots.txt": (Answer(200, ROBOTS_OK, {"Content-Type": "text/plain"}),)},
    ),
    # -- removals and moves (one ordinary server) ---------------------------------------------
    Script(
        "removed_page", "page", "main", "/drugs/removed",
        (ok(), (Answer(404, b"gone"),), ok(), (Answer(404, b"gone"),), None),
    ),
    Script(
        "moved_page", "page", "main", "/drugs/old",
        (ok(), (Answer(301, b"", {"Location": "/drugs/new"}),), None, None, None),
        {"/drugs/new": (Answer(200, SHORT_PAGE, HTML),)},
    ),
    Script(
        "redirect_to_404", "page", "main", "/drugs/elsewhere",
        (ok(), (Answer(302, b"", {"Location": "/drugs/nowhere"}),), None, ok(), None),
        {"/drugs/nowhere": (Answer(404, b"gone"),)},
    ),
    # -- transfers cut short ------------------------------------------------------------------
    Script(
        "cut_no_length", "page", "main", "/drugs/long",
        (ok(LONG_PAGE), (Answer(200, LONG_PAGE[: len(LONG_PAGE) * 6 // 10], HTML, length=-1),),
         ok(LONG_PAGE), None, None),
    ),
    Script(
        "cut_gzip", "page", "main", "/drugs/gzip",
        (ok(GZIPPED, {**HTML, "Content-Encoding": "gzip"}),
         (Answer(200, GZIP_CUT, {**HTML, "Content-Encoding": "gzip"}),),
         ok(GZIPPED, {**HTML, "Content-Encoding": "gzip"}), None, None),
    ),
    Script(
        "cut_feed", "feed", "main", "/cut.xml",
        (ok(FEED, RSS), (Answer(200, FEED_CUT, RSS, length=-1),), ok(FEED, RSS), None, None),
    ),
    Script(
        "cut_feed_with_length", "feed", "main", "/cut-length.xml",
        (ok(FEED, RSS), (Answer(200, FEED_CUT, RSS),), ok(FEED, RSS), None, None),
    ),
    # -- the second look ----------------------------------------------------------------------
    Script(
        "shrunk_once", "page", "main", "/drugs/shrunk-once",
        (ok(LONG_PAGE), (Answer(200, FEW_PAGE, HTML), Answer(200, LONG_PAGE, HTML)), None, None,
         None),
    ),
    Script(
        "shrunk_for_real", "page", "main", "/drugs/shrunk",
        (ok(LONG_PAGE), (Answer(200, FEW_PAGE, HTML),), None, None, None),
    ),
    Script(
        "error_page_200", "page", "main", "/drugs/error",
        (ok(LONG_PAGE), (Answer(200, ERROR_PAGE, HTML),), ok(LONG_PAGE), None, None),
    ),
    Script(
        "edited_page", "page", "main", "/drugs/edited",
        (ok(), (Answer(200, EDITED, HTML),), None, None, None),
    ),
]  # fmt: skip
SERVERS = ("main", "apology", "akamai", "challenge", "robots")
CONFIG = """\
[crawl]
delay = 0
concurrency_per_host = 1
timeout = 5
retries = 0
obey_robots = true
second_look_delay = 0.2
blocked_backoff = 0

[health]
failure_threshold = 2

[[recipient]]
email = "ops@clinic.example"
"""


@dataclass
class Crawls:
    folder: Path
    env: dict[str, str]
    servers: dict[str, LoopbackServer]
    fetches: list[dict[str, Fetch]] = field(default_factory=list)
    every_fetch: list[Fetch] = field(default_factory=list)
    changes: list[list[Change]] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    health: list[dict[str, str]] = field(default_factory=list)
    status_after_block: list[dict[str, object]] = field(default_factory=list)


def write(folder: Path, servers: dict[str, LoopbackServer]) -> dict[str, str]:
    blocks = [
        f'[[source]]\nid = "{s.source_id}"\nkind = "{s.kind}"\n'
        f'url = "{servers[s.server].url}{s.path}"\ntitle = "{s.source_id} (SYNTHETIC)"\n'
        f'interval = "6h"\ntier = "T2"\nselector = "main"\n'
        for s in SCRIPTS
    ]
    (folder / "sources.toml").write_text("\n".join(blocks), encoding="utf-8")
    (folder / "fdawatch.toml").write_text(CONFIG, encoding="utf-8")
    return {
        "FDAWATCH_CONFIG": str(folder / "fdawatch.toml"),
        "FDAWATCH_SOURCES": str(folder / "sources.toml"),
        "FDAWATCH_DATABASE_URL": f"sqlite:///{folder / 'history.db'}",
        "FDAWATCH_VAR_DIR": str(folder / "var"),
        "FDAWATCH_OUTBOX_DIR": str(folder / "outbox"),
    }


def script_crawl(servers: dict[str, LoopbackServer], number: int) -> None:
    for script in SCRIPTS:
        answers = script.crawls[number]
        if answers is not None:
            servers[script.server].script(script.path, *answers)
        for path, routed in script.routes.items():
            servers[script.server].script(path, *routed)
    robots = servers["robots"]
    if number in (1, 2):  # robots.txt itself refused by the CDN: the host is blocked
        robots.script("/robots.txt", Answer(403, ACCESS_DENIED, AKAMAI))
    if number == 3:
        robots.script("/robots.txt", Answer(200, ROBOTS_OK, HTML))


@pytest.fixture(scope="module")
def crawls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Crawls]:
    folder = tmp_path_factory.mktemp("live_fda")
    with Servers() as servers:
        env = write(folder, servers)
        settings = load_settings(env)
        sources = list(load_sources(settings.sources_path).values())
        engine = open_database(settings.database_url)
        result = Crawls(folder, env, servers)
        for number in range(5):
            script_crawl(servers, number)
            summary = run_crawl(engine, settings, sources, timeout=120, log_level="INFO")
            assert summary.status == "finished", summary.stderr_tail
            with Session(engine) as session:
                run = session.exec(select(Fetch).where(Fetch.run_id == summary.run_id)).all()
                result.fetches.append({f.source_id: f for f in run})
                result.changes.append(
                    list(session.exec(select(Change).where(Change.run_id == summary.run_id)))
                )
                result.health.append({r.id: r.health for r in session.exec(select(Source))})
            if number == 1:
                status = fdawatch(env, "status", "--json")
                assert status.returncode == 0, status.stderr
                result.status_after_block = [json.loads(x) for x in status.stdout.splitlines()]
        with Session(engine) as session:
            result.alerts = list(session.exec(select(Alert).order_by(col(Alert.id))).all())
            result.every_fetch = list(session.exec(select(Fetch).order_by(col(Fetch.id))).all())
        engine.dispose()
        yield result


class Servers:
    """One LoopbackServer per CDN behaviour (a block makes its whole host wait)."""

    def __enter__(self) -> dict[str, LoopbackServer]:
        self.servers = {name: LoopbackServer().start() for name in SERVERS}
        return self.servers

    def __exit__(self, *exc: object) -> None:
        for server in self.servers.values():
            server.stop()


def outcomes(crawls: Crawls, source_id: str) -> list[str]:
    return [fetches[source_id].outcome for fetches in crawls.fetches]


def changes_of(crawls: Crawls, source_id: str) -> list[list[tuple[str, str]]]:
    return [
        [(c.kind, c.severity) for c in run if c.source_id == source_id] for run in crawls.changes
    ]


BLOCKED_SOURCES = ["apology_redirect", "akamai_403", "challenge_feed", "robots_refused"]


@pytest.mark.parametrize("source_id", BLOCKED_SOURCES)
def test_a_cdn_block_is_blocked_never_a_change_or_a_removal(crawls: Crawls, source_id: str) -> None:
    assert outcomes(crawls, source_id) == ["ok", "blocked", "blocked", "ok", "ok"]
    assert changes_of(crawls, source_id) == [[], [], [], [], []]
    assert [health[source_id] for health in crawls.health] == [
        "ok", "blocked", "blocked", "ok", "ok"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("source_id", "evidence"),
    [
        ("apology_redirect", "redirected to a bot-defence apology page (http"),
        ("akamai_403", "access refused (Access Denied Access Denied You don't have permission"),
        ("challenge_feed", "a challenge page instead of the document (Just a moment..."),
        ("robots_refused", "refused another request of this crawl"),
    ],
)
def test_a_block_says_what_refused_us(crawls: Crawls, source_id: str, evidence: str) -> None:
    fetch = crawls.fetches[1][source_id]
    assert fetch.error is not None and evidence in fetch.error, fetch.error
    assert fetch.error.startswith("blocked: ")


def test_the_apology_page_is_never_requested(crawls: Crawls) -> None:
    assert list(crawls.servers["apology"].hits_for(APOLOGY)) == []


def test_a_refused_robots_txt_blocks_the_host_without_asking_for_the_page(crawls: Crawls) -> None:
    pages = [hit for hit in crawls.servers["robots"].hits if hit.target == "/drugs/alert"]
    assert len(pages) == 3  # crawls 0, 3 and 4: never while robots.txt was refused


def test_status_shows_blocked_with_its_evidence(crawls: Crawls) -> None:
    rows = {row["source_id"]: row for row in crawls.status_after_block}
    assert rows["akamai_403"]["state"] == "blocked"
    assert rows["akamai_403"]["evidence"]["http_status"] == 403
    assert rows["akamai_403"]["evidence"]["server"] == "AkamaiGHost"
    apology = rows["apology_redirect"]["evidence"]
    assert (apology["http_status"], apology["server"]) == (302, "AkamaiGHost")
    assert apology["final_url"].endswith("/drugs/alert")
    assert rows["edited_page"]["state"] == "ok" and rows["edited_page"]["evidence"] is None


@pytest.mark.parametrize("source_id", BLOCKED_SOURCES)
def test_one_blocked_notice_at_the_threshold_and_one_recovery(
    crawls: Crawls, source_id: str
) -> None:
    notices = [a.kind for a in crawls.alerts if a.source_id == source_id and a.kind != "change"]
    assert notices == ["source_blocked", "source_recovered"]


def test_one_404_is_nothing_and_only_two_in_a_row_remove_the_page(crawls: Crawls) -> None:
    assert outcomes(crawls, "removed_page") == ["ok", "gone", "ok", "gone", "gone"]
    # T1: the page names compounded ketamine for use at home (one tier above the source's T2).
    assert changes_of(crawls, "removed_page") == [[], [], [], [], [("removed", "T1")]]


def test_a_permanent_redirect_is_one_moved_change_then_content_as_usual(crawls: Crawls) -> None:
    assert changes_of(crawls, "moved_page") == [[], [("moved", "T4")], [], [], []]
    moved = next(c for c in crawls.changes[1] if c.source_id == "moved_page")
    main = crawls.servers["main"].url
    assert moved.summary == f"Moved: {main}/drugs/old → {main}/drugs/new"
    assert crawls.fetches[2]["moved_page"].final_url == f"{main}/drugs/new"


def test_a_redirect_to_a_missing_page_is_a_failure_not_a_removal(crawls: Crawls) -> None:
    assert outcomes(crawls, "redirect_to_404") == ["ok", "failed", "failed", "ok", "ok"]
    assert changes_of(crawls, "redirect_to_404") == [[], [], [], [], []]
    error = crawls.fetches[1]["redirect_to_404"].error or ""
    assert error.startswith("HTTP 404 at ") and "redirected from" in error


@pytest.mark.parametrize(
    ("source_id", "reason"),
    [
        ("cut_no_length", "the HTML ends before </html>: the transfer was cut short"),
        ("cut_gzip", "gzip stream from"),
        ("cut_feed", "the XML ends before its closing root tag"),
        ("cut_feed_with_length", "ends before its closing tag"),
    ],
)
def test_a_transfer_cut_short_is_a_failed_fetch_and_never_a_change(
    crawls: Crawls, source_id: str, reason: str
) -> None:
    assert outcomes(crawls, source_id)[:3] == ["ok", "failed", "ok"]
    error = crawls.fetches[1][source_id].error or ""
    assert error.startswith("data loss: ") and reason in error, error
    assert changes_of(crawls, source_id) == [[], [], [], [], []]


def test_a_page_that_shrinks_once_is_looked_at_again_and_nothing_is_raised(crawls: Crawls) -> None:
    fetches = [f for f in crawls.every_fetch if f.source_id == "shrunk_once"]
    assert [f.outcome for f in fetches] == ["ok", "held", "ok", "ok", "ok", "ok"]
    assert (fetches[1].error or "").startswith("held for a second look in 0.2 s: ")
    assert "the text shrank to 10 %" in (fetches[1].error or "")
    assert changes_of(crawls, "shrunk_once") == [[], [], [], [], []]


def test_a_page_that_really_shrank_is_raised_once_the_second_look_agrees(crawls: Crawls) -> None:
    fetches = [f.outcome for f in crawls.every_fetch if f.source_id == "shrunk_for_real"]
    assert fetches == ["ok", "held", "ok", "ok", "ok", "ok"]
    assert changes_of(crawls, "shrunk_for_real") == [[], [("changed", "T1")], [], [], []]


def test_an_error_page_served_with_200_is_a_failed_fetch(crawls: Crawls) -> None:
    assert outcomes(crawls, "error_page_200") == ["ok", "failed", "ok", "ok", "ok"]
    error = crawls.fetches[1]["error_page_200"].error or ""
    assert "now reads like an error page ('Service Unavailable')" in error
    assert changes_of(crawls, "error_page_200") == [[], [], [], [], []]


def test_an_ordinary_edit_is_raised_at_once(crawls: Crawls) -> None:
    assert changes_of(crawls, "edited_page") == [[], [("changed", "T1")], [], [], []]


def test_the_database_is_intact(crawls: Crawls) -> None:
    assert integrity(crawls.folder / "history.db") == "ok"


# --- backing off across crawls -------------------------------------------------------------------


def test_a_blocked_host_is_left_alone_until_its_back_off_ends(tmp_path: Path) -> None:
    with LoopbackServer() as server:
        (tmp_path / "sources.toml").write_text(
            f'[[source]]\nid = "spravato_rems"\nkind = "page"\nurl = "{server.url}/rems"\n'
            'title = "REMS (SYNTHETIC)"\n',
            encoding="utf-8",
        )
        config = CONFIG.replace("blocked_backoff = 0", "blocked_backoff = 3600")
        (tmp_path / "fdawatch.toml").write_text(config, encoding="utf-8")
        env = {
            "FDAWATCH_CONFIG": str(tmp_path / "fdawatch.toml"),
            "FDAWATCH_SOURCES": str(tmp_path / "sources.toml"),
            "FDAWATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'history.db'}",
            "FDAWATCH_VAR_DIR": str(tmp_path / "var"),
        }
        server.script("/rems", Answer(403, ACCESS_DENIED, AKAMAI))
        first = fdawatch(env, "crawl", "--all", "--no-send")
        second = fdawatch(env, "crawl", "--all", "--no-send")
        status = fdawatch(env, "status", "--json")

    assert "blocked" in first.stdout and "403" in first.stdout, first.stdout + first.stderr
    assert len([hit for hit in server.hits if hit.target == "/rems"]) == 1
    assert "backing off from 127.0.0.1" in second.stdout, second.stdout
    row = json.loads(status.stdout.splitlines()[0])
    assert row["state"] == "blocked" and row["failures_in_row"] == 2
    assert row["backing_off_until"] is not None
    assert child_env(env)  # the deployment really was the test's own


# --- the preflight -------------------------------------------------------------------------------

PREFLIGHT = [
    # (id, kind, path, answers, expected verdict, expected detail fragment)
    ("fine_page", "page", "/ok", ok(), "ok", "1 document(s)"),
    ("fine_feed", "feed", "/rss.xml", ok(FEED, RSS), "ok", "20 document(s)"),
    ("refused", "page", "/refused", (Answer(403, ACCESS_DENIED, AKAMAI),), "blocked", "Reference"),
    ("redesigned", "page", "/redesigned", ok(b"<html><body><div>new</div></body></html>"),
     "drift", "the page has 3 elements"),
    ("pdf_not_page", "page", "/pdf", ok(b"%PDF-1.7 ...", {"Content-Type": "application/pdf"}),
     "wrong type", "expected an HTML page, got application/pdf"),
    ("missing", "page", "/missing", (Answer(404, b"gone"),), "not found", "HTTP 404"),
    ("relocated", "page", "/relocated", (Answer(301, b"", {"Location": "/ok"}),),
     "moved → {url}/ok", "set the source's url"),
    ("broken", "page", "/broken", (Answer(500, b"oops"),), "error", "HTTP 500"),
]  # fmt: skip


def test_sources_check_gives_each_source_its_verdict_and_records_nothing(tmp_path: Path) -> None:
    with LoopbackServer() as main, LoopbackServer() as cdn:
        servers = {"refused": cdn}
        blocks = []
        for source_id, kind, path, answers, *_ in PREFLIGHT:
            server = servers.get(source_id, main)
            server.script(path, *answers)
            blocks.append(
                f'[[source]]\nid = "{source_id}"\nkind = "{kind}"\nurl = "{server.url}{path}"\n'
                'selector = "main"\n'
            )
        (tmp_path / "sources.toml").write_text("\n".join(blocks), encoding="utf-8")
        (tmp_path / "fdawatch.toml").write_text(CONFIG, encoding="utf-8")
        env = {
            "FDAWATCH_CONFIG": str(tmp_path / "fdawatch.toml"),
            "FDAWATCH_SOURCES": str(tmp_path / "sources.toml"),
            "FDAWATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'never.db'}",
            "FDAWATCH_VAR_DIR": str(tmp_path / "var"),
        }
        checked = fdawatch(env, "sources", "--check", "--json")
        only_fine = fdawatch(env, "sources", "--check", "fine_page", "fine_feed")
        main_url = main.url

    verdicts = {row["source_id"]: row for row in map(json.loads, checked.stdout.splitlines())}
    for source_id, _kind, _path, _answers, verdict, detail in PREFLIGHT:
        row = verdicts[source_id]
        assert row["verdict"] == verdict.format(url=main_url), row
        assert detail in row["detail"], row
    assert checked.returncode == 1, checked.stderr
    assert only_fine.returncode == 0, only_fine.stdout + only_fine.stderr
    assert only_fine.stdout.splitlines()[-1] == "2 of 2 sources ok"
    assert not (tmp_path / "never.db").exists()  # nothing recorded, not even a database
    assert all("If-None-Match" not in hit.headers for hit in main.hits)
