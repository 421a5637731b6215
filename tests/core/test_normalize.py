"""Normalization: what counts as the same page, and the keys and hashes the history relies on."""

from __future__ import annotations

import time
import unicodedata

import feedparser
import pytest
from bs4 import BeautifulSoup

from monitor.core.normalize import (
    NormalizedHtml,
    content_sha256,
    feed_item_text,
    html_to_text,
    looks_like_date_line,
)
from monitor.items import document_key
from tests.support.paths import PAGES, RECALLS_HISTORY

RECALL_CAPTURES = ("001_20241114T1258Z_d2a4a52c.xml", "002_20241117T1349Z_e34b9bb7.xml")
ALERT_V1 = "ketamine_oral_alert_synthetic_v1.html"
EDITED_OLD = (
    "Patients who receive compounded ketamine products from compounders or telemedicine "
    "platforms may not receive information about these potential risks."
)
EDITED_NEW = (
    "Patients who receive compounded ketamine products from compounders or telemedicine "
    "platforms may not receive information about these potential risks or be monitored by a "
    "health care provider after each dose."
)


def page(name: str) -> str:
    return (PAGES / name).read_text(encoding="utf-8")


def region(name: str, selector: str = "main") -> str:
    """The watched region, cut out the way the page spider does."""
    node = BeautifulSoup(page(name), "lxml").select_one(selector)
    assert node is not None, f"{name} has no {selector!r}"
    return str(node)


def recall_entries(capture: str) -> list[feedparser.FeedParserDict]:
    return feedparser.parse((RECALLS_HISTORY / capture).read_bytes()).entries


# --- fixture pages ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "variant",
    [
        "ketamine_oral_alert_synthetic_v2_date_only.html",
        "ketamine_oral_alert_synthetic_v3_nav_footer.html",
        "ketamine_oral_alert_synthetic_v4_reflow.html",
    ],
)
@pytest.mark.parametrize("whole_page", [False, True], ids=["main", "whole-page"])
def test_noise_only_variants_normalize_to_the_baseline_text(variant: str, whole_page: bool) -> None:
    def text(name: str) -> str:
        return html_to_text(page(name) if whole_page else region(name)).text

    assert text(variant) == text(ALERT_V1)


@pytest.mark.parametrize("whole_page", [False, True], ids=["main", "whole-page"])
def test_an_edited_sentence_changes_exactly_one_line(whole_page: bool) -> None:
    v5 = "ketamine_oral_alert_synthetic_v5_sentence_edited.html"
    old = html_to_text(page(ALERT_V1) if whole_page else region(ALERT_V1)).text.splitlines()
    new = html_to_text(page(v5) if whole_page else region(v5)).text.splitlines()

    assert len(old) == len(new)
    differing = [(a, b) for a, b in zip(old, new, strict=True) if a != b]
    assert differing == [(EDITED_OLD, EDITED_NEW)]


@pytest.mark.parametrize(
    ("name", "selector", "content_date"),
    [
        (ALERT_V1, "main", "2023-10-10"),
        ("ketamine_oral_alert_synthetic_v2_date_only.html", "main", "2024-03-05"),
        ("ketamine_oral_alert_synthetic_v3_nav_footer.html", "main", "2023-10-10"),
        ("ketamine_oral_alert_synthetic_v4_reflow.html", "main", "2023-10-10"),
        ("ketamine_oral_alert_synthetic_v5_sentence_edited.html", "main", "2025-02-11"),
        ("ketamine_oral_alert_synthetic_v6_layout_drift.html", "div.page-body", "2023-10-10"),
        ("compounding_risk_alerts_synthetic_v1.html", "main", "2024-06-05"),
        ("compounding_risk_alerts_synthetic_v2_new_row.html", "main", "2026-01-15"),
        ("spravato_rems_synthetic_2019.html", "main", None),
        ("spravato_rems_synthetic_2024.html", "main", None),
    ],
)
def test_content_date_is_extracted_and_kept_out_of_the_text(
    name: str, selector: str, content_date: str | None
) -> None:
    result = html_to_text(region(name, selector))

    assert result.content_date == content_date
    assert "content current as of" not in result.text.lower()


