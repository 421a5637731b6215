"""The loopback server: scripts by path + query; fixture folders by version, with status files,
conditional GET, faults and control.

Everything runs against 127.0.0.1 with `http.client` / `urllib.request` as the client.
"""

from __future__ import annotations

import hashlib
import http.client
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

import pytest

from monitor.sources import parse_sources
from tests.support.loopback import Answer, LoopbackServer, route_of
from tests.support.paths import DEMO, FIXTURES, ROOT
from tests.support.replay import DEFAULT_ROBOTS, FixtureTree, make_etag

RSS = b'<?xml version="1.0"?>\n<rss version="2.0"><channel><title>t</title></channel></rss>\n'
TREE: dict[str, bytes] = {
    "v1/pages/a.html": b"<main>A v1</main>",
    "v1/pages/b.html": b"<main>B v1</main>",
    "v1/pages/gone.html": b"<main>soon gone</main>",
    "v1/feeds/feed.xml": RSS,
    "v1/data/plain.xml": b"<?xml version='1.0'?><root/>",
    "v1/api/x.json": b'{"ok": true}',
    "v1/other.html": b"<main>other</main>",
    "v2/pages/a.html": b"<main>A v2</main>",
    "v2/pages/new.html": b"<main>new in v2</main>",
    "v2/pages/gone.html.status": b"410\n",
    "v2/pages/moved.html.status": b"301 /pages/a.html\n",
}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for name, body in TREE.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(body)
    return tmp_path


@pytest.fixture
def server(root: Path) -> Iterator[LoopbackServer]:
    with LoopbackServer(root) as srv:
        yield srv
    assert srv.errors == []


def fetch(
    srv: LoopbackServer, path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One request without redirects or raising on errors: (status, headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


# -- resolution ----------------------------------------------------------------------------------

RESOLUTION = [
    # version, path, status, body (None: don't check)
    (1, "/pages/a.html", 200, b"<main>A v1</main>"),
    (2, "/pages/a.html", 200, b"<main>A v2</main>"),
    (2, "/pages/b.html", 200, b"<main>B v1</main>"),  # v2 lacks it: falls back to v1
    (7, "/pages/a.html", 200, b"<main>A v2</main>"),  # beyond the last version: newest copy
    (1, "/pages/new.html", 404, None),  # appears only from v2
    (2, "/pages/new.html", 200, b"<main>new in v2</main>"),
    (1, "/pages/gone.html", 200, b"<main>soon gone</main>"),
    (2, "/pages/gone.html", 410, None),  # retired by v2/pages/gone.html.status
    (2, "/pages/gone.html.status", 404, None),  # steering files are never served
    (2, "/pages/moved.html", 301, None),
    (1, "/nope.html", 404, None),
    (1, "/", 404, None),
    (1, "/pages/../pages/a.html", 404, None),  # no dot-dot games
    (1, "/%2e%2e/etc/passwd", 404, None),
    (1, "/pages/a.html?utm=1", 200, b"<main>A v1</main>"),  # query ignored for lookup
]


@pytest.mark.parametrize(("version", "path", "status", "body"), RESOLUTION)
def test_resolution(
    server: LoopbackServer, version: int, path: str, status: int, body: bytes | None
) -> None:
    server.set_version(version)
    got_status, _, got_body = fetch(server, path)
    assert got_status == status
    if body is not None:
        assert got_body == body


def test_status_file_redirect_has_absolute_location(server: LoopbackServer) -> None:
    server.set_version(2)
    status, headers, _ = fetch(server, "/pages/moved.html")
    assert status == 301
    assert headers["Location"] == server.url + "/pages/a.html"


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/pages/a.html", "text/html; charset=utf-8"),
        ("/feeds/feed.xml", "application/rss+xml; charset=utf-8"),
        ("/data/plain.xml", "application/xml; charset=utf-8"),
        ("/api/x.json", "application/json"),
    ],
)
def test_content_types(server: LoopbackServer, path: str, content_type: str) -> None:
    status, headers, body = fetch(server, path)
    assert status == 200
    assert headers["Content-Type"] == content_type
    assert headers["Content-Length"] == str(len(body))


