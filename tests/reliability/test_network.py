"""Network and content faults through real crawls: a failed fetch is reported, never a change.

Three crawls (`run_crawl`, one child process each) of ~30 sources on one misbehaving loopback
server (`tests.support.loopback`): a clean baseline, a crawl where every source has its fault, and
a clean crawl again. A user must see each fault as a failed (or drift) fetch with an error that
says what went wrong, no content change from any of them, no snapshot written by a failed fetch,
and — for the encoding cases — the same text whether or not the server names its charset.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, col, select

from db.engine import open_database
from db.models import Alert, Change, Fetch, Snapshot
from monitor.config import load_settings
from monitor.runtime.crawl import run_crawl
from monitor.sources import load_sources
from tests.support.deployment import db_bytes, integrity, item, page, rss, write_deployment
from tests.support.loopback import Answer, LoopbackServer

pytestmark = pytest.mark.slow

HTML = {"Content-Type": "text/html; charset=utf-8"}
RSS = {"Content-Type": "application/rss+xml; charset=utf-8"}
BASE_TEXT = "FDA is aware of compounded ketamine products marketed for use at home."
NEW_TEXT = "FDA warns that compounded ketamine products must not be used at home."
PAGE = page(BASE_TEXT).encode()
NEW_PAGE = page(NEW_TEXT).encode()
ITEM_A = item(
    "FDA alerts on compounded ketamine (SYNTHETIC)",
    "https://www.fda.gov/drugs/ketamine-alert-a",
    description="Compounded ketamine risks.",
)
FEED = rss([ITEM_A]).encode()

LATIN1_TEXT = "Información para pacientes: ketamina y niños; señal de seguridad."
CP1252_TEXT = "FDA’s “compounded ketamine” alert – what patients should know…"
BOM_TEXT = "Esketamine (Spravato®) REMS — café-au-lait is not a side effect."

LOL_ENTITIES = "".join(
    f' <!ENTITY lol{n} "{("&lol" + str(n - 1) + ";") * 10}">' for n in range(1, 10)
)
BILLION_LAUGHS = rss(
    [ITEM_A, item("Laughs &lol9;", "https://www.fda.gov/laughs", description="ketamine &lol9;")],
    prolog=f'<!DOCTYPE rss [ <!ENTITY lol0 "lol">{LOL_ENTITIES} ]>\n',
).encode()
XXE = rss(
    [ITEM_A, item("Secret &xxe;", "https://www.fda.gov/xxe", description="ketamine &xxe;")],
    prolog='<!DOCTYPE rss [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>\n',
).encode()
XXE_PADDED = XXE.replace(b"<!DOCTYPE", b"<!-- " + b"SYNTHETIC padding " * 4000 + b"-->\n<!DOCTYPE")
XXE_UTF16 = XXE.decode().replace('encoding="utf-8"', 'encoding="utf-16"').encode("utf-16")
HUGE = 50 * 1024 * 1024


@dataclass(frozen=True)
class Case:
    """One source: what it answers in the baseline, the faulty and the recovery crawl."""

    source_id: str
    kind: str
    faulty: tuple[Answer, ...]
    outcome: str  # of the faulty crawl
    error: str = ""  # regex the fetch's error must match (what the user reads)
    baseline: tuple[Answer, ...] = (Answer(200, PAGE, HTML),)
    changes: int = 0  # content changes the faulty crawl may rightly raise
    server: str = "main"
    notes: dict[str, Any] = field(default_factory=dict)


def later(hours: float) -> str:
    return format_datetime(datetime.now(UTC) + timedelta(hours=hours), usegmt=True)


def feed_case(
    source_id: str, faulty: tuple[Answer, ...], outcome: str, error: str = "", changes: int = 0
) -> Case:
    return Case(source_id, "feed", faulty, outcome, error, (Answer(200, FEED, RSS),), changes)


CASES = [
    # -- network ------------------------------------------------------------------------------
    Case("http_500", "page", (Answer(500, b"oops"),), "failed", r"HTTP 500"),
    Case("http_502", "page", (Answer(502, b"bad gateway"),), "failed", r"HTTP 502"),
    Case("http_503", "page", (Answer(503, b"maintenance"),), "failed", r"HTTP 503"),
    Case("connection_refused", "page", (), "failed", r"^connection refused", server="down"),
    Case(
        "read_timeout",
        "page",
        (Answer(200, NEW_PAGE, HTML, delay=1.6),),
        "failed",
        r"^timeout: .*took longer than 1\.0 seconds",
    ),
    Case(
        "slow_drip_body", "page", (Answer(200, NEW_PAGE, HTML, drip=0.02),), "failed", r"^timeout: "
    ),
    Case(
        "truncated_body",
        "page",
        (Answer(200, NEW_PAGE, HTML, length=len(NEW_PAGE) + 400),),
        "failed",
        r"^data loss",
    ),
    Case(
        "redirect_loop",
        "page",
        (Answer(302, b"", {"Location": "/page?case=redirect_loop"}),),
        "failed",
        r"^redirect loop: .* comes back to a URL already visited",
    ),
    Case(
        "redirect_other_host",
        "page",
        (Answer(302, b"", {"Location": "{offsite}"}),),
        "failed",
        r"^ignored: redirected to another host, not followed .*set the source's url.* -> "
        r"http://localhost:\d+/offsite",
    ),
    Case(
        "retry_after_seconds",
        "page",
        (Answer(429, b"slow down", {"Retry-After": "1"}), Answer(200, PAGE, HTML)),
        "ok",
    ),
    Case(
        "retry_after_too_long",
        "page",
        (Answer(429, b"", {"Retry-After": "3600"}),),
        "failed",
        r"^rate limited: HTTP 429 .* asks to retry after 3600 s .*next scheduled crawl",
    ),
    Case(
        "retry_after_http_date",
        "page",
        (Answer(503, b"", {"Retry-After": "{in_2h}"}),),
        "failed",
        r"^rate limited: HTTP 503 .* asks to retry after 7[12]\d\d s",
    ),
    Case(
        "retry_after_past_date",
        "page",
        (Answer(503, b"", {"Retry-After": "{ago_1h}"}), Answer(200, PAGE, HTML)),
        "ok",
    ),
    Case(
        "retry_after_absurd",
        "page",
        (Answer(503, b"", {"Retry-After": "99999999999999999999999"}),),
        "failed",
        r"^rate limited: HTTP 503 .* asks to retry after 1e\+23 s \(more than a year from now\)",
    ),
    Case(
        "redirect_other_port",
        "page",
        (Answer(302, b"", {"Location": "{other_port}"}),),
        "failed",
        r"^ignored: redirected to another port, not followed .* -> http://127\.0\.0\.1:\d+/offsite",
    ),
    Case(
        "endless_headers",
        "page",
        (Answer(200, header_flood=1_000_000),),  # 8 GB of headers on offer
        "failed",
        r"^response failed: response headers exceed 65536 bytes \(FDAWATCH_MAX_RESPONSE_HEADER_",
    ),
    Case(  # the same text, nested 1,000 elements deep: rendered whole, so no change
        "deeply_nested",
        "page",
        (Answer(200, page("<div>" * 1000 + BASE_TEXT + "</div>" * 1000).encode(), HTML),),
        "ok",
    ),
    Case(  # the same text, declared UTF-8 but sent as windows-1252: read as such, no change
        "charset_misdeclared",
        "page",
        (Answer(200, page(LATIN1_TEXT).encode("cp1252"), HTML),),
        "ok",
        baseline=(Answer(200, page(LATIN1_TEXT).encode("utf-8"), HTML),),
    ),
    Case(
        "not_modified_with_body",
        "page",
        (Answer(304, NEW_PAGE, {"ETag": '"v1"'}),),
        "not_modified",
        baseline=(Answer(200, PAGE, {**HTML, "ETag": '"v1"'}),),
    ),
    Case("empty_200", "page", (Answer(200, b"", HTML),), "failed", r"^empty body \(text/html"),
    Case(
        "wrong_content_type",
        "page",
        (Answer(200, b"%PDF-1.7\n%binary\n", {"Content-Type": "application/pdf"}),),
        "failed",
        r"expected an HTML page, got application/pdf",
    ),
    Case(
        "huge_declared",
        "page",
        (Answer(200, b"<html><main>", HTML, stream=HUGE),),
        "failed",
        r"larger than download max size \(20971520\)",
    ),
    Case(
        "huge_streamed",
        "page",
        (Answer(200, b"<html><main>", HTML, stream=HUGE, length=-1),),
        "failed",
        r"larger than download max size \(20971520\)",
    ),
    feed_case("feed_empty_200", (Answer(200, b"  \n", RSS),), "failed", r"^empty body"),
    feed_case(
        "feed_not_xml",
        (Answer(200, b'{"results": "not a feed"}', RSS),),
        "failed",
        r"not (a readable|an RSS or Atom) feed",
    ),
    feed_case(
        "feed_wrong_content_type",
        (Answer(200, PAGE, HTML),),
        "failed",
        r"not (a readable|an RSS or Atom) feed \(text/html",
    ),
    # -- content ------------------------------------------------------------------------------
    Case(
        "selector_gone",
        "page",
        (Answer(200, page(BASE_TEXT, main=False).encode(), HTML),),
        "drift",
        r"^selector 'main' matched nothing",
    ),
    Case(
        "latin1_no_charset",
        "page",
        (Answer(200, page(LATIN1_TEXT).encode("utf-8"), HTML),),
        "ok",
        baseline=(Answer(200, page(LATIN1_TEXT).encode("latin-1"), {"Content-Type": "text/html"}),),
    ),
    Case(
        "cp1252_no_charset",
        "page",
        (Answer(200, page(CP1252_TEXT).encode("utf-8"), HTML),),
        "ok",
        baseline=(Answer(200, page(CP1252_TEXT).encode("cp1252"), {"Content-Type": "text/html"}),),
    ),
    Case(
        "utf8_bom",
        "page",
        (Answer(200, page(BOM_TEXT).encode("utf-8"), HTML),),
        "ok",
        baseline=(
            Answer(200, b"\xef\xbb\xbf" + page(BOM_TEXT).encode(), {"Content-Type": "text/html"}),
        ),
    ),
    feed_case(
        "feed_duplicate_guids",
        (
            Answer(
                200,
                rss(
                    [
                        ITEM_A,
                        item(
                            "New ketamine alert (SYNTHETIC)",
                            "https://www.fda.gov/drugs/ketamine-b",
                            guid="https://www.fda.gov/drugs/ketamine-b",
                            description="first copy",
                        ),
                        item(
                            "New ketamine alert, again (SYNTHETIC)",
                            "https://www.fda.gov/drugs/ketamine-b",
                            guid="https://www.fda.gov/drugs/ketamine-b",
                            description="second copy",
                        ),
                    ]
                ).encode(),
                RSS,
            ),
        ),
        "ok",
        changes=1,
    ),
    feed_case(
        "feed_items_without_links",
        (
            Answer(
                200,
                rss(
                    [
                        ITEM_A,
                        item(
                            "Guid-only ketamine notice (SYNTHETIC)",
                            None,
                            guid="tag:fda.gov,2026:ketamine-42",
                            permalink=False,
                            description="no link, a guid",
                        ),
                        item(
                            "Orphan ketamine notice (SYNTHETIC)",
                            None,
                            description="neither link nor guid",
                        ),
                    ]
                ).encode(),
                RSS,
            ),
        ),
        "ok",
        changes=1,
    ),
    feed_case(
        "feed_odd_dates",
        (
            Answer(
                200,
                rss(
                    [
                        ITEM_A,
                        item(
                            "Future ketamine notice (SYNTHETIC)",
                            "https://www.fda.gov/future",
                            date="Fri, 01 Jan 2999 00:00:00 GMT",
                        ),
                        item(
                            "Undated ketamine notice (SYNTHETIC)",
                            "https://www.fda.gov/undated",
                            date="sometime next week, probably",
                        ),
                    ]
                ).encode(),
                RSS,
            ),
        ),
        "ok",
        changes=2,
    ),
]
HOSTILE_FEEDS = [
    feed_case("feed_billion_laughs", (Answer(200, BILLION_LAUGHS, RSS),), "failed", r"entit"),
    feed_case("feed_external_entity", (Answer(200, XXE, RSS),), "failed", r"entit"),
    feed_case("feed_entity_after_70kb", (Answer(200, XXE_PADDED, RSS),), "failed", r"entit"),
    feed_case(
        "feed_entity_utf16",
        (Answer(200, XXE_UTF16, {"Content-Type": "application/rss+xml"}),),
        "failed",
        r"entit",
    ),
]
ALL = CASES + HOSTILE_FEEDS


def target(case: Case) -> str:
    return f"/{case.kind}?case={case.source_id}"


@dataclass
class Crawls:
    """What the three crawls left behind."""

    folder: Path
    db_file: Path
    server: LoopbackServer
    other: LoopbackServer  # the same host on another port
    fetches: list[dict[str, Fetch]]
    snapshots: list[dict[str, int]]
    changes: list[Change]
    alerts: list[Alert]
    stderr: list[str]


def _fill(
    answers: tuple[Answer, ...], server: LoopbackServer, other: LoopbackServer
) -> tuple[Answer, ...]:
    """Put the server's address and times into scripted headers."""
    values = {
        "{offsite}": f"http://localhost:{server.port}/offsite",
        "{other_port}": f"http://127.0.0.1:{other.port}/offsite",
        "{in_2h}": later(2),
        "{ago_1h}": later(-1),
    }
    return tuple(
        replace(a, headers={k: values.get(v, v) for k, v in a.headers.items()}) for a in answers
    )