@pytest.mark.parametrize(
    "name",
    [
        ALERT_V1,
        "ketamine_oral_alert_synthetic_v6_layout_drift.html",
        "compounding_risk_alerts_synthetic_v1.html",
        "spravato_rems_synthetic_2024.html",
    ],
)
@pytest.mark.parametrize(
    "furniture",
    [
        "Skip to main content",
        "Back to Top",
        "Regulated Product(s)",
        "Topic(s)",
        "Share",
        "Print",
        "Accessibility",
        "Home",
        "Drugs",
        "An official website of the United States government",
    ],
)
def test_page_furniture_never_reaches_the_text(name: str, furniture: str) -> None:
    lines = html_to_text(page(name)).text.splitlines()

    assert furniture not in lines


def test_layout_drift_page_has_no_main_but_the_same_content() -> None:
    drifted = page("ketamine_oral_alert_synthetic_v6_layout_drift.html")

    assert BeautifulSoup(drifted, "lxml").select_one("main") is None
    assert html_to_text(
        region("ketamine_oral_alert_synthetic_v6_layout_drift.html", "div.page-body")
    ) == html_to_text(region(ALERT_V1))


def test_index_table_rows_become_one_line_each() -> None:
    lines = html_to_text(region("compounding_risk_alerts_synthetic_v1.html")).text.splitlines()

    assert "Date | Alert Description" in lines
    assert (
        "02/16/2022 | FDA alerts health care professionals of potential risks associated with "
        "compounded ketamine nasal spray"
    ) in lines


#: A "Content current as of" line with a date label, weekday, date and time: 12 words.
LONG_DATE_LINE = "Content current as of : Wednesday, 12/05/2026 at 10:30:15 p.m. EST ."


# --- inline cases: boilerplate ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fragment", "text", "content_date"),
    [
        pytest.param(
            '<div class="lcds-metadata-list"><p><strong>Content current as of:</strong></p>'
            '<p><time datetime="2023-10-10T14:31:00Z">10/10/2023</time></p>'
            "<p><strong>Regulated Product(s)</strong></p><ul><li>Drugs</li></ul></div>"
            "<p>Body.</p>",
            "Body.",
            "2023-10-10",
            id="metadata-list-paragraphs",
        ),
        pytest.param(
            "<p>Body.</p><div><strong>Content current as of:</strong> 09/21/2026</div>",
            "Body.",
            "2026-09-21",
            id="label-and-date-siblings-in-one-div",
        ),
        pytest.param(
            "<article><p>One.</p><p><b>Content current as of:</b></p><p>3/4/2024</p>"
            "<p>Two.</p></article>",
            "One.\nTwo.",
            "2024-03-04",
            id="label-and-date-in-separate-blocks-among-content",
        ),
        pytest.param(
            '<p>Content current as of: <time datetime="2024-05-21">May 21, 2024</time></p>',
            "",
            "2024-05-21",
            id="datetime-attribute-wins",
        ),
        pytest.param(
            "<p>Body.</p><p>Content current as of:</p>",
            "Body.",
            None,
            id="label-without-date",
        ),
        pytest.param(
            "<p>The notice was content current as of its posting date.</p>",
            "The notice was content current as of its posting date.",
            None,
            id="phrase-inside-a-sentence-is-content",
        ),
        pytest.param(
            '<h2>Topic(s)</h2><ul class="lcds-metadata-list"><li>Compounding</li></ul><p>Body.</p>',
            "Body.",
            None,
            id="topics-list",
        ),
        pytest.param(  # the longest label, spread over wrappers and spaces: still the heading
            "<div>\n  <h3><span> Regulated \n Products (s) : </span></h3>\n</div>"
            "<ul><li>Drugs</li></ul><p>Body.</p>",
            "Body.",
            None,
            id="longest-metadata-label-in-wrappers",
        ),
        pytest.param(  # a long date line, a word per element, in wrappers: one block all the same
            "<article><p>Body.</p><div>\n <div><p>Content current as of:</p><p>"
            + "".join(f"<span>{word}</span> " for word in LONG_DATE_LINE.split(" "))
            + "</p></div></div><p>More.</p></article>",
            "Body.\nMore.",
            "2026-12-05",
            id="long-date-block-in-wrappers",
        ),
        pytest.param(
            '<p>Body.</p><p class="back-to-top"><a href="#top">Back to Top</a></p>',
            "Body.",
            None,
            id="back-to-top",
        ),
        pytest.param(  # furniture inside furniture: removed with its container, once
            '<div><nav><p>Back to top</p><a href="#">Back to top</a></nav><p>Dosage text.</p>'
            '<a href="#top">Back to top</a><p>Content current as of:</p><p>10/10/2023</p></div>',
            "Dosage text.",
            "2023-10-10",
            id="jump-links-inside-and-outside-a-menu",
        ),
        pytest.param(
            '<main><!-- Content current as of --><div class="social-share"><a href="#">Back to '
            "top</a><h2>Regulated Product(s)</h2></div><h2>Regulated Product(s)</h2><ul><li>"
            "Drugs</li></ul><p>Ketamine notice.</p></main>",
            "Ketamine notice.",
            None,
            id="labels-inside-a-share-widget-and-a-comment",
        ),
    ],
)
def test_fda_boilerplate_is_removed(fragment: str, text: str, content_date: str | None) -> None:
    assert html_to_text(fragment) == NormalizedHtml(text=text, content_date=content_date)


