"""Edges of the diff and summary rules that `tests/core/test_diff.py` leaves open.

Each row is a case where an off-by-one or a flipped preference would change what an officer reads
in the alert's first line, or which lines are counted as changed on a long page.
"""

from __future__ import annotations

import pytest

from monitor.core.diff import LineChange, changed_lines, paired_changes, summarize, word_diff


def test_an_edited_line_beats_an_added_line_of_the_same_weight() -> None:
    """Without watched terms, the summary quotes the edit, though the added line comes first."""
    old = "Title\nIntroduction.\nPatients should talk to a provider."
    new = "Title\nSee the FAQ.\nIntroduction.\nPatients should talk to a pharmacist."

    assert summarize(old, new, "changed") == (
        "Changed: “Patients should talk to a pharmacist.” and 1 more change"
    )


def test_exactly_six_words_before_the_change_are_quoted_without_an_ellipsis() -> None:
    old = "Patients for at least two hours after each dose."
    six = "Patients for at least two hours and until sedation resolves."

    assert summarize(old, six, "changed") == (
        "Changed: “Patients for at least two hours and until sedation resolves.”"
    )
    assert summarize(f"Monitor {old}", f"Monitor {six}", "changed") == (
        "Changed: “…Patients for at least two hours and until sedation resolves.”"
    )


def test_an_empty_document_is_summarised_as_nothing() -> None:
    assert summarize(None, " \n\n", "new") == ""
    assert summarize(" \n", "", "removed") == "Removed:"


def test_a_word_diff_keeps_kinds_apart_whatever_the_words_say() -> None:
    """Segments merge by kind, never by text: a deleted run after the word "delete" stays apart."""
    assert word_diff("delete the registry", "delete") == [
        ("equal", "delete"),
        ("delete", " the registry"),
    ]
    assert word_diff("insert", "insert it") == [("equal", "insert"), ("insert", " it")]


def test_one_edited_cell_of_a_long_repetitive_table_is_one_changed_line() -> None:
    """300 lines, most of them the same "Yes" / "No" cells (a 503B facilities list, SYNTHETIC)."""
    rows = [
        cell
        for n in range(60)
        for cell in (f"Facility {n:02d} (SYNTHETIC)", "Yes", "No", "Yes", "Yes")
    ]
    edited = [*rows]
    edited[153] = "No"

    assert changed_lines("\n".join(rows), "\n".join(edited)) == (["No"], ["Yes"])


#: An alert sentence, written so that each row below puts one edge of the 160-character cut
#: (`SUMMARY_MAX`) where an off-by-one would show. SYNTHETIC wording on the Oct 2023 alert's.
ALERT = (
    "FDA is aware that compounders may be offering compounded ketamine products for at-home use "
    "through telemedicine platforms"
)
URL = (
    "https://www.accessdata.fda.gov/scripts/cder/daf/index.cfm?event=overview.process&ApplNo="
    "211243&utm_source=synthetic-test-row&utm_medium=email&utm_campaign=ketamine-compounding-"
    "risk-alert-2023"
)


@pytest.mark.parametrize(
    ("line", "summary"),
    [
        # exactly 160 characters: quoted whole
        (f"{ALERT}; patients should talk to a pharmacist.",
         f"{ALERT}; patients should talk to a pharmacist."),
        # a space right at the cut (character 160): the word before it stays
        (f"{ALERT}, and patients should ask their doctor about the risks.",
         f"{ALERT}, and patients should ask their doctor…"),
        # a word that ends at character 160 leaves no room for the ellipsis: it goes
        (f"{ALERT}, and patients should ask the physician about the risks.",
         f"{ALERT}, and patients should ask the…"),
        # punctuation before the cut goes, an upper-case word ending in X stays whole
        ("To report SUSPECTED ADVERSE REACTIONS, contact the manufacturer or FDA MedWatch at "
         "1-800-FDA-1088; adverse event reports may also be sent to MedWatch by FAX, by mail or "
         "online.",
         "To report SUSPECTED ADVERSE REACTIONS, contact the manufacturer or FDA MedWatch at "
         "1-800-FDA-1088; adverse event reports may also be sent to MedWatch by FAX…"),
        # one word longer than the limit: cut inside it, 159 characters and the ellipsis
        (URL, URL[:159] + "…"),
        # the cut falls on the last space, however early
        (f"• {URL}", "•…"),
    ],
)  # fmt: skip
def test_a_long_first_line_is_cut_at_the_last_word_that_fits(line: str, summary: str) -> None:
    assert summarize(None, line, "new") == summary
    assert len(summary) <= 160