def test_head_sends_headers_without_body(server: LoopbackServer) -> None:
    status, headers, body = fetch(server, "/pages/a.html", method="HEAD")
    assert (status, body) == (200, b"")
    assert headers["Content-Length"] == str(len(TREE["v1/pages/a.html"]))
    assert headers["ETag"] == make_etag(TREE["v1/pages/a.html"])


def test_binds_loopback_only(root: Path) -> None:
    with pytest.raises(ValueError, match="loopback"):
        LoopbackServer(root, host="0.0.0.0")
    with LoopbackServer(root) as srv:
        assert srv.url.startswith("http://127.0.0.1:")


# -- conditional GET -----------------------------------------------------------------------------


def test_validators_then_304(server: LoopbackServer) -> None:
    status, headers, body = fetch(server, "/pages/a.html")
    etag, modified = headers["ETag"], headers["Last-Modified"]
    assert status == 200
    assert etag == make_etag(body) and etag.startswith('"') and not etag.startswith("W/")
    assert parsedate_to_datetime(modified).year == 2026

    again = fetch(server, "/pages/a.html")[1]
    assert (again["ETag"], again["Last-Modified"]) == (etag, modified)  # deterministic

    cases = [
        ({"If-None-Match": etag}, 304),
        ({"If-None-Match": f'"other", W/{etag}'}, 304),  # list and weak comparison
        ({"If-None-Match": '"other"'}, 200),
        ({"If-Modified-Since": modified}, 304),
        ({"If-Modified-Since": "Sat, 01 Jan 2050 00:00:00 GMT"}, 304),
        ({"If-Modified-Since": "Mon, 01 Jan 2024 00:00:00 GMT"}, 200),
        ({"If-Modified-Since": "not a date"}, 200),
        ({"If-None-Match": '"other"', "If-Modified-Since": modified}, 200),  # INM wins
    ]
    for request_headers, expected in cases:
        got, response_headers, got_body = fetch(server, "/pages/a.html", headers=request_headers)
        assert got == expected, request_headers
        if expected == 304:
            assert got_body == b""
            assert response_headers["ETag"] == etag


def test_new_version_gives_new_etag_and_200(server: LoopbackServer) -> None:
    _, a1, _ = fetch(server, "/pages/a.html")
    _, b1, _ = fetch(server, "/pages/b.html")
    server.set_version(2)
    status, a2, body = fetch(
        server,
        "/pages/a.html",
        headers={"If-None-Match": a1["ETag"]},
    )
    assert (status, body) == (200, b"<main>A v2</main>")
    assert a2["ETag"] != a1["ETag"]
    assert parsedate_to_datetime(a2["Last-Modified"]) > parsedate_to_datetime(a1["Last-Modified"])
    since = {"If-Modified-Since": a1["Last-Modified"]}
    status, _, _ = fetch(server, "/pages/a.html", headers=since)
    assert status == 200
    # b.html did not change in v2: same validators, still 304
    for request_headers in (
        {"If-None-Match": b1["ETag"]},
        {"If-Modified-Since": b1["Last-Modified"]},
    ):
        status, b2, _ = fetch(server, "/pages/b.html", headers=request_headers)
        assert status == 304
        assert (b2["ETag"], b2["Last-Modified"]) == (b1["ETag"], b1["Last-Modified"])


# -- faults --------------------------------------------------------------------------------------

FAULTS = [
    # name, spec, expected statuses of consecutive GETs
    ("500 every time", {"status": 500}, [500, 500, 500]),
    ("503 twice then fine", {"status": 503, "times": 2}, [503, 503, 200, 200]),
    ("429 with retry-after", {"status": 429, "retry_after": "2"}, [429, 429]),
    ("empty 200", {"body": b""}, [200]),
]