@pytest.mark.parametrize(
    "noise",
    [
        "<script>var x = 'Script text';</script>",
        "<style>p { color: red; }</style>",
        "<noscript>Enable JavaScript</noscript>",
        "<template><p>Template text</p></template>",
        "<nav><a href='/'>Home</a></nav>",
        "<header>Site banner</header>",
        "<footer>Site footer</footer>",
        "<form><label>Search</label><input name='s'></form>",
        "<button>Menu</button>",
        "<iframe src='https://example.org'>Frame text</iframe>",
        "<svg><text>Icon</text></svg>",
        "<div hidden>Hidden text</div>",
        "<span aria-hidden='true'>Icon text</span>",
        "<div class='social-share'><a href='#'>Share</a></div>",
        "<ul class='share-links'><li>Email</li></ul>",
        "<a class='btn print-link' href='#'>Print</a>",
        "<!-- an HTML comment -->",
    ],
)
def test_non_content_elements_are_dropped(noise: str) -> None:
    assert html_to_text(f"<div><p>Kept.</p>{noise}</div>").text == "Kept."


def test_header_inside_an_article_is_the_articles_title() -> None:
    fragment = "<article><header><h1>Alert title</h1></header><p>Body.</p></article>"

    assert html_to_text(fragment).text == "Alert title\nBody."


def test_hide_when_printing_class_is_screen_content() -> None:
    assert html_to_text('<p class="hidden-print">On screen.</p>').text == "On screen."


# --- inline cases: rendering --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fragment", "text"),
    [
        pytest.param("<p>One\n   two\tthree</p>", "One two three", id="whitespace-collapsed"),
        pytest.param("<p>Risk <b>of</b> <em>sedation</em></p>", "Risk of sedation", id="inline"),
        pytest.param("<p>a&nbsp;b\u00a0c</p>", "a b c", id="nbsp"),
        pytest.param("<p>Cafe\u0301</p>", "Café", id="nfc"),
        pytest.param("<p>line one<br>line two</p>", "line one\nline two", id="br"),
        pytest.param('<p>See <a href="/x?y=1">the alert</a>.</p>', "See the alert.", id="link"),
        pytest.param(
            "<table><tr><th>Date</th><th>Alert</th></tr><tr><td>10/10/2023</td>"
            "<td><p>Ketamine</p></td></tr></table>",
            "Date | Alert\n10/10/2023 | Ketamine",
            id="table-row",
        ),
        pytest.param("<ul><li>A<ul><li>A.1</li></ul></li><li>B</li></ul>", "A\nA.1\nB", id="list"),
        pytest.param("<dl><dt>Term</dt><dd>Meaning</dd></dl>", "Term\nMeaning", id="dl"),
        pytest.param("<blockquote>Quote</blockquote>tail", "Quote\ntail", id="blockquote"),
        pytest.param("<pre>a  b\n\nc</pre>", "a b\nc", id="pre-keeps-line-breaks"),
        pytest.param(
            "<div>Loose <span>div</span> text<p>Para</p>after</div>",
            "Loose div text\nPara\nafter",
            id="div-text",
        ),
        pytest.param("<p>   </p><p></p><div>\n</div>", "", id="empty-lines-dropped"),
        pytest.param("Bowl &amp; Basket &amp;amp; more", "Bowl & Basket &amp; more", id="once"),
        pytest.param("https://www.fda.gov/x", "https://www.fda.gov/x", id="bare-url-text"),
        pytest.param(
            "<table><tr><td>Lot<br>A1</td><td> </td><td><!-- no -->B<p>C</p></td>"
            "<span>not a cell</span></tr></table>after",
            "Lot A1 | B C\nafter",
            id="row-cells-empty-cell-and-stray-child",
        ),
        pytest.param(
            "<table><tr><td>outer<table><tr><td>in 1</td><td>in 2</td></tr></table></td>"
            "<td>next</td></tr></table>",
            "outer in 1 | in 2 | next",
            id="table-in-a-cell",
        ),
        pytest.param(
            "<div>a<pre>x\n y</pre>b<br><br>c</div>", "a\nx\ny\nb\nc", id="pre-and-brs-in-div"
        ),
    ],
)
def test_text_has_one_line_per_block(fragment: str, text: str) -> None:
    assert html_to_text(fragment).text == text


