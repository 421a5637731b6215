"""Where a change sits: heading paths, context lines and the section a summary quotes."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup

from monitor.core.normalize import html_to_text
from monitor.core.outline import heading_levels, hunks, lead_section, section_summary
from monitor.core.terms import weight
from tests.support.paths import PAGES

REMS_2019 = "spravato_rems_synthetic_2019.html"
REMS_2024 = "spravato_rems_synthetic_2024.html"


def page(name: str) -> tuple[str, str]:
    """(raw html, normalized text of its <main>), as the crawler stores them."""
    html = (PAGES / name).read_text(encoding="utf-8")
    return html, html_to_text(str(BeautifulSoup(html, "lxml").select_one("main"))).text


@pytest.fixture(scope="module")
def rems() -> tuple[str, str, dict[str, int]]:
    _, old = page(REMS_2019)
    html, new = page(REMS_2024)
    return old, new, heading_levels(html)


def test_heading_levels_are_read_from_the_stored_page(rems: tuple[str, str, dict]) -> None:
    assert rems[2] == {
        "Approved Risk Evaluation and Mitigation Strategies (REMS)": 1,
        "SPRAVATO (esketamine) REMS": 2,
        "Goal": 3,
        "REMS Requirements": 3,
        "Healthcare Settings": 4,
        "Pharmacies": 4,
        "Patients": 4,
        "REMS Materials": 3,
    }


def test_rems_changes_sit_under_their_sections_with_context(rems: tuple[str, str, dict]) -> None:
    found = hunks(*rems)

    assert [hunk.label for hunk in found] == [
        "SPRAVATO (esketamine) REMS",
        "Goal",
        "REMS Requirements › Healthcare Settings",
        "REMS Requirements › Patients",
    ]
    settings = found[2]
    assert [(row.kind, row.text[:40]) for row in settings.rows] == [
        ("context", "Be certified in the SPRAVATO REMS to dis"),
        ("removed", "Monitor patients for at least two hours "),
        ("added", "Outpatient healthcare settings must have"),
        ("removed", "Enroll patients in the SPRAVATO REMS and"),
        ("added", "Ensure patients are monitored for at lea"),
        ("added", "Outpatient healthcare settings must enro"),
        ("context", "Never dispense SPRAVATO directly to pati"),
    ]


def test_summary_and_subject_name_the_section_that_changed_most(
    rems: tuple[str, str, dict],
) -> None:
    found = hunks(*rems)

    assert section_summary(found, weight) == (
        "Healthcare Settings: added “Outpatient healthcare settings must have a prescriber on "
        "site, healthcare providers to monitor patients, and a pulse…” (+10 more)"
    )
    assert lead_section(found, weight) == "REMS Requirements"


@pytest.mark.parametrize(
    ("old", "new", "summary"),
    [
        ("Title\nRisks: sedation.", "Title\nRisks: sedation, dizziness.", "Added “dizziness”"),
        ("Title\nRisks: sedation, dizziness.", "Title\nRisks: sedation.", "Removed “dizziness”"),
        ("Title", "Title\nA new line.", "Added “A new line.”"),
        ("Title\nGone line.", "Title", "Removed “Gone line.”"),
        ("Title", "Title", "No text change"),
    ],
)
def test_summary_without_headings_quotes_what_was_added_or_removed(
    old: str, new: str, summary: str
) -> None:
    assert section_summary(hunks(old, new)) == summary


def test_distant_context_is_marked_as_a_gap() -> None:
    old = "\n".join(["A", "b1", "b2", "b3", "b4", "C"])
    new = "\n".join(["A2", "b1", "b2", "b3", "b4", "C2"])

    [hunk] = hunks(old, new)

    assert [row.kind for row in hunk.rows] == ["edited", "context", "gap", "context", "edited"]
    assert [row.text for row in hunk.rows] == ["A2", "b1", "", "b4", "C2"]


def _levels_as_beautifulsoup_read_them(html: str) -> dict[str, int]:
    """The reference: what `heading_levels` returned when it parsed with BeautifulSoup."""
    from monitor.core.text_render import clean_line

    levels: dict[str, int] = {}
    for tag in BeautifulSoup(html, "lxml").find_all(("h1", "h2", "h3", "h4", "h5", "h6")):
        text = clean_line(tag.get_text(" "))
        if text and text not in levels:
            levels[text] = int(tag.name[1])
    return levels


HTML_FIXTURES = sorted(PAGES.parent.rglob("*.html"))
TRICKY = {
    "nested": "<h2>Outer <h3>inner <b>bold</b></h3> tail</h2><h2>Outer inner bold tail</h2>",
    "script": "<h1>Title<script>var x = '<h2>no</h2>';</script> after</h1><!-- <h3>c</h3> -->",
    "entities": "<h4>&nbsp;REMS&amp;&#160;Goal <br>line</h4><h5>\u00a0</h5><h6>  </h6>",
    "unclosed": "<div><h2>Open heading<p>para</div><h3>Next",
    "empty": "",
    "joined": "<h2>REMS<span>Requirements</span></h2><h3>Health<i>care</i>Settings</h3>",
}


@pytest.mark.parametrize(
    "html",
    [path.read_text("utf-8") for path in HTML_FIXTURES] + list(TRICKY.values()),
    ids=[path.name for path in HTML_FIXTURES] + list(TRICKY),
)
def test_heading_levels_match_what_beautifulsoup_read(html: str) -> None:
    """Read on lxml's tree, the headings are the ones the BeautifulSoup parse gave, byte for
    byte, so heading paths in stored alerts and change pages stay as they were."""
    assert heading_levels(html) == _levels_as_beautifulsoup_read_them(html)


def test_the_fixtures_have_headings_to_compare() -> None:
    assert len(HTML_FIXTURES) >= 10
    assert sum(bool(heading_levels(path.read_text("utf-8"))) for path in HTML_FIXTURES) >= 10