def test_a_summary_with_more_changes_still_fits_in_160_characters() -> None:
    """The room for the quote is what the label and the " and 2 more changes" leave."""
    paragraph = (
        f"FDA is aware {ALERT.removeprefix('FDA is aware ')}, and patients should ask their doctor "
        "about the risks of sedation, dissociation and abuse."
    )
    old = f"Compounded Ketamine: FDA Alert\n{paragraph}\nContact: druginfo@fda.hhs.gov\nSee also"
    new = (
        old.replace("FDA is aware", "FDA has learned")
        .replace("Contact: druginfo@fda.hhs.gov", "Questions: call 1-855-543-3784")
    )  # fmt: skip

    summary = summarize(old, new, "changed")

    assert summary == (
        "Changed: “FDA has learned that compounders may be offering compounded ketamine products "
        "for at-home use through telemedicine platforms, and…” and 2 more changes"
    )
    assert len(summary) == 160


def test_a_line_exactly_half_similar_is_shown_as_edited() -> None:
    """`EDIT_SIMILARITY` is inclusive: a ratio of exactly 0.5 pairs the lines (2 × 9 / 36)."""
    assert paired_changes("Status: Backordered", "Status: Withdrawn") == [
        LineChange(
            "edited",
            "Status: Backordered",
            "Status: Withdrawn",
            [("equal", "Status: "), ("delete", "Backordered"), ("insert", "Withdrawn")],
        )
    ]


def test_one_status_in_a_long_list_of_identical_rows_is_one_changed_line() -> None:
    """70 presentations of one product, all "Currently in Shortage" (a shortage page, SYNTHETIC).

    Every line repeats, so difflib's "popular line" heuristic (autojunk, for 200 lines and more)
    would find no anchor after the edit and report the rest of the page as changed.
    """
    rows = [
        line
        for _ in range(70)
        for line in (
            "Ketamine Hydrochloride Injection, USP",
            "50 mg/mL, 10 mL multiple-dose vial",
            "Currently in Shortage",
        )
    ]
    edited = [*rows]
    edited[122] = "Resolved"
    old, new = "\n".join(rows), "\n".join(edited)

    assert changed_lines(old, new) == (["Resolved"], ["Currently in Shortage"])
    assert paired_changes(old, new) == [
        LineChange("removed", "Currently in Shortage", ""),
        LineChange("added", "", "Resolved"),
    ]


#: The Spravato boxed warning's points as one paragraph of 265 words and spaces (SYNTHETIC,
#: after the openFDA label in `tests/fixtures/openfda/SYNTHETIC-spravato-label-v1.json`).
SPRAVATO_WARNING = (
    "Patients are at risk for sedation, dissociation, and respiratory depression after "
    "administration of SPRAVATO. Monitor patients for at least two hours after each dose and until "
    "the patient is safe to leave. Because of the risks of serious adverse outcomes resulting from "
    "sedation, dissociation, and respiratory depression, SPRAVATO is only available through a "
    "restricted program called the SPRAVATO REMS. Patients are at risk for abuse and misuse of "
    "SPRAVATO. Consider each patient's risk for abuse or misuse prior to prescribing SPRAVATO and "
    "monitor all patients for the development of these behaviors or conditions, including "
    "drug-seeking behavior, while on therapy. Antidepressants increased the risk of suicidal "
    "thoughts and behaviors in pediatric and young adult patients in short-term studies. Closely "
    "monitor all antidepressant-treated patients for clinical worsening, and for emergence of "
    "suicidal thoughts and behaviors."
)


@pytest.mark.parametrize(
    ("old_words", "new_words", "changed"),
    [
        ("restricted program called the SPRAVATO REMS", "limited program called the Spravato REMS",
         [("delete", "restricted"), ("insert", "limited"),
          ("delete", "SPRAVATO"), ("insert", "Spravato")]),
        ("at least two hours after each dose", "at least three hours after every dose",
         [("delete", "two"), ("insert", "three"), ("delete", "each"), ("insert", "every")]),
    ],
)  # fmt: skip
def test_two_words_edited_in_a_long_paragraph_are_marked_alone(
    old_words: str, new_words: str, changed: list[tuple[str, str]]
) -> None:
    """The email and the site mark these words; the other 260 stay plain, however often they
    repeat (difflib's autojunk would treat "SPRAVATO" and the spaces as noise and mark half the
    paragraph as rewritten)."""
    segments = word_diff(SPRAVATO_WARNING, SPRAVATO_WARNING.replace(old_words, new_words))

    assert [(kind, text) for kind, text in segments if kind != "equal"] == changed
