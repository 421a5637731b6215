"""Plain words for readers: short source names for subjects, severity reasons as sentences."""

from __future__ import annotations

import pytest

from monitor.delivery.plain import open_label, reason_sentence
from monitor.delivery.reading import short_name, subject


@pytest.mark.parametrize(
    ("title", "short"),
    [
        ("REMS@FDA: Spravato (esketamine) REMS, NDA 211243", "Spravato REMS"),
        ("REMS@FDA: Spravato (esketamine) REMS (SYNTHETIC fixture)", "Spravato REMS"),
        (
            "FDA alert (Oct 10 2023): compounded ketamine incl. oral formulations",
            "Compounded ketamine incl. oral formulations",
        ),
        (
            "FDA: Compounding and the FDA: Questions and Answers",
            "Compounding and the FDA: Questions and Answers",
        ),
        (
            "FDA warning letters: full-text search 'ketamine'",
            "FDA warning letters: full-text search 'ketamine'",
        ),
        ("openFDA label: Spravato (esketamine) nasal spray", "OpenFDA label: Spravato nasal spray"),
    ],
)
def test_short_names_keep_what_the_source_is(title: str, short: str) -> None:
    assert short_name(title) == short


@pytest.mark.parametrize(
    ("parts", "total", "expected"),
    [
        (
            ["T1 Spravato REMS: REMS Requirements changed"],
            4,
            "[fdawatch] T1 Spravato REMS: REMS Requirements changed (+3 more)",
        ),
        (["T2 Compounded ketamine: Added “x”"], 1, "[fdawatch] T2 Compounded ketamine: Added “x”"),
        (
            [
                "T1 Spravato REMS: Added “Outpatient healthcare settings must have a prescriber "
                "on site”"
            ],
            3,
            "[fdawatch] T1 Spravato REMS: Added “Outpatient healthcare settings must have…” "
            "(+2 more)",
        ),
        (
            [
                "T3 FDA Food Safety Recalls RSS feed: new: Grimmway Farms Recalls Organic Whole "
                "and Select Organic Baby Carrots"
            ],
            2,
            "[fdawatch] T3 FDA Food Safety Recalls RSS feed: new: Grimmway Farms Recalls… "
            "(+1 more)",
        ),
    ],
)
def test_subjects_stay_under_ninety_characters(parts: list[str], total: int, expected: str) -> None:
    assert subject(parts, total) == expected
    assert len(expected) <= 90


@pytest.mark.parametrize(
    ("reason", "sentence"),
    [
        (
            "REMS@FDA: Spravato (esketamine) REMS: watched at T1",
            "Every change on REMS@FDA: Spravato (esketamine) REMS is rated at least T1 (critical).",
        ),
        (
            "raised one tier: names ketamine with at-home, telemedicine",
            "Raised one level because the changed text names ketamine together with at-home, "
            "telemedicine.",
        ),
        (
            "new item is a warning letter naming ketamine",
            "Critical because the new item is a warning letter naming ketamine.",
        ),
        (
            "boxed_warning changed: T1",
            "The label section boxed_warning changed; changes there are rated T1 (critical).",
        ),
        ("the document is no longer published", "The document is no longer published."),
        (
            "only dates changed: noise, kept but never alerted",
            "Only dates changed: noise, kept but never alerted.",
        ),
    ],
)
def test_severity_reasons_read_as_sentences(reason: str, sentence: str) -> None:
    assert reason_sentence(reason) == sentence


@pytest.mark.parametrize(
    ("url", "label"),
    [
        ("https://www.fda.gov/drugs/x", "Open on fda.gov"),
        ("https://www.accessdata.fda.gov/scripts/cder/rems/", "Open on fda.gov"),
        ("https://www.federalregister.gov/documents/1", "Open the source page"),
        ("http://127.0.0.1:8000/pages/x.html", "Open the source page"),
        (None, "Open the source page"),
    ],
)
def test_links_say_where_they_go(url: str | None, label: str) -> None:
    assert open_label(url) == label
