"""Page furniture: what `html_to_text` removes, and the page date it keeps aside.

The furniture rules decide what is NOT content: a rule that removes too little turns every
"Content current as of" bump or metadata edit into a change (a false alert); one that removes too
much hides a real edit (a silent miss). Each row is a SYNTHETIC fragment in the markup fda.gov
uses (`tests/fixtures/pages/README.md`), with the exact text and date expected.
"""

from __future__ import annotations

import pytest

from monitor.core.normalize import html_to_text

BODY = "<p>Compounded ketamine is not FDA approved.</p>"
TEXT = "Compounded ketamine is not FDA approved."


def page(furniture: str) -> str:
    return f"<html><body><main>{BODY}{furniture}</main></body></html>"


@pytest.mark.parametrize(
    ("furniture", "date"),
    [
        # label and date in one text node
        ("<p>Content current as of: 10/10/2023</p>", "2023-10-10"),
        # fda.gov's block: the date from <time datetime>, not from its text
        ('<li><h2>Content current as of:</h2><p><time datetime="2023-10-10T14:31:00Z">'
         "10/10/2023</time></p></li>", "2023-10-10"),
        # label and date in separate blocks; the date only as a <time> among other words
        ('<div><h2>Content current as of:</h2></div><p><time datetime="2024-03-05">'
         "March 5, 2024</time></p>", "2024-03-05"),
        # an ISO date as the text of its own block
        ("<div><h2>Content current as of:</h2></div><p>2024-03-05</p>", "2024-03-05"),
        # the first and the last valid month and day
        ("<p>Content current as of: 01/01/2024</p>", "2024-01-01"),
        ("<p>Content current as of: 12/31/2024</p>", "2024-12-31"),
        # no such month or day: removed as a date line, but not kept as the page's date
        ("<p>Content current as of: 13/01/2024</p>", None),
        ("<p>Content current as of: 01/32/2024</p>", None),
        ("<p>Content current as of: 13/15/2024</p>", None),
        ("<p>Content current as of: 00/15/2024</p>", None),
    ],
)  # fmt: skip
def test_the_content_current_block_is_removed_and_its_date_kept(
    furniture: str, date: str | None
) -> None:
    found = html_to_text(page(furniture))
    assert (found.text, found.content_date) == (TEXT, date)


def test_a_content_current_comment_still_dates_the_page() -> None:
    """A template that comments the block out keeps the date aside (comments are searched as
    `find_all` searched them); the comment itself is never text."""
    found = html_to_text(page("<!-- Content current as of: 10/10/2023 -->"))
    assert (found.text, found.content_date) == (TEXT, "2023-10-10")


def test_a_date_time_element_beside_other_words_is_removed_alone() -> None:
    """The date leaves with the label; the words next to it stay (they are not furniture)."""
    furniture = (
        '<div><h2>Content current as of:</h2></div><p><time datetime="2024-03-05">'
        "March 5, 2024</time> | Reviewed by CDER</p>"
    )
    found = html_to_text(page(furniture))
    assert (found.text, found.content_date) == (f"{TEXT}\n| Reviewed by CDER", "2024-03-05")


@pytest.mark.parametrize(
    ("furniture", "kept"),
    [
        ('<h2>Topic(s)</h2><ul class="lcds-metadata-list"><li>Drugs</li></ul>', ""),
        ("<h2>Regulated Product(s)</h2><ol><li>Drugs</li></ol>", ""),
        ("<h2>Topic(s)</h2><dl><dt>Drugs</dt></dl>", ""),
        # fda.gov's markup, indented: the heading's wrapper is the block, the list follows it
        ('<div class="lcds-metadata">\n  <h2>Topic(s)</h2>\n</div>\n'
         '<ul class="lcds-metadata-list">\n  <li>Drugs</li>\n</ul>', ""),
        ('<h2>Topic(s)</h2><div class="lcds-metadata-list"><span>Drugs</span></div>', ""),
        # not a list: only the heading goes, the paragraph after it is content
        ("<h2>Topic(s)</h2><p>Report adverse events to MedWatch.</p>",
         "\nReport adverse events to MedWatch."),
        ('<h2>Topic(s)</h2><div class="callout">Report adverse events to MedWatch.</div>',
         "\nReport adverse events to MedWatch."),
    ],
)  # fmt: skip
def test_a_metadata_heading_goes_with_the_list_after_it_and_nothing_else(
    furniture: str, kept: str
) -> None:
    assert html_to_text(page(furniture)).text == TEXT + kept


@pytest.mark.parametrize(
    "furniture",
    [
        "<div><h2>Content current as of:</h2></div><p>Patients should not use it at home.</p>",
        "<p>Content current as of:</p><p>Patients should not use it at home.</p>",
    ],
)
def test_a_content_current_label_without_its_date_never_takes_the_next_paragraph(
    furniture: str,
) -> None:
    """The template lost the date: the label goes, the sentence after it is content (a rule
    that took it as the date would hide every later edit of that sentence)."""
    found = html_to_text(page(furniture))
    assert (found.text, found.content_date) == (
        f"{TEXT}\nPatients should not use it at home.",
        None,
    )


def test_the_page_date_comes_from_the_time_element_not_another_datetime() -> None:
    """An `<ins datetime>` (an editor's revision mark) around the date is not the page's date."""
    furniture = (
        '<div><h2>Content current as of:</h2><p><ins datetime="2023-10-11T09:00:00Z">'
        '<time datetime="2023-10-10T14:31:00Z">10/10/2023</time></ins></p></div>'
    )
    found = html_to_text(page(furniture))
    assert (found.text, found.content_date) == (TEXT, "2023-10-10")


@pytest.mark.parametrize(
    ("furniture", "kept"),
    [
        ('<p><a href="#top">Back to top</a></p>', ""),
        ('<p><a href="#main-content">Skip to main content</a></p>', ""),
        # the same words, not a link: the page says them, so they are content
        ("<p>Back to top</p>", "\nBack to top"),
    ],
)
def test_jump_links_go_and_the_same_words_as_text_stay(furniture: str, kept: str) -> None:
    assert html_to_text(page(furniture)).text == TEXT + kept
