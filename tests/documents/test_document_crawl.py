"""Real crawls (`run_crawl`, child process) of a page that links PDFs, served from loopback.

The page links a real FDA guidance (tests/fixtures/pdf, PROVENANCE.md) and a SYNTHETIC PDF typeset
from a real guidance's text (tests/support/pdfgen.py), which the test then edits, lays out again,
replaces with an error page, restores, and breaks. Only a change of the words is a change.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from db.engine import open_database
from db.models import Blob, Change, Document, Source
from monitor.cli import cli
from monitor.config import Settings, load_settings
from monitor.core.pdf_text import read_pdf
from monitor.items import canonical_url
from monitor.runtime.crawl import CrawlSummary, run_crawl
from monitor.site.evidence import bundle_files
from monitor.sources import load_sources
from tests.documents.doc_server import DocumentServer
from tests.support.pdfgen import A4, Layout, encodable, typeset

pytestmark = pytest.mark.slow

PDFS = Path(__file__).resolve().parent.parent / "fixtures" / "pdf"
MEDGUIDE = PDFS / "medication-guides-rems-guidance-2011-11-9952fnl.pdf"
ANDA = PDFS / "anda-stability-testing-guidance-2013-06.pdf"
LABEL = PDFS / "veklury-remdesivir-214787Orig1s000lbl-2020-10.pdf"
PAGE = "/rems/spravato"
MEDIA = "/media/1001/download"
SYNTHETIC = "/docs/SYNTHETIC-stability.pdf"
LATER = "/media/1002/download"
PDF = "application/pdf"
ADDED = "Patients must be watched for respiratory depression for two hours after each dose."
SOURCES = """
[[source]]
id = "rems"
kind = "page"
url = "{base}{page}"
selector = "main"
tier = "T2"
follow_documents = true
max_document_bytes = 300000
"""
ERROR_PAGE = b"""<!DOCTYPE html><html><head><title>Page Not Found | FDA</title></head>
<body><main><h1>Page Not Found</h1><p>Sorry, we cannot find that page.</p></main></body></html>"""


def page_html(*paths: str) -> bytes:
    names = {MEDIA: "Medication Guide (PDF - 90KB)", SYNTHETIC: "Stability testing Q&A",
             LATER: "REMS Patient Enrollment Form"}  # fmt: skip
    links = "".join(f'<li><a href="{path}">{names[path]}</a></li>' for path in paths)
    return (
        b"<!DOCTYPE html><html><head><title>Spravato REMS</title></head><body>"
        b'<nav><a href="/media/9999/download">Site map (PDF)</a></nav>'
        b"<main><h1>Spravato (esketamine) REMS</h1><p>REMS materials:</p><ul>"
        + links.encode()
        + b'<li><a href="/rems/faq">Questions and answers</a></li></ul></main></body></html>'
    )


def paragraphs() -> list[str]:
    """The real ANDA guidance's paragraphs, as cp1252 can write them (SYNTHETIC from here on)."""
    return [encodable(p) for p in read_pdf(ANDA.read_bytes(), 50).paragraphs]


def edited(text: list[str]) -> list[str]:
    """One sentence added to the paragraph that defines the guidance's subject."""
    index = next(i for i, p in enumerate(text) if p.startswith("This guidance"))
    return [*text[:index], f"{text[index]} {ADDED}", *text[index + 1 :]]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[DocumentServer, Settings, Engine]]:
    with DocumentServer() as server:
        sources_file = tmp_path / "sources.toml"
        sources_file.write_text(SOURCES.format(base=server.url, page=PAGE))
        settings = load_settings({
            "FDAWATCH_SOURCES": str(sources_file),
            "FDAWATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'history.db'}",
            "FDAWATCH_CONFIG": "",
            "FDAWATCH_VAR_DIR": str(tmp_path / "var"),
            "FDAWATCH_CRAWL_DELAY": "0",
        })  # fmt: skip
        engine = open_database(settings.database_url)
        yield server, settings, engine
        engine.dispose()


def crawl(site: tuple[DocumentServer, Settings, Engine]) -> tuple[str, int, int, str]:
    server, settings, engine = site
    server.clear_hits()
    sources = list(load_sources(settings.sources_path).values())
    summary: CrawlSummary = run_crawl(engine, settings, sources, timeout=120)
    [result] = summary.results
    return result.outcome, result.documents, result.changes, result.error or ""


def changes(engine: Engine) -> list[Change]:
    with Session(engine) as session:
        return list(session.exec(select(Change).order_by(col(Change.id))).all())