@pytest.mark.parametrize(
    ("fragment", "text"),
    [
        pytest.param(  # the probe's minimal crash: RecursionError at ~495 unclosed tags
            "<main>" + "<font>x" * 495 + "</main>", "x" * 495, id="495-unclosed-inline-tags"
        ),
        pytest.param(
            "<main>" + "<div>" * 50_000 + "compounded ketamine" + "</div>" * 50_000 + "</main>",
            "compounded ketamine",
            id="50000-nested-divs",
        ),
        pytest.param(
            "<main>"
            + "<table><tr><td>" * 3000
            + "deep cell"
            + "</td></tr></table>" * 3000
            + "</main>",
            "deep cell",
            id="3000-nested-tables",
        ),
    ],
)
def test_any_nesting_depth_renders_fast_and_whole(fragment: str, text: str) -> None:
    """Rendering is iterative: depth neither crashes it nor drops what lies deepest.

    The bound is CPU time and wide (~1 s is typical): it catches a quadratic walk (minutes), not
    a busy machine."""
    started = time.process_time()
    assert html_to_text(fragment).text == text
    assert time.process_time() - started < 30.0


def test_output_is_nfc_without_edge_spaces() -> None:
    text = html_to_text(page(ALERT_V1)).text

    assert unicodedata.is_normalized("NFC", text)
    assert all(line == line.strip() and line for line in text.splitlines())


# --- feeds --------------------------------------------------------------------------------------


@pytest.mark.parametrize("capture", RECALL_CAPTURES)
def test_feed_text_decodes_fdas_double_escaped_ampersand_once(capture: str) -> None:
    raw = (RECALLS_HISTORY / capture).read_text(encoding="utf-8")
    entries = recall_entries(capture)
    texts = [feed_item_text(e.title, e.summary) for e in entries]

    assert "&amp;amp;" in raw
    assert not [t for t in texts if "&amp;" in t]
    assert any("Bowl & Basket Onion Soup Mix, UPC 41190-08394" in t for t in texts)


@pytest.mark.parametrize("capture", RECALL_CAPTURES)
def test_feed_text_is_title_line_then_description(capture: str) -> None:
    for entry in recall_entries(capture):
        lines = feed_item_text(entry.title, entry.summary).splitlines()
        assert lines[0] == " ".join(entry.title.split())
        assert len(lines) >= 2


@pytest.mark.parametrize(
    ("title", "description", "text"),
    [
        (
            "Recall of A &amp;amp; B",
            "Desc &amp;amp;lt;b&amp;amp;gt;",
            "Recall of A & B\nDesc &lt;b&gt;",
        ),
        ("FD&amp;C Act", "<p>one</p><p>two</p>", "FD&C Act\none\ntwo"),
        ("Title only", "", "Title only"),
    ],
)
def test_feed_entities_are_decoded_once_not_twice(title: str, description: str, text: str) -> None:
    xml = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item>'
        f"<title>{title}</title><link>http://www.fda.gov/x</link>"
        f"<description>{description}</description></item></channel></rss>"
    )
    entry = feedparser.parse(xml).entries[0]

    assert feed_item_text(entry.title, entry.get("summary", "")) == text