@pytest.mark.parametrize(("spec", "statuses"), [f[1:] for f in FAULTS], ids=[f[0] for f in FAULTS])
def test_status_faults(server: LoopbackServer, spec: dict, statuses: list[int]) -> None:
    server.faults["/pages/a.html"] = spec
    got = []
    for _ in statuses:
        status, headers, body = fetch(server, "/pages/a.html")
        got.append(status)
        if "retry_after" in spec:
            assert headers["Retry-After"] == "2"
        if "body" in spec:
            assert body == spec["body"]
            assert headers["ETag"] == make_etag(spec["body"])
    assert got == statuses
    assert fetch(server, "/pages/b.html")[0] == 200  # exact path only


def test_replacing_a_times_fault_restarts_its_count(server: LoopbackServer) -> None:
    server.faults["/pages/a.html"] = {"status": 503, "times": 1}
    assert [fetch(server, "/pages/a.html")[0] for _ in range(2)] == [503, 200]
    server.faults["/pages/a.html"] = {"status": 503, "times": 1}
    assert [fetch(server, "/pages/a.html")[0] for _ in range(2)] == [503, 200]
    del server.faults["/pages/a.html"]
    assert fetch(server, "/pages/a.html")[0] == 200


def test_truncate_fault_loses_data(server: LoopbackServer) -> None:
    server.faults["/pages/a.html"] = {"truncate": True}
    with pytest.raises(http.client.IncompleteRead):
        fetch(server, "/pages/a.html")
    assert server.hits[-1].status == 200


def test_delay_fault(server: LoopbackServer) -> None:
    server.faults["/pages/a.html"] = {"delay": 0.3}
    started = time.monotonic()
    status, _, body = fetch(server, "/pages/a.html")
    assert time.monotonic() - started >= 0.3
    assert (status, body) == (200, b"<main>A v1</main>")


def test_redirect_fault_is_followed_by_urllib(server: LoopbackServer) -> None:
    server.faults["/pages/a.html"] = {"redirect": "/other.html"}
    status, headers, _ = fetch(server, "/pages/a.html")
    assert (status, headers["Location"]) == (302, server.url + "/other.html")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(server.url + "/pages/a.html", timeout=5) as response:
        assert response.url == server.url + "/other.html"
        assert response.read() == b"<main>other</main>"


def test_fault_on_unknown_path_and_urllib_errors(server: LoopbackServer) -> None:
    server.faults["/invented.json"] = {"body": b"{}"}
    assert fetch(server, "/invented.json")[:3:2] == (200, b"{}")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    server.faults["/pages/a.html"] = {"status": 500}
    with pytest.raises(urllib.error.HTTPError) as caught:
        opener.open(server.url + "/pages/a.html", timeout=5)
    caught.value.close()
    assert caught.value.code == 500


# -- control, robots, log ------------------------------------------------------------------------


def test_control_endpoints(server: LoopbackServer) -> None:
    assert fetch(server, "/__version")[::2] == (200, b"1\n")
    assert fetch(server, "/__set_version/2", method="POST")[::2] == (200, b"2\n")
    assert server.version == 2
    assert fetch(server, "/pages/a.html")[2] == b"<main>A v2</main>"
    assert fetch(server, "/__set_version/3")[::2] == (200, b"3\n")
    assert fetch(server, "/__version")[::2] == (200, b"3\n")
    assert fetch(server, "/__set_version/zero")[0] == 400
    assert fetch(server, "/__set_version/0")[0] == 400
    assert server.version == 3
    assert fetch(server, "/pages/a.html", method="POST")[0] == 405
    with pytest.raises(ValueError):
        server.set_version(0)


def test_robots_default_and_override(root: Path) -> None:
    with LoopbackServer(root) as srv:
        status, headers, body = fetch(srv, "/robots.txt")
        assert (status, body) == (200, DEFAULT_ROBOTS)
        assert body == b"User-agent: *\nAllow: /\n"
        assert headers["Content-Type"].startswith("text/plain")
    (root / "robots.txt").write_bytes(b"User-agent: *\nDisallow: /pages/\n")
    with LoopbackServer(root) as srv:
        assert fetch(srv, "/robots.txt")[2] == b"User-agent: *\nDisallow: /pages/\n"