def _snapshot_counts(session: Session) -> dict[str, int]:
    counts: dict[str, int] = {}
    for snapshot in session.exec(select(Snapshot)).all():
        counts[snapshot.source_id] = counts.get(snapshot.source_id, 0) + 1
    return counts


@pytest.fixture(scope="module")
def crawls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Crawls]:
    folder = tmp_path_factory.mktemp("network")
    with LoopbackServer() as server, LoopbackServer() as down, LoopbackServer() as other:
        urls = {"main": server.url, "down": down.url}
        env = write_deployment(
            folder, [(c.source_id, c.kind, urls[c.server] + target(c)) for c in ALL]
        )
        settings = load_settings(env)
        sources = list(load_sources(settings.sources_path).values())
        engine = open_database(settings.database_url)
        server.script("/offsite", Answer(200, page("Another site entirely.").encode(), HTML))
        other.script("/offsite", Answer(200, page("Another server entirely.").encode(), HTML))
        result = Crawls(folder, folder / "history.db", server, other, [], [], [], [], [])
        for number in range(3):
            for case in ALL:
                answers = case.faulty if number == 1 else case.baseline
                (server if case.server == "main" else down).script(
                    target(case), *_fill(answers, server, other)
                )
            if number == 1:
                down.stop()
            summary = run_crawl(engine, settings, sources, timeout=120, log_level="INFO")
            assert summary.status == "finished", summary.stderr_tail
            with Session(engine) as session:
                fetches = session.exec(select(Fetch).where(Fetch.run_id == summary.run_id)).all()
                result.fetches.append({f.source_id: f for f in fetches})
                result.snapshots.append(_snapshot_counts(session))
            result.stderr.append(summary.stderr_tail)
        with Session(engine) as session:
            result.changes = list(session.exec(select(Change).order_by(col(Change.id))).all())
            result.alerts = list(session.exec(select(Alert)).all())
        engine.dispose()
        yield result


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.source_id)
def test_each_fault_is_reported_as_a_failed_fetch_with_its_reason(
    crawls: Crawls, case: Case
) -> None:
    if case.server == "main":
        assert crawls.fetches[0][case.source_id].outcome == "ok"
    fetch = crawls.fetches[1][case.source_id]
    assert fetch.outcome == case.outcome, fetch.error
    if case.error:
        assert re.search(case.error, fetch.error or ""), fetch.error
    if case.server == "main":  # the "down" server stays down
        assert crawls.fetches[2][case.source_id].outcome in ("ok", "not_modified")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.source_id)
