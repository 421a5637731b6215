"""A real crawl (`run_crawl`, child process) of openFDA, Federal Register and DailyMed sources.

A loopback server answers by path and query string (tests/support/loopback.py): openFDA
recall pages by `skip=` (page 2 first answers 429 with Retry-After), Federal Register pages by
`next_page_url`, and a DailyMed history followed by its SPL XML.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import Session, select

from db.engine import open_database
from db.models import Change, Fetch, Snapshot
from monitor.config import load_settings
from monitor.runtime.crawl import run_crawl
from monitor.sources import load_sources
from tests.support.loopback import Answer, LoopbackServer
from tests.support.paths import DAILYMED, FEDERAL_REGISTER, OPENFDA

pytestmark = pytest.mark.slow

KEY = "SECRET-KEY-e2e-42"
SETID = "9525f887-a055-4e33-8e92-898d42828cd1"
RECALLS = '/drug/enforcement.json?search=product_description:"ketamine"&limit=2'
FEDREG = "/api/v1/documents.json?conditions%5Bterm%5D=ketamine&per_page=2"
HISTORY = f"/dailymed/services/v2/spls/{SETID}/history.json"
JSON = {"Content-Type": "application/json"}
XML = {"Content-Type": "application/xml"}
SOURCES = """
[[source]]
id = "recalls"
kind = "openfda_recalls"
url = '{base}{recalls}'
confirm_removal = 1
tier = "T2"

[[source]]
id = "fedreg"
kind = "federal_register"
url = "{base}{fedreg}"

[[source]]
id = "dailymed"
kind = "dailymed_spl"
url = "{base}{history}"
"""


def serve_recalls(server: LoopbackServer, page1: bytes, page2: bytes | None) -> None:
    server.script(RECALLS, Answer(200, page1, JSON))
    if page2 is not None:
        slow_down = Answer(429, b'{"error": "slow down"}', {**JSON, "Retry-After": "1"})
        server.script(RECALLS + "&skip=2", slow_down, Answer(200, page2, JSON))


def serve_the_rest(server: LoopbackServer) -> None:
    for n in (1, 2):
        text = (FEDERAL_REGISTER / f"SYNTHETIC-documents-ketamine-page{n}.json").read_text()
        target = FEDREG if n == 1 else FEDREG.replace("per_page=2", "page=2&per_page=2")
        server.script(target, Answer(200, text.replace("{base}", server.url).encode(), JSON))
    history = (DAILYMED / "dailymed-v2-spls-history-vitrakvi-9525f887.json").read_bytes()
    server.script(HISTORY, Answer(200, history, JSON))
    xml = (DAILYMED / "spl-rogaine-1b5e2860_v1-from-zip.xml").read_bytes()
    server.script(HISTORY.replace("/history.json", ".xml"), Answer(200, xml, XML))


def test_api_sources_page_honour_429_and_diff_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FDAWATCH_OPENFDA_API_KEY", KEY)
    with LoopbackServer() as server:
        sources_file = tmp_path / "sources.toml"
        sources_file.write_text(
            SOURCES.format(base=server.url, recalls=RECALLS, fedreg=FEDREG, history=HISTORY)
        )
        settings = load_settings({
            "FDAWATCH_SOURCES": str(sources_file),
            "FDAWATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'history.db'}",
            "FDAWATCH_CONFIG": "",
            "FDAWATCH_VAR_DIR": str(tmp_path / "var"),
            "FDAWATCH_CRAWL_DELAY": "0",
            "FDAWATCH_CRAWL_CONCURRENCY_PER_HOST": "8",
        })  # fmt: skip
        sources = list(load_sources(sources_file).values())
        engine = open_database(settings.database_url)
        page1, page2 = (
            (OPENFDA / f"SYNTHETIC-ketamine-recalls-page{n}.json").read_bytes() for n in (1, 2)
        )
        serve_recalls(server, page1, page2)
        serve_the_rest(server)

        first = run_crawl(engine, settings, sources, timeout=120, log_level="DEBUG")

        results = {r.source_id: (r.outcome, r.documents, r.changes) for r in first.results}
        assert results == {
            "recalls": ("ok", 3, 0),
            "fedreg": ("ok", 3, 0),
            "dailymed": ("ok", 1, 0),
        }, first.stderr_tail
        retried = server.hits_for(RECALLS + "&skip=2")
        assert [hit.status for hit in retried] == [429, 200]
        assert retried[1].at - retried[0].at >= 0.9  # Retry-After: 1 was honoured
        assert {hit.api_key for hit in server.hits if "enforcement" in hit.route} == {KEY}
        assert {hit.api_key for hit in server.hits if "enforcement" not in hit.route} == {None}

        # Second pass: D-0103 reclassified Class II → Class I, D-0102 gone (a complete set;
        # this source removes a record at its first absence: confirm_removal = 1).
        server.reset()
        data = json.loads(page1)
        d0103 = json.loads(page2)["results"][0] | {"classification": "Class I"}
        data["results"] = [data["results"][0], d0103]
        data["meta"]["results"]["total"] = 2
        serve_recalls(server, json.dumps(data).encode(), None)
        serve_the_rest(server)

        second = run_crawl(engine, settings, sources, timeout=120)

        assert {r.source_id: r.changes for r in second.results} == {
            "recalls": 2, "fedreg": 0, "dailymed": 0,
        }, second.stderr_tail  # fmt: skip
        with Session(engine) as session:
            changes = session.exec(select(Change).order_by(Change.id)).all()
            found = [(c.doc_key, c.kind, c.severity, c.sections) for c in changes]
            assert found == [
                ("D-0103-2026", "changed", "T1", ["classification"]),
                ("D-0102-2026", "removed", "T2", []),
            ]
            stored = [f.url + (f.error or "") for f in session.exec(select(Fetch)).all()]
            stored += [s.url + s.text for s in session.exec(select(Snapshot)).all()]
            assert not [text for text in stored if KEY in text]
            labels = session.exec(select(Snapshot).where(Snapshot.source_id == "dailymed")).all()
            assert [s.doc_key for s in labels] == [SETID]
            assert "## WARNINGS [34071-1]" in labels[0].text
        assert KEY not in first.stderr_tail + second.stderr_tail
        engine.dispose()