def test_request_log(server: LoopbackServer) -> None:
    fetch(server, "/pages/a.html", headers={"If-None-Match": '"x"', "User-Agent": "probe"})
    fetch(server, "/missing.html", method="HEAD")
    first, second = server.hits
    assert first[:3] == ("GET", "/pages/a.html", 200)
    assert first.headers["if-none-match"] == '"x"'  # case-insensitive
    assert first.headers["User-Agent"] == "probe"
    assert (second.method, second.target, second.status) == ("HEAD", "/missing.html", 404)
    assert [r.status for r in server.hits_for("/pages/a.html")] == [200]
    server.clear_hits()
    assert server.hits == []


def test_stop_is_idempotent_and_frees_the_port(root: Path) -> None:
    srv = LoopbackServer(root).start()
    port = srv.port
    srv.stop()
    srv.stop()
    with pytest.raises(RuntimeError):
        _ = srv.url
    with LoopbackServer(root, port=port) as again:  # the socket was really closed
        assert fetch(again, "/pages/a.html")[0] == 200


def test_cli_prints_url_and_serves(root: Path) -> None:
    command = [sys.executable, "-m", "tests.support.loopback", str(root), "--version", "2"]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, text=True
    ) as proc:
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().strip()
            assert url.startswith("http://127.0.0.1:")
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            with opener.open(url + "/pages/a.html", timeout=5) as response:
                assert response.read() == b"<main>A v2</main>"
        finally:
            proc.terminate()
            _, stderr = proc.communicate(timeout=5)
    assert proc.returncode == 0
    assert stderr == ""  # quiet: no per-request logging


# -- scripts -------------------------------------------------------------------------------------

JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("target", "route", "key"),
    [
        ("/drug/label.json", "/drug/label.json", None),
        ("/drug/label.json?search=x&limit=2", "/drug/label.json?limit=2&search=x", None),
        ("/drug/label.json?api_key=K1&search=x", "/drug/label.json?search=x", "K1"),
        ("/api?conditions%5Bterm%5D=ketamine", "/api?conditions[term]=ketamine", None),
    ],
)
def test_route_sorts_the_query_and_sets_the_api_key_apart(
    target: str, route: str, key: str | None
) -> None:
    assert route_of(target) == (route, key)


def test_script_answers_in_turn_then_repeats_the_last() -> None:
    with LoopbackServer() as srv:
        srv.script(
            "/api?page=2&q=k", Answer(429, b"slow", {"Retry-After": "1"}), Answer(200, b"{}")
        )
        got = [fetch(srv, "/api?q=k&page=2&api_key=SECRET") for _ in range(3)]
        statuses = [(status, body) for status, _, body in got]
        assert statuses == [(429, b"slow"), (200, b"{}"), (200, b"{}")]
        assert got[0][1]["Retry-After"] == "1"
        assert fetch(srv, "/api?q=k")[0] == 404  # another route: not scripted
        assert [hit.status for hit in srv.hits_for("/api?page=2&q=k")] == [429, 200, 200]
        assert {hit.api_key for hit in srv.hits_for("/api?page=2&q=k")} == {"SECRET"}
        assert [hit.status for hit in srv.hits_on("/api")] == [429, 200, 200, 404]
        srv.reset()
        assert fetch(srv, "/api?page=2&q=k")[0] == 404
        assert [hit.status for hit in srv.hits] == [404]
    assert srv.errors == []


def test_a_script_wins_over_the_recorded_file(server: LoopbackServer) -> None:
    server.script("/pages/a.html", Answer(200, b"<main>scripted</main>", {"X-Test": "1"}))
    status, headers, body = fetch(server, "/pages/a.html")
    assert (status, body, headers["X-Test"]) == (200, b"<main>scripted</main>", "1")
    assert headers["ETag"] is None  # a script sends only its own headers
    assert fetch(server, "/pages/b.html")[2] == b"<main>B v1</main>"


def test_a_short_body_a_304_with_a_body_and_a_custom_server_header() -> None:
    with LoopbackServer() as srv:
        srv.script("/short", Answer(200, b"<main>cut", length=400))
        srv.script("/odd", Answer(304, b"body anyway", {"ETag": '"v1"', "Server": "AkamaiGHost"}))
        with pytest.raises(http.client.IncompleteRead):
            fetch(srv, "/short")
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
        conn.request("GET", "/odd")
        response = conn.getresponse()
        assert (response.status, response.headers.get_all("Server")) == (304, ["AkamaiGHost"])
        conn.close()