@pytest.mark.parametrize("capture", RECALL_CAPTURES)
def test_https_switch_keeps_every_feed_key(capture: str) -> None:
    for entry in recall_entries(capture):
        assert entry.link.startswith("http://www.fda.gov/")
        https = entry.link.replace("http://", "https://", 1)
        assert document_key(https, entry.id) == document_key(entry.link, entry.id)
        assert document_key(entry.link, entry.id).startswith("https://www.fda.gov/safety/")


def test_items_present_in_both_captures_keep_their_keys() -> None:
    first, second = (recall_entries(c) for c in RECALL_CAPTURES)
    shared = {e.id for e in first} & {e.id for e in second}
    keys_first = {document_key(e.link, e.id) for e in first if e.id in shared}
    keys_second = {document_key(e.link, e.id) for e in second if e.id in shared}

    assert shared
    assert keys_first == keys_second


@pytest.mark.parametrize(
    ("link", "guid", "key"),
    [
        ("http://www.fda.gov/safety/a-slug", None, "https://www.fda.gov/safety/a-slug"),
        ("HTTP://WWW.FDA.GOV/safety/a-slug", None, "https://www.fda.gov/safety/a-slug"),
        ("https://www.fda.gov:443/safety/a-slug", None, "https://www.fda.gov/safety/a-slug"),
        ("http://www.fda.gov:80/safety/a-slug#top", None, "https://www.fda.gov/safety/a-slug"),
        ("https://www.fda.gov:8443/x", None, "https://www.fda.gov:8443/x"),
        (
            "https://www.fda.gov/x?utm_source=rss&b=2&fbclid=1&a=1&gclid=2&UTM_Medium=m",
            None,
            "https://www.fda.gov/x?a=1&b=2",
        ),
        ("https://www.fda.gov/x?utm_campaign=c", None, "https://www.fda.gov/x"),
        ("  https://www.fda.gov/x \n", None, "https://www.fda.gov/x"),
        (None, "http://www.fda.gov/guid-slug", "https://www.fda.gov/guid-slug"),
        ("", " tag:fda.gov,2024:123 ", "tag:fda.gov,2024:123"),
        (None, "12345", "12345"),
        ("http://[broken/x", None, "http://[broken/x"),
    ],
)
def test_document_key(link: str | None, guid: str | None, key: str) -> None:
    assert document_key(link, guid) == key


def test_document_key_needs_a_link_or_a_guid() -> None:
    with pytest.raises(ValueError, match="link or a guid"):
        document_key("  ", None)


# --- hashes and date lines ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "digest"),
    [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    ],
)
def test_content_sha256_is_hex_sha256_of_utf8(text: str, digest: str) -> None:
    assert content_sha256(text) == digest


def test_same_text_same_hash_edit_different_hash() -> None:
    v1 = html_to_text(region(ALERT_V1)).text
    v4 = html_to_text(region("ketamine_oral_alert_synthetic_v4_reflow.html")).text
    v5 = html_to_text(region("ketamine_oral_alert_synthetic_v5_sentence_edited.html")).text

    assert content_sha256(v1) == content_sha256(v4)
    assert content_sha256(v1) != content_sha256(v5)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Content current as of: 10/10/2023", True),
        ("Content current as of:10/10/2023", True),
        ("Revised: 3/2024", True),
        ("Revised: 03/2024", True),
        ("Page Last Updated: October 10, 2023", True),
        ("Last updated: 2024-05-21", True),
        ("Last Reviewed: Mar. 5, 2019", True),
        ("10/10/2023", True),
        ("Fri, 05/03/2019 - 15:21", True),
        ("Date: 12 November 2025", True),
        ("REMS last update: 12/31/2024", False),
        ("Initial REMS Approval | 03/05/2019", False),
        ("[10/10/2023] FDA is alerting patients to risks of compounded ketamine.", False),
        ("Revised: respiratory depression added", False),
        ("Content current as of:", False),
        ("", False),
    ],
)
def test_looks_like_date_line(line: str, expected: bool) -> None:
    assert looks_like_date_line(line) is expected
