"""Severity of record changes: Federal Register type/agency, shortage status, approval class."""

from __future__ import annotations

import json
from typing import Any

import pytest

from monitor.core.api_records import changed_fields, record_text
from monitor.core.severity import classify
from monitor.items import RECORD
from tests.support.paths import FEDERAL_REGISTER


def fr(number: str) -> dict[str, Any]:
    pages = [
        json.loads((FEDERAL_REGISTER / f"SYNTHETIC-documents-ketamine-page{n}.json").read_text())
        for n in (1, 2)
    ]
    return next(r for p in pages for r in p["results"] if r["document_number"] == number)


def verdict(source_kind: str, old: dict[str, Any] | None, new: dict[str, Any]) -> tuple[str, str]:
    old_text = record_text(old) if old else ""
    new_text = record_text(new)
    result = classify(
        source_tier="T3",
        source_title="a source",
        kind="changed" if old else "new",
        url="https://example.org/",
        added=new_text.splitlines(),
        removed=old_text.splitlines(),
        content_type=RECORD,
        source_kind=source_kind,
        sections=changed_fields(old_text, new_text) if old else [],
        old_text=old_text,
        new_text=new_text,
    )
    return result.tier, " / ".join(result.reasons)


SHORTAGE = {
    "package_ndc": "0409-2051-05",
    "generic_name": "Ketamine Hydrochloride",
    "presentation": "Injection, 50 mg/mL",
    "status": "Resolved",
    "update_date": "2026-01-02",
}
APPROVAL = {
    "application_number": "NDA211243",
    "submission_type": "SUPPL",
    "submission_number": "19",
    "submission_status": "AP",
    "submission_class_code": "LABELING",
}
FR, SHORT, DRUGSFDA = "federal_register", "openfda_shortages", "openfda_drugsfda"
RULE = fr("2025-24123")


@pytest.mark.parametrize(
    ("source_kind", "old", "new", "tier", "reason"),
    [
        (FR, None, RULE, "T1", "DEA final rule naming"),
        # A proposed rule is T2; naming ketamine with telemedicine raises it one tier.
        (FR, None, fr("2025-01099"), "T1", "raised one tier: names ketamine with telemedicine"),
        (FR, None, fr("2025-01099") | {"abstract": "Special registrations."}, "T2", "proposed"),
        (FR, None, fr("2023-07237"), "T3", "new Federal Register notice"),
        (FR, RULE, RULE | {"abstract": "Corrected."}, "T2", "updated (abstract)"),
        (SHORT, None, SHORTAGE | {"status": "Current"}, "T2", "entered the drug shortage"),
        (SHORT, SHORTAGE, SHORTAGE | {"status": "Current"}, "T2", "Resolved → Current"),
        (SHORT, SHORTAGE, SHORTAGE | {"presentation": "Injection, 100 mg/mL"}, "T4",
         "shortage record updated (presentation)"),
        (SHORT, SHORTAGE, SHORTAGE | {"update_date": "2026-02-01"}, "T5", "only dates"),
        (DRUGSFDA, None, APPROVAL | {"submission_class_code": "EFFICACY"}, "T1", "EFFICACY"),
        (DRUGSFDA, None, APPROVAL, "T2", "new SUPPL LABELING submission: T2"),
        (DRUGSFDA, APPROVAL, APPROVAL | {"application_docs": ["Label 2026-03-13 x.pdf"]}, "T2",
         "letter/label document"),
    ],
)  # fmt: skip
def test_record_changes_are_ranked_by_the_record_fields(
    source_kind: str, old: dict[str, Any] | None, new: dict[str, Any], tier: str, reason: str
) -> None:
    found, reasons = verdict(source_kind, old, new)

    assert found == tier, reasons
    assert reason in reasons


def test_record_text_is_field_lines_in_the_documented_order() -> None:
    text = record_text(fr("2025-24123"))

    assert text.splitlines()[:3] == [
        "document_number: 2025-24123",
        "title: Fourth Temporary Extension of COVID-19 Telemedicine Flexibilities for "
        "Prescription of Controlled Medications",
        "type: Rule",
    ]
    assert "agencies: Drug Enforcement Administration; Health and Human Services Department" in text
    assert "excerpts" not in text  # search highlighting is not content
