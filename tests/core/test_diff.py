"""Diffs and summaries: what a reader of an alert email sees about a change."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup

from monitor.core.diff import (
    SUMMARY_MAX,
    LineChange,
    changed_lines,
    paired_changes,
    summarize,
    unified,
    word_diff,
)
from monitor.core.normalize import html_to_text
from monitor.core.terms import weight
from tests.support.paths import PAGES


def page_text(name: str) -> str:
    html = (PAGES / name).read_text(encoding="utf-8")
    return html_to_text(str(BeautifulSoup(html, "lxml").select_one("main"))).text


@pytest.fixture(scope="module")
def alert_texts() -> tuple[str, str]:
    return (
        page_text("ketamine_oral_alert_synthetic_v1.html"),
        page_text("ketamine_oral_alert_synthetic_v5_sentence_edited.html"),
    )


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("", ""),
        ("", "Added from nothing."),
        ("Removed entirely.", ""),
        ("same words here", "same words here"),
        ("Risks include sedation.", "Risks include sedation and respiratory depression."),
        ("one  two\tthree", "one two three"),
        ("  leading and trailing  ", "leading and trailing"),
        ("a b c d e", "e d c b a"),
        ("REMS last update: 06/25/2019", "REMS last update: 12/31/2024"),
        ("Ketamine is not FDA approved.", "Ketamine is not FDA approved for any psychiatric use."),
    ],
)
def test_word_diff_round_trips_both_lines(old: str, new: str) -> None:
    segments = word_diff(old, new)

    assert "".join(text for kind, text in segments if kind != "delete") == new
    assert "".join(text for kind, text in segments if kind != "insert") == old
    assert all(kind in ("equal", "insert", "delete") and text for kind, text in segments)


@pytest.mark.parametrize(
    ("old", "new", "segments"),
    [
        (
            "Risks include sedation.",
            "Risks include sedation and dissociation.",
            [
                ("equal", "Risks include sedation"),
                ("insert", " and dissociation"),
                ("equal", "."),
            ],
        ),
        (
            "resulting from sedation and dissociation caused by SPRAVATO",
            "resulting from sedation, dissociation and respiratory depression caused by SPRAVATO",
            [
                ("equal", "resulting from sedation"),
                ("insert", ", dissociation"),
                ("equal", " and "),
                ("delete", "dissociation"),
                ("insert", "respiratory depression"),
                ("equal", " caused by SPRAVATO"),
            ],
        ),
        (
            "Enrolling all patients in a registry.",
            "Enrolling all patients in an outpatient setting.",
            [
                ("equal", "Enrolling all patients in "),
                ("delete", "a registry"),
                ("insert", "an outpatient setting"),
                ("equal", "."),
            ],
        ),
        (
            "REMS last update: 06/25/2019",
            "REMS last update: 12/31/2024",
            [("equal", "REMS last update: "), ("delete", "06/25/2019"), ("insert", "12/31/2024")],
        ),
        ("same", "same", [("equal", "same")]),
    ],
)
def test_word_diff_marks_only_the_changed_words(
    old: str, new: str, segments: list[tuple[str, str]]
) -> None:
    assert word_diff(old, new) == segments


@pytest.mark.parametrize(
    ("old", "new", "added", "removed"),
    [
        ("a\nb\nc", "a\nb\nc", [], []),
        ("a\nb", "a\nb\nc", ["c"], []),
        ("a\nb\nc", "a\nc", [], ["b"]),
        ("a\nb\nc", "a\nB\nc\nd", ["B", "d"], ["b"]),
        ("", "x\ny", ["x", "y"], []),
    ],
)
def test_changed_lines(old: str, new: str, added: list[str], removed: list[str]) -> None:
    assert changed_lines(old, new) == (added, removed)


def test_unified_diff_is_labelled_and_line_based() -> None:
    diff = unified("a\nb\nc\nd\ne\nf", "a\nb\nc\nD\ne\nf", "v1", "v2", context=1)

    assert diff.splitlines() == ["--- v1", "+++ v2", "@@ -3,3 +3,3 @@", " c", "-d", "+D", " e"]


def test_unified_diff_of_equal_texts_is_empty() -> None:
    assert unified("same", "same", "v1", "v2") == ""


def test_edited_sentence_on_the_alert_is_one_edited_change(alert_texts: tuple[str, str]) -> None:
    old, new = alert_texts
    changes = paired_changes(old, new)

    assert [change.kind for change in changes] == ["edited"]
    inserted = "".join(text for kind, text in changes[0].words if kind == "insert")
    assert inserted == " or be monitored by a health care provider after each dose"
    assert changes[0].old.endswith("may not receive information about these potential risks.")


@pytest.mark.parametrize(
    ("old", "new", "kinds"),
    [
        ("a\nb", "a\nb", []),
        (
            "Title\nRisks include sedation.",
            "Title\nRisks include sedation and dissociation.",
            ["edited"],
        ),
        (
            "Title\nRisks include sedation.",
            "Title\nA completely unrelated new paragraph here.",
            ["removed", "added"],
        ),
        ("Title", "Title\nNew line", ["added"]),
        ("Title\nOld line", "Title", ["removed"]),
        (
            "x\nFirst sentence one.\nSecond sentence two.",
            "x\nFirst sentence one!\nSecond sentence 2.",
            ["edited", "edited"],
        ),
        ("x\nOnly old.", "x\nOnly old!\nBrand new unrelated addition.", ["edited", "added"]),
    ],
)
def test_paired_changes_kinds(old: str, new: str, kinds: list[str]) -> None:
    assert [change.kind for change in paired_changes(old, new)] == kinds


def test_added_and_removed_changes_carry_only_their_side() -> None:
    changes = paired_changes("Title\nOld line", "Title\nSomething else entirely new")

    assert changes == [
        LineChange("removed", "Old line", ""),
        LineChange("added", "", "Something else entirely new"),
    ]


def test_new_index_row_is_one_added_change() -> None:
    old = page_text("compounding_risk_alerts_synthetic_v1.html")
    new = page_text("compounding_risk_alerts_synthetic_v2_new_row.html")
    changes = paired_changes(old, new)

    assert [change.kind for change in changes] == ["added"]
    assert changes[0].new.startswith("01/15/2026 | FDA warns about compounded ketamine products")


@pytest.mark.parametrize(
    ("old", "new", "kind", "summary"),
    [
        (None, "First line\nSecond line", "new", "First line"),
        ("Old first line\nmore", "", "removed", "Removed: Old first line"),
        ("Title", "Title\nNew paragraph.", "changed", "Added: “New paragraph.”"),
        ("Title\nGone paragraph.", "Title", "changed", "Removed: “Gone paragraph.”"),
        (
            "Title\nA\nB",
            "Title\nA\nB\nC one\nD two\nE three",
            "changed",
            "Added: “C one” and 2 more changes",
        ),
        (
            "REMS last update: 06/25/2019",
            "REMS last update: 12/31/2024",
            "changed",
            "Changed: “REMS last update: 12/31/2024”",
        ),
        ("Same", "Same", "changed", "No text change"),
    ],
)
def test_summarize(old: str | None, new: str, kind: str, summary: str) -> None:
    assert summarize(old, new, kind) == summary


@pytest.mark.parametrize(
    ("old", "new", "summary"),
    [
        (  # the edit naming the drug is quoted, not the reworded sentence before it
            "Title\nFDA is aware of reports.\nPatients should talk to a provider.",
            "Title\nFDA is aware of several reports.\n"
            "Patients should not use compounded ketamine at home.",
            "Changed: “Patients should not use compounded ketamine at home.” and 1 more change",
        ),
        (  # an added line naming the drug outweighs an edit that names nothing watched
            "Title\nContact us by mail.",
            "Title\nContact us by email.\nEsketamine (Spravato) REMS was modified.",
            "Added: “Esketamine (Spravato) REMS was modified.” and 1 more change",
        ),
        (  # nothing watched anywhere: the first edit, as before
            "Title\nA first sentence here.\nA second sentence here.",
            "Title\nA first sentence there.\nA second sentence there.",
            "Changed: “A first sentence there.” and 1 more change",
        ),
    ],
)
def test_summary_quotes_the_change_that_names_watched_terms(
    old: str, new: str, summary: str
) -> None:
    assert summarize(old, new, "changed", weigh=weight) == summary


def test_summary_of_the_edited_alert_quotes_the_new_words(alert_texts: tuple[str, str]) -> None:
    summary = summarize(*alert_texts, "changed")

    assert summary.startswith("Changed: “…")
    assert "or be monitored by a health care provider after each dose." in summary
    assert summary.endswith("”")
    assert len(summary) <= SUMMARY_MAX


LONG_LINE = " ".join(f"word{i}" for i in range(100))


@pytest.mark.parametrize(
    ("old", "new", "kind"),
    [
        (None, LONG_LINE, "new"),
        (LONG_LINE, "", "removed"),
        ("Title", f"Title\n{LONG_LINE}", "changed"),
        (f"Title\n{LONG_LINE}", f"Title\n{LONG_LINE.replace('word2 ', 'edited ', 1)}", "changed"),
    ],
)
def test_long_summaries_are_cut_on_a_word_boundary(old: str | None, new: str, kind: str) -> None:
    summary = summarize(old, new, kind)
    cut = summary.removesuffix("”")

    assert len(summary) <= SUMMARY_MAX
    assert cut.endswith("…")
    assert cut.removesuffix("…").split()[-1].lstrip("“…") in LONG_LINE.split()


def test_summary_never_invents_words(alert_texts: tuple[str, str]) -> None:
    old, new = alert_texts
    source_words = set((old + "\n" + new).split())
    summary_words = summarize(old, new, "changed").replace("“", " ").replace("”", " ")

    invented = {w.strip("…") for w in summary_words.split()} - source_words - {"Changed:", ""}
    assert invented == set()
