"""A real crawl (`run_crawl`, child process) of the two listing kinds on a loopback server.

Warning letters: the first crawl fetches the listed letters once (the baseline); the next crawl
is told the stored keys (monitor.runtime.scrapy_addon / crawl_process read them from the
history), fetches only the letter that is new, and records it as a T1 change; letters dropping
out of the listing are not removals. The public-inspection desk: terms keep the relevant
filings, yesterday's filings leave the desk without a removal, a DEA telemedicine rule is T1.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import Session, select

from db.engine import open_database
from db.models import Change, Document
from monitor.config import load_settings
from monitor.items import canonical_url
from monitor.runtime.crawl import run_crawl
from monitor.sources import load_sources
from tests.support.loopback import Answer, LoopbackServer
from tests.support.paths import FEDERAL_REGISTER, FIXTURES

pytestmark = pytest.mark.slow

LETTERS = FIXTURES / "warning_letters"
LISTING = (
    "/datatables/views/ajax?search_api_fulltext=ketamine&view_name=warning_letter_solr_index"
    "&view_display_id=warning_letter_solr_block&draw=1&start=0&length=100"
)
DESK = "/api/v1/public-inspection-documents/current.json"
JSON = {"Content-Type": "application/json"}
LETTER_PATH = "/inspections-compliance-enforcement-and-criminal-investigations/warning-letters/"
KETAMINE = LETTER_PATH + "synthetic-ketamine-clinic-rx-700101-03102026"
TELEHEALTH = LETTER_PATH + "synthetic-slim-telehealth-700102-03032026"
SUPPLEMENT = LETTER_PATH + "synthetic-herbal-supplements-700103-02202026"
SOURCES = """
[[source]]
id = "letters"
kind = "fda_warning_letters"
url = "{base}{listing}"
selector = "#main-content"
tier = "T1"

[[source]]
id = "desk"
kind = "federal_register_inspection"
url = "{base}{desk}"
terms = ["@ketamine", "telemedicine", "compounding"]
"""


def serve(server: LoopbackServer, listing: str, filings: list[int]) -> None:
    server.reset()
    listed = (LETTERS / f"SYNTHETIC-listing-{listing}.json").read_bytes()
    server.script(LISTING, Answer(200, listed, JSON))
    for path in (KETAMINE, TELEHEALTH, SUPPLEMENT):
        page = (LETTERS / f"{path.rsplit('/', 1)[1]}_synthetic.html").read_bytes()
        server.script(path, Answer(200, page, {"Content-Type": "text/html; charset=utf-8"}))
    data = json.loads((FEDERAL_REGISTER / "SYNTHETIC-public-inspection-current.json").read_text())
    data["results"] = [data["results"][n] for n in filings]
    data["count"] = len(filings)
    server.script(DESK, Answer(200, json.dumps(data).encode(), JSON))


def test_listing_sources_record_only_new_documents_and_never_remove(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with LoopbackServer() as server:
        sources_file = tmp_path / "sources.toml"
        sources_file.write_text(SOURCES.format(base=server.url, listing=LISTING, desk=DESK))
        settings = load_settings({
            "FDAWATCH_SOURCES": str(sources_file),
            "FDAWATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'history.db'}",
            "FDAWATCH_CONFIG": "",
            "FDAWATCH_VAR_DIR": str(tmp_path / "var"),
            "FDAWATCH_CRAWL_DELAY": "0",
        })  # fmt: skip
        sources = list(load_sources(sources_file).values())
        engine = open_database(settings.database_url)

        # Day 1: two letters listed, the desk holds a Forest Service and an FDA notice.
        serve(server, "v1", [1, 2])
        first = run_crawl(engine, settings, sources, timeout=120)

        results = {r.source_id: (r.outcome, r.documents, r.changes) for r in first.results}
        assert results == {"letters": ("ok", 2, 0), "desk": ("ok", 2, 0)}, first.stderr_tail
        [listing] = server.hits_for(LISTING)
        assert listing.headers.get("x-requested-with") == "XMLHttpRequest"
        assert [len(server.hits_for(p)) for p in (TELEHEALTH, SUPPLEMENT, KETAMINE)] == [1, 1, 0]

        # Day 2: a ketamine letter is listed on top; the desk holds only the DEA rule.
        serve(server, "v2", [0])
        second = run_crawl(engine, settings, sources, timeout=120)

        results = {r.source_id: (r.outcome, r.documents, r.changes) for r in second.results}
        assert results == {"letters": ("ok", 1, 1), "desk": ("ok", 1, 1)}, second.stderr_tail
        assert [len(server.hits_for(p)) for p in (TELEHEALTH, SUPPLEMENT, KETAMINE)] == [0, 0, 1]

        # Day 3: the same answers: nothing is fetched again, nothing changes.
        serve(server, "v2", [0])
        third = run_crawl(engine, settings, sources, timeout=120)

        assert {r.source_id: r.changes for r in third.results} == {"letters": 0, "desk": 0}
        assert [len(server.hits_for(p)) for p in (TELEHEALTH, SUPPLEMENT, KETAMINE)] == [0, 0, 0]

        with Session(engine) as session:
            changes = session.exec(select(Change).order_by(Change.id)).all()
            found = sorted((c.source_id, c.doc_key, c.kind, c.severity) for c in changes)
            assert found == [
                ("desk", "2025-24123", "new", "T1"),
                ("letters", canonical_url(server.url + KETAMINE), "new", "T1"),
            ]
            [letter] = [c for c in changes if c.source_id == "letters"]
            assert letter.title == (
                "Warning letter to Synthetic Ketamine Clinic Rx LLC: "
                "Unapproved New Drugs/Misbranded/Internet Sales (Telehealth)"
            )
            documents = session.exec(
                select(Document.source_id, Document.doc_key, Document.removed_at)
            ).all()
            assert sorted((s, k.rsplit("/", 1)[-1], r) for s, k, r in documents) == [
                ("desk", "2025-24123", None),
                ("desk", "2025-24161", None),  # left the desk on day 2: not removed
                ("letters", "synthetic-herbal-supplements-700103-02202026", None),
                ("letters", "synthetic-ketamine-clinic-rx-700101-03102026", None),
                ("letters", "synthetic-slim-telehealth-700102-03032026", None),
            ]
        engine.dispose()