def test_no_fault_becomes_a_content_change_or_a_half_written_version(
    crawls: Crawls, case: Case
) -> None:
    changes = [c for c in crawls.changes if c.source_id == case.source_id]
    assert len(changes) == case.changes, [c.summary for c in changes]
    if case.changes == 0:  # the faulty crawl stored no version at all
        counts = [counts.get(case.source_id, 0) for counts in crawls.snapshots]
        assert counts[1] == counts[0] and counts[2] == counts[0]
    alerts = [a for a in crawls.alerts if a.source_id == case.source_id and a.kind == "change"]
    assert len(alerts) == case.changes  # one recipient: one alert per change, no duplicate


def test_the_database_is_intact_after_every_fault(crawls: Crawls) -> None:
    assert integrity(crawls.db_file) == "ok"


def _text(crawls: Crawls, source_id: str) -> str:
    engine = open_database(f"sqlite:///{crawls.db_file}")
    with Session(engine) as session:
        texts = [
            s.text
            for s in session.exec(select(Snapshot).where(Snapshot.source_id == source_id)).all()
        ]
    engine.dispose()
    assert len(texts) == 1, texts
    return texts[0]


@pytest.mark.parametrize(
    ("source_id", "expected"),
    [
        ("latin1_no_charset", LATIN1_TEXT),
        ("cp1252_no_charset", CP1252_TEXT),
        ("utf8_bom", BOM_TEXT),
    ],
)
def test_pages_without_a_charset_are_read_as_the_reader_sees_them(
    crawls: Crawls, source_id: str, expected: str
) -> None:
    """Decoded right the first time: re-served as declared UTF-8 it is the same text (no change)."""
    text = _text(crawls, source_id)
    assert expected in text
    assert "\ufeff" not in text and "Ã" not in text


