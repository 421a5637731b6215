"""The Federal Register public-inspection desk and Drugs@FDA by ingredient, on SYNTHETIC answers.

Spiders first (the shape each answer must have, or the fetch fails loudly), then the history
(terms, rolling off the desk, a new application) with the shipped sources.toml entries.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from scrapy import Request
from scrapy.http import Response, TextResponse
from scrapy.utils.test import get_crawler
from sqlmodel import Session, select

from db.models import Change, Document
from monitor.config import Settings
from monitor.history.writer import HistoryWriter
from monitor.items import FAILED, OK, RECORD, Observation, SourceFetch
from monitor.sources import SourceConfig, load_sources
from spiders.federal_register import FederalRegisterInspectionSpider
from spiders.openfda import OpenfdaDrugsfdaSpider
from tests.support.api_history import crawl
from tests.support.clock import Clock
from tests.support.paths import FEDERAL_REGISTER, OPENFDA, PAGES, ROOT
from tests.support.spiders import start_requests

SHIPPED = load_sources(ROOT / "sources.toml")
INSPECTION = SHIPPED["federal_register_public_inspection"]
ESKETAMINE_APPS = SHIPPED["openfda_esketamine_drugsfda"]


def spider_for(cls: type, source: SourceConfig) -> Any:
    settings = {
        "FDAWATCH_SOURCES": {source.id: source.to_dict()},
        "FDAWATCH_VALIDATORS": {},
        "FDAWATCH_SETTINGS": Settings(),
    }
    return cls.from_crawler(get_crawler(cls, settings), source="all")


def answer(request: Request, body: bytes, status: int = 200) -> Response:
    request.meta.setdefault("download_latency", 0.1)
    headers = {"Content-Type": "application/json"}
    return TextResponse(request.url, status=status, headers=headers, body=body, request=request)


def fetch_once(cls: type, source: SourceConfig, body: bytes) -> tuple[list[Observation], Any]:
    spider = spider_for(cls, source)
    [request] = start_requests(spider)
    *observations, fetch = list(spider.parse(answer(request, body)))
    assert isinstance(fetch, SourceFetch)
    return observations, fetch


def desk() -> dict[str, Any]:
    path = FEDERAL_REGISTER / "SYNTHETIC-public-inspection-current.json"
    return json.loads(path.read_text(encoding="utf-8"))


def drugsfda(version: int) -> bytes:
    return (OPENFDA / f"SYNTHETIC-drugsfda-esketamine-v{version}.json").read_bytes()


# --- the spiders -------------------------------------------------------------------------------


def test_public_inspection_desk_gives_one_record_per_filing_without_view_counts() -> None:
    observations, fetch = fetch_once(
        FederalRegisterInspectionSpider, INSPECTION, json.dumps(desk()).encode()
    )

    assert [o.key for o in observations] == ["2025-24123", "2025-24150", "2025-24161"]
    rule = observations[0]
    assert rule.title == (
        "Controlled Substances: Fourth Temporary Extension of COVID-19 Telemedicine "
        "Flexibilities for Prescription of Controlled Medications"
    )
    assert rule.url == "https://www.federalregister.gov/public-inspection/2025-24123/synthetic"
    assert rule.content_type == RECORD
    assert "page_views" not in json.loads(rule.content)  # counts up on every fetch
    assert json.loads(rule.content)["filing_type"] == "special"
    assert (fetch.outcome, fetch.documents, fetch.url) == (OK, 3, INSPECTION.url)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (
            desk() | {"count": 107},
            "lists 3 results but says count 107: the list is no longer the whole desk",
        ),
        ({"results": []}, "answer without a count"),
        ({"count": 2, "results": {"a": 1}}, "lists no results but says count 2"),
        ([{"document_number": "x"}], "answer without a count"),
    ],
)
def test_a_public_inspection_answer_of_another_shape_fails_the_fetch(data: Any, error: str) -> None:
    observations, fetch = fetch_once(
        FederalRegisterInspectionSpider, INSPECTION, json.dumps(data).encode()
    )

    assert observations == []
    assert fetch.outcome == FAILED
    assert error in (fetch.error or "")


@pytest.mark.parametrize("data", [{"count": 0, "results": []}, {"description": "x", "count": 0}])
def test_an_empty_desk_is_an_ok_fetch(data: dict[str, Any]) -> None:
    observations, fetch = fetch_once(
        FederalRegisterInspectionSpider, INSPECTION, json.dumps(data).encode()
    )

    assert (observations, fetch.outcome, fetch.documents) == ([], OK, 0)


def test_drugsfda_by_ingredient_lists_every_submission_of_every_application() -> None:
    observations, fetch = fetch_once(OpenfdaDrugsfdaSpider, ESKETAMINE_APPS, drugsfda(2))

    assert [o.key for o in observations] == [
        "NDA211243 ORIG 1",
        "NDA211243 SUPPL 19",
        "ANDA219999 ORIG 1",
    ]
    assert observations[2].title == "ESKETAMINE HYDROCHLORIDE: ANDA219999 ORIG 1 (Standard)"
    assert (fetch.outcome, fetch.documents) == (OK, 3)


# --- the history -------------------------------------------------------------------------------


def records(results: list[dict[str, Any]]) -> dict[str, str]:
    return {r["document_number"]: json.dumps(r) for r in results}


def inspection_changes(session: Session, results: list[dict[str, Any]], at: Any) -> list[Change]:
    return crawl(session, INSPECTION, records(results), RECORD, at)


def test_public_inspection_keeps_only_filings_naming_the_terms_and_never_removes_them(
    session: Session, registered: Callable[..., list[SourceConfig]], clock: Clock
) -> None:
    registered(INSPECTION)
    dea_rule, forest_notice, fda_notice = desk()["results"]
    inspection_changes(session, [forest_notice, fda_notice], clock.tick())  # the baseline

    next_day = inspection_changes(session, [dea_rule], clock.tick())
    stored = session.exec(select(Document.doc_key, Document.removed_at)).all()

    [change] = next_day
    assert (change.kind, change.doc_key, change.severity) == ("new", "2025-24123", "T1")
    assert change.severity_reasons[0].startswith("new Federal Register DEA final rule naming")
    # The Forest Service notice names no term and is never stored; yesterday's FDA notice left
    # the desk and is not removed.
    assert sorted(stored) == [("2025-24123", None), ("2025-24161", None)]
    assert session.exec(select(Change).where(Change.kind == "removed")).all() == []


def test_a_new_esketamine_application_is_t1(
    session: Session, registered: Callable[..., list[SourceConfig]], clock: Clock
) -> None:
    registered(ESKETAMINE_APPS)
    first, _ = fetch_once(OpenfdaDrugsfdaSpider, ESKETAMINE_APPS, drugsfda(1))
    crawl(session, ESKETAMINE_APPS, {o.key: o.content for o in first}, RECORD, clock.tick())

    second, _ = fetch_once(OpenfdaDrugsfdaSpider, ESKETAMINE_APPS, drugsfda(2))
    [change] = crawl(
        session, ESKETAMINE_APPS, {o.key: o.content for o in second}, RECORD, clock.tick()
    )

    assert (change.kind, change.doc_key, change.severity) == ("new", "ANDA219999 ORIG 1", "T1")
    assert change.severity_reasons == [
        "a new application (ORIG STANDARD) for esketamine: a new product: T1"
    ]


def test_significant_safety_risks_page_gaining_a_ketamine_row_is_t1(
    session: Session, registered: Callable[..., list[SourceConfig]], clock: Clock
) -> None:
    source = SHIPPED["fda_bulks_significant_safety_risks"]
    registered(source)
    changes = []
    for name in ("v1", "v2_ketamine_row"):
        html = (PAGES / f"significant_safety_risks_synthetic_{name}.html").read_text()
        at = clock.tick()
        observation = Observation(
            source_id=source.id, key=source.url, url=source.url, title="Category 2",
            content=html, content_type="html", fetched_at=at,
        )  # fmt: skip
        changes.append(HistoryWriter([source]).record_observation(session, observation, at))
        fetch = SourceFetch(source.id, source.url, OK, at, documents=1, document_keys=[source.url])
        HistoryWriter([source]).record_fetch(session, fetch, at)
        session.commit()

    baseline, change = changes
    assert baseline is None and change is not None
    assert (change.kind, change.severity) == ("changed", "T1")
    assert change.severity_reasons[-1].startswith("raised one tier: names ketamine")