def test_stop_cuts_a_dripping_answer_short() -> None:
    srv = LoopbackServer().start()
    srv.script("/drip", Answer(200, b"x" * 1000, drip=0.5))
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    conn.request("GET", "/drip")
    response = conn.getresponse()
    assert response.read(1) == b"x"
    started = time.monotonic()
    srv.stop()  # would take 500 s if the drip ran to its end
    assert time.monotonic() - started < 3
    conn.close()


# -- the demo tree -------------------------------------------------------------------------------


def _feed_links(body: bytes) -> list[str]:
    return [item.findtext("link") or "" for item in ET.fromstring(body).iter("item")]


def test_demo_feed_versions(tmp_path: Path) -> None:
    with LoopbackServer(DEMO) as srv:
        bodies = []
        for version in (1, 2, 3):
            srv.set_version(version)
            status, headers, body = fetch(srv, "/feeds/fda-food-safety-recalls.xml")
            assert status == 200
            assert headers["Content-Type"].startswith("application/rss+xml")
            bodies.append(body)
    links = [_feed_links(b) for b in bodies]
    assert [len(x) for x in links] == [20, 20, 20]
    assert len(set(links[1]) - set(links[0])) == 1  # v1 -> v2: exactly one new item
    assert len(set(links[2]) - set(links[1])) == 1  # v2 -> v3: exactly one new item


def test_demo_sources_load_and_resolve() -> None:
    text = (DEMO / "sources.toml").read_text(encoding="utf-8")
    assert "{port}" in text
    with LoopbackServer(DEMO) as srv:
        data = tomllib.loads(text.replace("{port}", str(srv.port)))
        sources = parse_sources(data, DEMO / "sources.toml")
        assert list(sources) == [
            "fda_food_safety_recalls",
            "fda_ketamine_oral_alert",
            "fda_compounding_risk_alerts",
            "fda_spravato_rems",
            "fda_date_only_demo",
        ]
        bodies: dict[int, dict[str, bytes]] = {}
        for version in (1, 2):
            srv.set_version(version)
            for source in sources.values():
                status, _, body = fetch(srv, source.url.removeprefix(srv.url))
                assert status == 200, (version, source.id)
                bodies.setdefault(version, {})[source.id] = body
    # every demo source has a different v2 (the date-only page differs only in its date)
    assert all(bodies[1][sid] != bodies[2][sid] for sid in sources)


def test_demo_versions_name_the_one_copy_of_each_fixture() -> None:
    """The demo's version folders hold no copies, only manifests naming the fixtures they serve."""
    tree = FixtureTree(DEMO)
    assert tree.versions() == [1, 2, 3]
    for version in tree.versions():
        folder = DEMO / f"v{version}"
        assert [file.name for file in folder.rglob("*") if file.is_file()] == ["manifest.toml"]
    served = {
        version: {path: file.relative_to(FIXTURES).as_posix() for path, file in files.items()}
        for version, files in ((k, tree.manifest(k)) for k in tree.versions())
    }
    captures = "rss/fda-food-safety-recalls-history/"
    assert served == {
        1: {
            "feeds/fda-food-safety-recalls.xml": captures + "001_20241114T1258Z_d2a4a52c.xml",
            "pages/ketamine-oral-alert.html": "pages/ketamine_oral_alert_synthetic_v1.html",
            "pages/compounding-risk-alerts.html": "pages/compounding_risk_alerts_synthetic_v1.html",
            "pages/spravato-rems.html": "pages/spravato_rems_synthetic_2019.html",
            "pages/date-only.html": "pages/ketamine_oral_alert_synthetic_v1.html",
        },
        2: {
            "feeds/fda-food-safety-recalls.xml": captures + "002_20241117T1349Z_e34b9bb7.xml",
            "pages/ketamine-oral-alert.html": (
                "pages/ketamine_oral_alert_synthetic_v5_sentence_edited.html"
            ),
            "pages/compounding-risk-alerts.html": (
                "pages/compounding_risk_alerts_synthetic_v2_new_row.html"
            ),
            "pages/spravato-rems.html": "pages/spravato_rems_synthetic_2024.html",
            "pages/date-only.html": "pages/ketamine_oral_alert_synthetic_v2_date_only.html",
        },
        3: {"feeds/fda-food-safety-recalls.xml": captures + "003_20241119T1149Z_180d7d74.xml"},
    }
    for files in served.values():
        for path, file in files.items():
            if path.startswith("pages/"):
                assert b"SYNTHETIC" in (FIXTURES / file).read_bytes()[:1000], file


