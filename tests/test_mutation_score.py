"""`make mutate`'s verdict (`tests/support/mutation_score.py`) and the survivors list it reads.

The score gate is what makes mutation testing a habit rather than a report: these tests pin that
it counts only the signal rules, leaves out exactly the survivors explained as equivalent, and
fails (exit 1) below the target with every unexplained survivor named.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.mutation_score import EXPLAINED, explained, in_scope, main

#: `mutmut results --all true` as mutmut 3.8 prints it (names of real mutants, SYNTHETIC mix).
RESULTS = """\
    monitor.core.severity.x_classify__mutmut_1: survived
    monitor.core.severity.x_classify__mutmut_2: killed
    monitor.core.severity.x_classify__mutmut_3: killed
    monitor.core.tiers.x_only_dates_changed__mutmut_1: killed
    monitor.core.diff.x__shorten__mutmut_16: survived
    monitor.core.terms.x_match_terms__mutmut_4: timeout
    monitor.core.normalize.x_looks_like_date_line__mutmut_1: killed
    monitor.core.normalize.x_feed_item_text__mutmut_3: survived
    monitor.delivery.outbox.x_claim_due__mutmut_24: killed
    monitor.delivery.outbox.x_enqueue__mutmut_5: survived
"""


@pytest.fixture
def results(tmp_path: Path) -> Path:
    path = tmp_path / "results.txt"
    path.write_text(RESULTS, encoding="utf-8")
    return path


def survivors_list(tmp_path: Path, *names: str) -> Path:
    path = tmp_path / "survivors.md"
    path.write_text(
        "# Survivors\n\n" + "".join(f"- `{name}`: cannot differ.\n" for name in names),
        encoding="utf-8",
    )
    return path


def test_only_the_signal_rules_count(results: Path, tmp_path: Path, capsys) -> None:
    """Feed-item assembly and queueing (`enqueue`) are out of scope; their survivors too."""
    explained_list = survivors_list(
        tmp_path,
        "monitor.core.severity.x_classify__mutmut_1",
        "monitor.core.diff.x__shorten__mutmut_16",
    )

    assert main(["--results", str(results), "--explained", str(explained_list)]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "monitor.core.normalize          1 of    1 killed (100.0 %), 0 explained as equivalent",
        "monitor.core.severity           2 of    2 killed (100.0 %), 1 explained as equivalent",
        "monitor.core.terms              1 of    1 killed (100.0 %), 0 explained as equivalent",
        "monitor.core.tiers              1 of    1 killed (100.0 %), 0 explained as equivalent",
        "monitor.delivery.outbox         1 of    1 killed (100.0 %), 0 explained as equivalent",
        "score: 6 of 6 = 100.0 % (target 90 %; 8 mutants in scope)",
        "killed of all 8 mutants, the equivalent ones counted as survivors: 75.0 %",
    ]


def test_an_unexplained_survivor_fails_the_target_and_is_named(
    results: Path, tmp_path: Path, capsys
) -> None:
    explained_list = survivors_list(tmp_path, "monitor.core.diff.x__shorten__mutmut_16")

    assert main(["--results", str(results), "--explained", str(explained_list)]) == 1

    out = capsys.readouterr().out
    assert "score: 6 of 7 = 85.7 % (target 90 %; 8 mutants in scope)" in out
    assert (
        "  survived, not explained: monitor.core.severity.x_classify__mutmut_1 (survived): "
        "`mutmut show monitor.core.severity.x_classify__mutmut_1`"
    ) in out
    assert "mutation score 85.7 % is below the target 90 %" in out
    assert main(["--results", str(results), "--explained", str(explained_list), "--min", "85"]) == 0


def test_a_listed_name_that_is_no_longer_a_mutant_is_reported(
    results: Path, tmp_path: Path, capsys
) -> None:
    """mutmut renumbers a function's mutants when its code changes: a stale entry shows."""
    explained_list = survivors_list(
        tmp_path,
        "monitor.core.severity.x_classify__mutmut_1",
        "monitor.core.diff.x__shorten__mutmut_16",
        "monitor.core.diff.x__shorten__mutmut_99",
    )

    main(["--results", str(results), "--explained", str(explained_list)])

    assert (
        "  listed in survivors.md but no longer a mutant in scope: "
        "monitor.core.diff.x__shorten__mutmut_99"
    ) in capsys.readouterr().out


def test_every_survivor_listed_in_the_repository_is_in_scope_and_has_a_reason() -> None:
    text = EXPLAINED.read_text(encoding="utf-8")
    entries = [line for line in text.splitlines() if line.startswith("- `")]
    names = explained(text)

    assert entries and len(names) == len(entries)  # each survivor once
    assert sorted(name for name in names if not in_scope(name)) == []
    assert [line for line in entries if len(line.split("`: ", 1)[-1]) < 20] == []


@pytest.mark.parametrize(
    ("name", "counted"),
    [
        ("monitor.core.severity.x_classify__mutmut_1", True),
        ("monitor.core.tiers.x_only_dates_changed__mutmut_3", True),
        ("monitor.core.record_severity.x__federal_register__mutmut_78", True),
        ("monitor.core.terms.x_match_context__mutmut_2", True),
        ("monitor.core.diff.x_changed_lines__mutmut_10", True),
        ("monitor.core.normalize.x_looks_like_date_line__mutmut_1", True),
        ("monitor.core.normalize.x__strip_furniture__mutmut_17", True),
        ("monitor.core.normalize.xǁ_Furnitureǁfind__mutmut_6", True),
        ("monitor.delivery.outbox.x_claim_due__mutmut_24", True),
        ("monitor.delivery.outbox.x__due__mutmut_22", True),
        ("monitor.core.normalize.x_html_to_text__mutmut_2", True),
        # rendering, feed-item assembly and queueing carry the rules' output, they are not rules
        ("monitor.core.text_render.x__render__mutmut_3", False),
        ("monitor.core.normalize.x_feed_item_text__mutmut_3", False),
        ("monitor.delivery.outbox.x_enqueue__mutmut_5", False),
        ("monitor.history.writer.xǁHistoryWriterǁrecord__mutmut_1", False),
    ],
)
def test_the_scope_is_the_rules_the_issue_names(name: str, counted: bool) -> None:
    assert in_scope(name) is counted