def test_only_a_change_of_words_in_a_linked_pdf_is_a_change(site) -> None:
    server, _, engine = site
    base = paragraphs()
    server.put(PAGE, page_html(MEDIA, SYNTHETIC), "text/html; charset=utf-8")
    server.put(MEDIA, MEDGUIDE.read_bytes(), PDF)
    server.put(SYNTHETIC, typeset(base), PDF)
    doc_key = canonical_url(server.url + SYNTHETIC)

    # Baseline: the page and both linked PDFs are stored, nothing is a change; the nav's PDF
    # (outside the watched region) and the HTML link are not fetched.
    assert crawl(site) == ("ok", 3, 0, "")
    assert server.hits_for("/media/9999/download") == [] == server.hits_for("/rems/faq")
    with Session(engine) as session:
        keys = sorted(session.exec(select(Document.doc_key)).all())
        assert keys == sorted([server.url + PAGE, canonical_url(server.url + MEDIA), doc_key])
        assert session.get(Blob, _sha256(MEDGUIDE.read_bytes())) is not None  # the raw PDF

    # The same again: each PDF is asked conditionally and answers 304; nothing changes.
    assert crawl(site) == ("ok", 3, 0, "")
    assert [hit.status for hit in server.hits_for(MEDIA) + server.hits_for(SYNTHETIC)] == [304, 304]

    # One sentence added: one change, on the document, whose diff quotes the sentence.
    server.put(SYNTHETIC, typeset(edited(base)), PDF)
    assert crawl(site) == ("ok", 3, 1, "")
    [change] = changes(engine)
    assert (change.doc_key, change.kind) == (doc_key, "changed")
    assert change.title == "Stability testing Q&A"
    added = [line for line in change.diff.splitlines() if line.startswith("+") and ADDED in line]
    assert len(added) == 1

    # The same words on A4, another font size, header and footer, hyphenated: no change.
    relaid = Layout(A4, font_size=9, margin=60, header="Draft", footer="- {n} -", hyphenate=True)
    server.put(SYNTHETIC, typeset(edited(base), relaid), PDF)
    assert crawl(site) == ("ok", 3, 0, "")

    # An HTML error page served where the PDF was: a failed fetch naming it, no change.
    server.put(SYNTHETIC, ERROR_PAGE, "text/html; charset=utf-8")
    outcome, _, count, error = crawl(site)
    assert (outcome, count) == ("failed", 0)
    assert error == (
        f"document {server.url}{SYNTHETIC}: expected a PDF, got text/html; charset=utf-8 (an "
        "error or login page?): not recorded"
    )

    # The PDF back, unchanged: nothing.
    server.put(SYNTHETIC, typeset(edited(base), relaid), PDF)
    assert crawl(site) == ("ok", 3, 0, "")

    # Over the size cap, and a corrupt PDF: clear failures, no change.
    server.put(MEDIA, LABEL.read_bytes(), PDF)
    server.put(SYNTHETIC, b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\ngarbage\n%%EOF\n", PDF)
    outcome, _, count, error = crawl(site)
    assert (outcome, count) == ("failed", 0)
    assert f"document {server.url}{MEDIA}: larger than max_document_bytes = 300000" in error
    assert f"document {server.url}{SYNTHETIC}: unreadable PDF: not a readable PDF" in error
    assert len(changes(engine)) == 1
    with Session(engine) as session:
        source = session.get(Source, "rems")
        assert source is not None and source.consecutive_failures == 1  # a health problem


def test_a_document_linked_later_is_new_and_an_unlinked_one_removed_after_two_checks(site) -> None:
    server, _, engine = site
    server.put(PAGE, page_html(MEDIA, SYNTHETIC), "text/html; charset=utf-8")
    server.put(MEDIA, MEDGUIDE.read_bytes(), PDF)
    server.put(SYNTHETIC, typeset(paragraphs()), PDF)
    server.put(LATER, typeset(["REMS Patient Enrollment Form", ADDED]), PDF)
    assert crawl(site) == ("ok", 3, 0, "")

    # A new link (and the synthetic document's link gone): the page changed, the new document
    # is new, the unlinked one is noted on the page's change and not removed yet.
    server.put(PAGE, page_html(MEDIA, LATER), "text/html; charset=utf-8")
    assert crawl(site) == ("ok", 3, 2, "")
    page_change, new = changes(engine)
    assert (page_change.doc_key, page_change.kind) == (server.url + PAGE, "changed")
    assert page_change.severity_reasons[-1] == (
        f"no longer links to the document 'Stability testing Q&A' "
        f"({canonical_url(server.url + SYNTHETIC)}): missing 1 of the 2 checks in a row that "
        "remove it"
    )
    assert (new.doc_key, new.kind, new.title) == (
        canonical_url(server.url + LATER),
        "new",
        "REMS Patient Enrollment Form",
    )
    assert "respiratory depression" in new.diff

    # Still unlinked at the next check: now it is removed.
    assert crawl(site) == ("ok", 3, 1, "")
    removed = changes(engine)[-1]
    assert (removed.doc_key, removed.kind) == (canonical_url(server.url + SYNTHETIC), "removed")

    # The documents in `changes --json`, `history` and the evidence bundle (the raw PDF).
    _, settings, _ = site
    cli_args = ["--sources", str(settings.sources_path), "--database", settings.database_url]
    listed = CliRunner().invoke(cli, [*cli_args, "changes", "--json"])
    keys = [json.loads(line)["document_key"] for line in listed.output.splitlines()]
    assert keys == [removed.doc_key, new.doc_key, page_change.doc_key]
    history = CliRunner().invoke(cli, [*cli_args, "history", "rems"]).output
    assert "documents (4):" in history
    assert "removed  document  Stability testing Q&A" in history
    with Session(engine) as session:
        files = bundle_files(session, new.id or 0)
    later_pdf = typeset(["REMS Patient Enrollment Form", ADDED])
    assert files["after/raw-body.pdf"] == later_pdf


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()
