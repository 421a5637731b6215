"""Which links are documents, what each kind follows, and how a fetch with documents ends."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from parsel import Selector
from scrapy import Request
from scrapy.http import Response, TextResponse
from scrapy.utils.test import get_crawler

from monitor.config import Settings
from monitor.errors import SourcesError
from monitor.items import DOCUMENT, FAILED, OK, Observation, SourceFetch, canonical_url
from monitor.sources import SourceConfig, parse_sources
from spiders.documents import document_links
from spiders.federal_register import FederalRegisterSpider
from spiders.openfda import OpenfdaDrugsfdaSpider
from spiders.page import PageSpider
from tests.spiders.conftest import start_requests
from tests.support.paths import FEDERAL_REGISTER, OPENFDA
from tests.support.pdfgen import Layout, typeset

FDA_PAGE = """<html><body><nav><a href="/media/1/download">Menu PDF</a></nav>
<main id="main-content">
  <a href="/media/151542/download?attachment">Medication Guide (PDF - 245KB)</a>
  <a href="https://www.accessdata.fda.gov/drugsatfda_docs/rems/Spravato_REMS.PDF">REMS</a>
  <a href="/files/form" type="application/pdf">Enrollment form</a>
  <a href="/media/151542/download?attachment#page=2">PDF</a>
  <a href="/drugs/drug-safety">Drug safety</a>
  <a href="mailto:druginfo@fda.hhs.gov">Email (PDF)</a>