def test_each_fixture_file_is_kept_once() -> None:
    """Served trees name their files in manifests instead of copying them (two known exceptions)."""
    by_hash: dict[str, list[str]] = {}
    for file in sorted(FIXTURES.rglob("*")):
        if file.is_file():
            digest = hashlib.sha256(file.read_bytes()).hexdigest()
            by_hash.setdefault(digest, []).append(file.relative_to(FIXTURES).as_posix())
    copies = sorted(files for files in by_hash.values() if len(files) > 1)
    # tests/scheduler/ still reads these two by path; they go when it reads them via the manifest.
    assert copies == [
        [
            "health/v1/pages/ketamine_oral_alert_synthetic_v6_layout_drift.html",
            "pages/ketamine_oral_alert_synthetic_v6_layout_drift.html",
        ],
        [
            "health/v2/pages/ketamine_oral_alert_synthetic.html",
            "pages/ketamine_oral_alert_synthetic_v5_sentence_edited.html",
        ],
    ]


def test_a_manifest_serves_files_kept_elsewhere_by_version(tmp_path: Path) -> None:
    kept = tmp_path / "pages"
    kept.mkdir()
    (kept / "alert_v1.html").write_bytes(b"<main>alert v1</main>")
    (kept / "alert_v2.html").write_bytes(b"<main>alert v2</main>")
    site = tmp_path / "site"
    for version, name in ((1, "alert_v1.html"), (2, "alert_v2.html")):
        (site / f"v{version}").mkdir(parents=True)
        (site / f"v{version}" / "manifest.toml").write_text(
            f'[files]\n"pages/alert.html" = "../../pages/{name}"\n', encoding="utf-8"
        )
    (site / "v1" / "pages").mkdir()
    (site / "v1" / "pages" / "own.html").write_bytes(b"<main>a file of v1's own</main>")
    with LoopbackServer(site) as srv:
        answers = []
        for version in (1, 2, 3):
            srv.set_version(version)
            status, headers, body = fetch(srv, "/pages/alert.html")
            answers.append((status, body, headers["X-Fixture-Version"]))
        assert answers == [
            (200, b"<main>alert v1</main>", "1"),
            (200, b"<main>alert v2</main>", "2"),
            (200, b"<main>alert v2</main>", "2"),  # v3 has no folder: v2's file answers
        ]
        assert fetch(srv, "/pages/own.html")[::2] == (200, b"<main>a file of v1's own</main>")
        assert fetch(srv, "/manifest.toml")[0] == 404  # a manifest steers; it is never served
        assert fetch(srv, "/v1/manifest.toml")[0] == 404


def test_a_manifest_naming_a_missing_file_fails_when_the_server_is_made(tmp_path: Path) -> None:
    (tmp_path / "v1").mkdir()
    (tmp_path / "v1" / "manifest.toml").write_text(
        '[files]\n"pages/a.html" = "../gone.html"\n', encoding="utf-8"
    )
    with pytest.raises(FileNotFoundError, match=r"'pages/a.html' names '../gone.html', which does"):
        LoopbackServer(tmp_path)


def test_last_modified_is_an_http_date(server: LoopbackServer) -> None:
    modified = fetch(server, "/pages/a.html")[1]["Last-Modified"]
    assert modified.endswith(" GMT")
    assert format_datetime(parsedate_to_datetime(modified), usegmt=True) == modified
