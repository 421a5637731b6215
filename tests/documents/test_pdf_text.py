"""Reading real FDA PDFs (tests/fixtures/pdf) and SYNTHETIC re-layouts of their text."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from monitor.core.canonical import version_sha256
from monitor.core.pdf_layout import words_key
from monitor.core.pdf_text import PdfError, read_pdf
from monitor.items import DOCUMENT
from spiders.documents import DocumentError, document_text, read_in_child
from tests.support.pdfgen import A4, Layout, encodable, image_only, typeset

PDFS = Path(__file__).resolve().parent.parent / "fixtures" / "pdf"
LABEL = "veklury-remdesivir-214787Orig1s000lbl-2020-10.pdf"
MEDGUIDE = "medication-guides-rems-guidance-2011-11-9952fnl.pdf"
DRAFT = "rems-format-content-draft-guidance-2009-09-8715dft.pdf"
GFI = "cvm-gfi-117-vich-gl24-draft-guidance.pdf"
ANDA = "anda-stability-testing-guidance-2013-06.pdf"
RELAID = Layout(A4, font_size=9, margin=60, header="Draft - Not for Implementation",
                footer="- {n} -", hyphenate=True)  # fmt: skip


def text_of(name: str) -> str:
    return "\n".join(read_pdf((PDFS / name).read_bytes(), 500).paragraphs)


@pytest.mark.parametrize(
    ("name", "pages", "furniture", "numbers"),
    [
        (LABEL, 30, ["Reference ID: 4690158", "Page 2 of"], []),
        (MEDGUIDE, 12, ["Contains Nonbinding Recommendations"], []),
        (
            DRAFT,
            39,
            ["Contains Nonbinding Recommendations", "Not for Implementation", "\n1495 "],
            [],
        ),
        (GFI, 9, ["Page 2 of 9", "Contains Non-Binding Recommendations"], ["117"]),
        (ANDA, 5, ["Contains Nonbinding Recommendations"], []),
    ],
)
def test_running_headers_footers_page_and_line_numbers_are_removed(
    name: str, pages: int, furniture: list[str], numbers: list[str]
) -> None:
    read = read_pdf((PDFS / name).read_bytes(), 500)
    text = "\n".join(read.paragraphs)
    assert read.pages == pages
    assert [piece for piece in furniture if piece in text] == []
    # no bare page numbers; the guidance number on GFI #117's cover is said once and stays
    assert [line for line in read.paragraphs if line.isdigit()] == numbers


def test_real_hyphenated_compounds_stay_and_a_number_said_once_is_kept() -> None:
    draft = text_of(DRAFT)
    assert "pharmacist co-dispensing rates" in draft
    assert "for an already-approved product" in draft
    assert "GS-441524" in text_of(LABEL)
    assert "117" in text_of(GFI)  # the guidance number on page 1 is not a page number


def test_the_highlights_columns_read_in_order() -> None:
    text = text_of(LABEL)
    assert text.index("INDICATIONS AND USAGE") < text.index("CONTRAINDICATIONS")


@pytest.mark.parametrize("name", [LABEL, MEDGUIDE, DRAFT, GFI, ANDA])
def test_the_same_words_laid_out_again_are_the_same_version(name: str) -> None:
    paragraphs = [encodable(p) for p in read_pdf((PDFS / name).read_bytes(), 500).paragraphs]
    letter = read_pdf(typeset(paragraphs), 2000)
    a4 = read_pdf(typeset(paragraphs, RELAID), 2000)
    assert letter.pages != a4.pages
    assert version_sha256(DOCUMENT, "\n".join(letter.paragraphs)) == version_sha256(
        DOCUMENT, "\n".join(a4.paragraphs)
    )
    assert words_key("\n".join(letter.paragraphs)) == words_key("\n".join(paragraphs))


def test_one_added_word_is_another_version() -> None:
    paragraphs = [encodable(p) for p in read_pdf((PDFS / ANDA).read_bytes(), 50).paragraphs]
    changed = [p.replace("This guidance", "This final guidance", 1) for p in paragraphs]
    before = read_pdf(typeset(paragraphs), 500).paragraphs
    after = read_pdf(typeset(changed, RELAID), 500).paragraphs
    assert version_sha256(DOCUMENT, "\n".join(before)) != version_sha256(DOCUMENT, "\n".join(after))


def test_a_pdf_without_text_is_said_to_have_no_text_layer_and_is_watched_by_its_hash() -> None:
    result = read_in_child(image_only(3), 500)
    assert (result["paragraphs"], result["pages"], result["chars"]) == ([], 3, 0)
    assert document_text(result, "ab" * 32) == (
        "[no text layer: a PDF of 3 pages whose text cannot be read without OCR, which fdawatch "
        f"does not do; watched by the SHA-256 of its file: {'ab' * 32}]"
    )


@pytest.mark.parametrize(
    ("data", "max_pages", "message"),
    [
        (b"<html><body>Not found</body></html>", 500, "not a PDF (no %PDF- header)"),
        (b"%PDF-1.4\ngarbage\n%%EOF\n", 500, "not a readable PDF (Failed to load document"),
        ((PDFS / GFI).read_bytes(), 5, "9 pages, more than max_document_pages = 5: not read"),
    ],
)
def test_unreadable_or_over_the_page_cap_is_a_clear_error(
    data: bytes, max_pages: int, message: str
) -> None:
    with pytest.raises(PdfError) as raised:
        read_pdf(data, max_pages)
    assert str(raised.value).startswith(message)
    with pytest.raises(DocumentError) as failed:
        read_in_child(data, max_pages)
    assert str(failed.value).startswith(f"unreadable PDF: {message}")


def test_reading_that_takes_too_long_is_stopped() -> None:
    with pytest.raises(DocumentError) as raised:
        read_in_child((PDFS / LABEL).read_bytes(), 500, timeout=0.01)
    assert str(raised.value) == "reading the PDF took longer than 0.01 s: not recorded"


def test_the_child_process_answers_json_on_stdout() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "monitor.core.pdf_text", "--max-pages", "50"],
        input=(PDFS / ANDA).read_bytes(),
        capture_output=True,
        check=True,
    )
    assert done.stdout.startswith(b'{"ok": true, "paragraphs": ["')
    assert b'"title": "ANDAs: Stability Testing of Drug Substances and Products"' in done.stdout
