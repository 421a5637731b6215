"""Severity of FDA warning letters (kind `fda_warning_letters`) and of the new record sources.

A warning letter naming ketamine is T1 (catalog 6.1); one about compounding or telehealth without
ketamine is enforcement context, T3; one the full-text search returned for another reason (its
stemming: "plant compounds") is kept and never alerted, T5. Letters are judged on their text, so
the first rows use the SYNTHETIC letter pages as normalized.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from monitor.core.api_records import record_text
from monitor.core.normalize import html_to_text
from monitor.core.severity import classify
from monitor.items import RECORD
from tests.support.paths import WARNING_LETTERS

LETTER_URL = (
    "https://www.fda.gov/inspections-compliance-enforcement-and-criminal-investigations/"
    "warning-letters/synthetic-700101"
)


def letter_lines(name: str) -> list[str]:
    html = (WARNING_LETTERS / f"{name}_synthetic.html").read_text(encoding="utf-8")
    return html_to_text(html).text.splitlines()


def letter_verdict(
    kind: str, added: Sequence[str], removed: Sequence[str] = (), tier: str = "T3"
) -> tuple[str, tuple[str, ...]]:
    verdict = classify(
        source_tier=tier,
        source_title="FDA warning letters: full-text search 'compounded'",
        kind=kind,
        url=LETTER_URL,
        added=list(added),
        removed=list(removed),
        content_type="html",
        source_kind="fda_warning_letters",
    )
    return verdict.tier, verdict.reasons


@pytest.mark.parametrize(
    ("letter", "tier", "reason"),
    [
        (
            "synthetic-ketamine-clinic-rx-700101-03102026",
            "T1",
            "new FDA warning letter naming ketamine",
        ),
        (
            "synthetic-slim-telehealth-700102-03032026",
            "T3",
            "new FDA warning letter about compounded, telehealth without ketamine: enforcement "
            "context",
        ),
        (
            "synthetic-herbal-supplements-700103-02202026",
            "T5",
            "new FDA warning letter found by the search but naming neither ketamine nor "
            "compounding / telehealth: kept, not alerted",
        ),
    ],
)
def test_a_new_letter_is_ranked_by_what_it_names(letter: str, tier: str, reason: str) -> None:
    assert letter_verdict("new", letter_lines(letter)) == (tier, (reason,))


@pytest.mark.parametrize(
    ("kind", "added", "removed", "tier", "reason"),
    [
        ("new", ["Your esketamine nasal spray is misbranded."], [], "T1",
         "new FDA warning letter naming esketamine"),
        ("new", ["Re: Spravato sold without the REMS."], [], "T1",
         "new FDA warning letter naming spravato"),
        # Bare identifiers of the ketamine term set are not enough in a letter: a CMS or
        # reference number can be the same six digits.
        ("new", ["MARCS-CMS 211243 — March 10, 2026", "CGMP/Finished Pharmaceuticals"], [], "T5",
         "new FDA warning letter found by the search but naming neither ketamine nor "
         "compounding / telehealth: kept, not alerted"),
        ("new", ["Your 503B outsourcing facility shipped non-sterile drugs."], [], "T3",
         "new FDA warning letter about 503B, outsourcing facility without ketamine: "
         "enforcement context"),
        # "at-home" is a context word for ketamine items, not for letters (test kits).
        ("new", ["Your at-home test kits are adulterated."], [], "T5",
         "new FDA warning letter found by the search but naming neither ketamine nor "
         "compounding / telehealth: kept, not alerted"),
        ("changed", ["Content current as of 03/20/2026"], ["Content current as of 03/17/2026"],
         "T5", "only dates changed in the letter: noise, kept but never alerted"),
        ("changed", ["Your compounded ketamine troches are unapproved."],
         ["Your compounded troches are unapproved."], "T2",
         "a warning letter naming ketamine was edited"),
        ("changed", ["Response due in 15 working days."], ["Response due in 30 days."], "T4",
         "a warning letter was edited"),
        ("removed", [], ["Ketamine letter"], "T3", "the letter is no longer published"),
    ],
)  # fmt: skip
def test_letter_rules(
    kind: str, added: list[str], removed: list[str], tier: str, reason: str
) -> None:
    assert letter_verdict(kind, added, removed) == (tier, (reason,))


def test_the_letter_rule_does_not_touch_other_pages_at_the_same_path() -> None:
    """A page or feed item whose URL is a warning letter keeps the generic rule."""
    verdict = classify(
        source_tier="T2",
        source_title="FDA press releases",
        kind="new",
        url=LETTER_URL,
        added=["FDA warns a clinic about compounded ketamine"],
        removed=[],
        content_type="feed_item",
        source_kind="feed",
    )

    assert verdict.tier == "T1"
    assert verdict.reasons[1] == "new item is an FDA warning letter naming ketamine"


# --- the new record sources -------------------------------------------------------------------

DEA_FILING = {
    "document_number": "2025-24123",
    "type": "Rule",
    "title": "Controlled Substances: Fourth Temporary Extension of COVID-19 Telemedicine "
    "Flexibilities for Prescription of Controlled Medications",
    "agencies": [{"name": "Drug Enforcement Administration"}],
    "filing_type": "special",
}
GENERIC = {
    "application_number": "ANDA219999",
    "submission_type": "ORIG",
    "submission_number": "1",
    "submission_status": "AP",
    "submission_class_code": "STANDARD",
    "brand_name": ["ESKETAMINE HYDROCHLORIDE"],
}


def record_verdict(
    source_kind: str, record: dict[str, object], tier: str = "T3"
) -> tuple[str, str]:
    text = record_text(record)
    verdict = classify(
        source_tier=tier,
        source_title="a source",
        kind="new",
        url="https://example.org/",
        added=text.splitlines(),
        removed=[],
        content_type=RECORD,
        source_kind=source_kind,
        new_text=text,
    )
    return verdict.tier, verdict.reasons[0]


@pytest.mark.parametrize(
    ("source_kind", "record", "tier", "reason"),
    [
        ("federal_register_inspection", DEA_FILING, "T1",
         "new Federal Register DEA final rule naming telemedicine: T1"),
        ("federal_register_inspection", DEA_FILING | {"type": "Notice"}, "T3",
         "new Federal Register notice: T3"),
        ("openfda_drugsfda", GENERIC, "T1",
         "a new application (ORIG STANDARD) for esketamine: a new product: T1"),
        # A new ketamine ANDA is a new labeler, not a new product: the source's tier.
        ("openfda_drugsfda", GENERIC | {"brand_name": ["KETAMINE HYDROCHLORIDE"]}, "T3",
         "new ORIG STANDARD submission: T3"),
        # A supplement is ranked by its class as before, whatever it names.
        ("openfda_drugsfda", GENERIC | {"submission_type": "SUPPL", "submission_class_code":
         "LABELING"}, "T2", "new SUPPL LABELING submission: T2"),
    ],
)  # fmt: skip
def test_new_record_sources_rules(
    source_kind: str, record: dict[str, object], tier: str, reason: str
) -> None:
    assert record_verdict(source_kind, record) == (tier, reason)