def test_a_redirect_to_another_host_is_not_followed(crawls: Crawls) -> None:
    assert not list(crawls.server.hits_for("/offsite"))


def test_a_redirect_to_another_port_of_the_same_host_is_not_followed(crawls: Crawls) -> None:
    assert not list(crawls.other.hits_for("/offsite"))


def test_endless_headers_fail_fast(crawls: Crawls) -> None:
    """Stopped at 64 KiB of headers (two tries), not at the 1 s download timeout."""
    assert crawls.fetches[1]["endless_headers"].duration_ms < 900


def test_a_304_body_is_ignored_and_the_validator_was_sent(crawls: Crawls) -> None:
    (case,) = [c for c in CASES if c.source_id == "not_modified_with_body"]
    hits = list(crawls.server.hits_for(target(case)))
    assert [h.status for h in hits] == [200, 304, 200]
    assert hits[1].headers.get("If-None-Match") == '"v1"'


def test_feed_items_without_a_link_are_keyed_by_guid_or_skipped(crawls: Crawls) -> None:
    titles = [c.title for c in crawls.changes if c.source_id == "feed_items_without_links"]
    assert titles == ["Guid-only ketamine notice (SYNTHETIC)"]


def test_feed_items_with_future_or_unparseable_dates_are_detected_now(crawls: Crawls) -> None:
    odd = [c for c in crawls.changes if c.source_id == "feed_odd_dates"]
    now = datetime.now(UTC)
    assert sorted(c.title for c in odd) == [
        "Future ketamine notice (SYNTHETIC)",
        "Undated ketamine notice (SYNTHETIC)",
    ]
    for change in odd:
        detected = change.detected_at.replace(tzinfo=UTC)
        assert now - timedelta(minutes=10) < detected <= now


