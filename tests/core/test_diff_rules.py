"""Edges of the diff and summary rules that `tests/test_diff.py` leaves open.

Each row is a case where an off-by-one or a flipped preference would change what an officer reads
in the alert's first line, or which lines are counted as changed on a long page.
"""

from __future__ import annotations

from monitor.core.diff import changed_lines, summarize, word_diff


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