</main></body></html>"""


def test_document_links_of_the_watched_region() -> None:
    region = Selector(text=FDA_PAGE).css("#main-content")
    links = document_links(region, "https://www.fda.gov/drugs/spravato")
    assert [(link.key, link.title) for link in links] == [
        ("https://www.fda.gov/media/151542/download?attachment=", "Medication Guide"),
        (
            "https://www.accessdata.fda.gov/drugsatfda_docs/rems/Spravato_REMS.PDF",
            "REMS",
        ),
        ("https://www.fda.gov/files/form", "Enrollment form"),
    ]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"kind": "feed", "follow_documents": True}, "is for page, openfda_drugsfda, "
         "federal_register sources, not 'feed': remove it"),
        ({"kind": "page", "follow_documents": "yes"}, "must be true or false"),
        ({"kind": "page", "max_document_bytes": 0}, "must be a whole number ≥ 1"),
    ],
)  # fmt: skip
def test_follow_documents_is_checked_when_sources_are_loaded(
    entry: dict[str, Any], message: str
) -> None:
    raw = {"id": "s", "url": "https://www.fda.gov/x", **entry}
    with pytest.raises(SourcesError) as raised:
        parse_sources({"source": [raw]}, "sources.toml")  # type: ignore[arg-type]
    assert message in str(raised.value)


def spider(cls: type, source: SourceConfig, documents: dict[str, Any] | None = None) -> Any:
    settings = {
        "FDAWATCH_SOURCES": {source.id: source.to_dict()},
        "FDAWATCH_VALIDATORS": {source.id: {"etag": '"page-v1"'}},
        "FDAWATCH_DOCUMENTS": {source.id: documents or {}},
        "FDAWATCH_SETTINGS": Settings(),
    }
    return cls.from_crawler(get_crawler(cls, settings), source="all")


def answer(request: Request, body: bytes, content_type: str, status: int = 200) -> Response:
    request.meta.setdefault("download_latency", 0.01)
    headers = {"Content-Type": content_type}
    return TextResponse(request.url, status=status, headers=headers, body=body, request=request)


def pdf_answer(request: Request, body: bytes, status: int = 200) -> Response:
    request.meta.setdefault("download_latency", 0.01)
    headers = {"Content-Type": "application/pdf"}
    return Response(request.url, status=status, headers=headers, body=body, request=request)


def test_a_page_that_follows_documents_ends_with_one_record_listing_them() -> None:
    source = SourceConfig(
        id="rems", kind="page", url="https://www.fda.gov/drugs/spravato",
        selector="#main-content", follow_documents=True,
    )  # fmt: skip
    stored = canonical_url("https://www.fda.gov/media/151542/download?attachment")
    page = spider(PageSpider, source, {stored: {"etag": '"mg-1"', "last_modified": None}})
    [first] = start_requests(page)
    assert "If-None-Match" not in first.headers  # the page itself is always fetched

    [medguide] = page.parse(answer(first, FDA_PAGE.encode(), "text/html"))
    assert medguide.headers["If-None-Match"] == b'"mg-1"'
    [rems] = asyncio.run(page.parse_document(pdf_answer(medguide, b"", 304)))
    bare = Layout(header="", footer="")  # one page: no running header to tell apart
    [form] = asyncio.run(page.parse_document(pdf_answer(rems, typeset(["Enroll here."], bare))))
    items = asyncio.run(page.parse_document(answer(form, b"<html>Sign in</html>", "text/html")))

    *observations, record = items
    assert [(o.content_type, o.key) for o in observations] == [
        ("html", source.url),
        (DOCUMENT, "https://www.accessdata.fda.gov/drugsatfda_docs/rems/Spravato_REMS.PDF"),
    ]
    assert observations[1].content == "Enroll here."
    assert isinstance(record, SourceFetch)
    assert (record.outcome, record.document_keys) == (
        FAILED,
        [source.url, stored, observations[1].key],
    )
    assert record.error == (
        "document https://www.fda.gov/files/form: expected a PDF, got text/html (an error or "
        "login page?): not recorded"
    )


def test_drugsfda_follows_the_submissions_application_docs() -> None:
    source = SourceConfig(
        id="drugsfda", kind="openfda_drugsfda", follow_documents=True,
        url='https://api.fda.gov/drug/drugsfda.json?search=application_number:"NDA211243"',
    )  # fmt: skip
    data = json.loads((OPENFDA / "SYNTHETIC-drugsfda-esketamine-v1.json").read_text())
    label = "https://www.accessdata.fda.gov/drugsatfda_docs/label/2019/211243s000lbl.pdf"
    review = "https://www.accessdata.fda.gov/drugsatfda_docs/nda/2019/211243Orig1s000TOC.cfm"
    data["results"][0]["submissions"][0]["application_docs"] = [
        {"id": "1", "url": label, "date": "20190305", "type": "Label"},
        {"id": "2", "url": review, "date": "20190305", "type": "Review"},  # a page: not followed
    ]
    drugsfda = spider(OpenfdaDrugsfdaSpider, source)
    [first] = start_requests(drugsfda)
    requested = drugsfda.parse(answer(first, json.dumps(data).encode(), "application/json"))
    [request] = [item for item in requested if isinstance(item, Request)]
    assert request.url == label
    assert request.meta["fdawatch_document_link"].title.endswith(": Label 20190305")
    assert request.meta["download_maxsize"] == 20 * 1024 * 1024


def test_federal_register_reads_a_pdf_once_then_counts_it_as_still_linked() -> None:
    source = SourceConfig(
        id="fr", kind="federal_register", follow_documents=True,
        url="https://www.federalregister.gov/api/v1/documents.json?conditions%5Bterm%5D=ketamine",
    )  # fmt: skip
    data = json.loads((FEDERAL_REGISTER / "SYNTHETIC-documents-ketamine-page1.json").read_text())
    data.pop("next_page_url", None)
    data["count"] = len(data["results"])  # one complete page
    body = json.dumps(data).encode()
    pdfs = [r["pdf_url"] for r in data["results"] if r.get("pdf_url")]
    assert pdfs
    stored = {canonical_url(url): {"etag": None, "last_modified": None} for url in pdfs}
    federal_register = spider(FederalRegisterSpider, source, stored)
    [first] = start_requests(federal_register)
    items = list(federal_register.parse(answer(first, body, "application/json")))
    assert not [item for item in items if isinstance(item, Request)]  # none asked again
    record = items[-1]
    assert isinstance(record, SourceFetch) and record.outcome == OK
    assert [key for key in record.document_keys if key.startswith("https://")] == list(stored)
    assert all(isinstance(item, Observation) for item in items[:-1])