def test_duplicate_guids_in_one_feed_raise_one_change_with_the_first_copy(crawls: Crawls) -> None:
    (change,) = [c for c in crawls.changes if c.source_id == "feed_duplicate_guids"]
    assert "first copy" in change.diff and "second copy" not in change.diff


def test_entity_bombs_and_external_entities_are_never_expanded(crawls: Crawls) -> None:
    """feedparser's SAX parse refuses the DTD and its loose fallback keeps `&lol9;` literally."""
    stored = db_bytes(crawls.db_file)
    assert b"lollollol" not in stored
    assert b"root:x:0:0" not in stored and b"/bin/bash" not in stored
    fetches = [crawls.fetches[1][c.source_id] for c in HOSTILE_FEEDS]
    assert all(f.duration_ms < 5000 for f in fetches)


@pytest.mark.parametrize("case", HOSTILE_FEEDS, ids=lambda c: c.source_id)
def test_a_feed_declaring_entities_is_refused_as_a_failed_fetch(crawls: Crawls, case: Case) -> None:
    fetch = crawls.fetches[1][case.source_id]
    assert fetch.outcome == "failed" and re.search(case.error, fetch.error or "")
    assert not [c for c in crawls.changes if c.source_id == case.source_id]


@pytest.mark.parametrize(
    ("source", "target", "followed"),
    [
        ("https://www.fda.gov/drugs/x", "https://www.fda.gov/drugs/y", True),
        ("http://www.fda.gov/drugs/x", "https://www.fda.gov/drugs/x", True),
        ("https://fda.gov/x", "https://www.fda.gov/x", True),
        ("https://www.fda.gov/x", "https://www.accessdata.fda.gov/scripts/x", True),
        ("https://www.gov.uk/x", "https://www.mhra.gov.uk/x", False),  # gov.uk is a suffix
        ("https://www.fda.gov/x", "https://www.fda.gov.evil.example/x", False),
        ("https://www.fda.gov/x", "https://fda-gov.example/x", False),
        ("http://127.0.0.1:8000/x", "http://localhost:8000/x", False),
    ],
)
def test_which_redirects_stay_on_the_source_site(source: str, target: str, followed: bool) -> None:
    """fda.gov moving a page to www. or accessdata. is followed; another site never is."""
    from spiders.middlewares import same_site

    assert same_site(source, target) is followed
