"""Section-aware label diffs, record-keyed diffs and their severity, through history.record.

The Spravato label and the recall records are SYNTHETIC (no real ketamine label or recall is
available as a fixture): they are built on the structure of the real openFDA label response
(tests/fixtures/openfda/SYNTHETIC-spravato-label-v1.json says so in meta.disclaimer).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlmodel import Session

from monitor.history.writer import HistoryWriter
from monitor.items import FAILED, LABEL_OPENFDA, LABEL_SPL, RECORD
from monitor.sources import SourceConfig
from tests.support.api_history import crawl, first_result, observe
from tests.support.clock import Clock
from tests.support.paths import DAILYMED, OPENFDA
from tests.support.sources import make_source

SPRAVATO = "d81a6a79-a74a-44b7-822c-0dfa3036eaed"
LABEL_SOURCE = make_source(
    id="openfda_spravato_label",
    kind="openfda_label",
    url=f'https://api.fda.gov/drug/label.json?search=set_id:"{SPRAVATO}"',
    title="openFDA label: Spravato",
    tier="T2",
)
RECALLS = make_source(
    id="openfda_ketamine_recalls",
    kind="openfda_recalls",
    url='https://api.fda.gov/drug/enforcement.json?search=product_description:"ketamine"',
    title="openFDA recalls: ketamine",
    tier="T2",
)


def spravato() -> dict[str, Any]:
    return first_result(OPENFDA / "SYNTHETIC-spravato-label-v1.json")


def revised(record: dict[str, Any], **fields: Any) -> str:
    """The next version of a label: a new id and version, and the given field edits."""
    new = copy.deepcopy(record)
    new.update(id="00000000-0000-4000-8000-000000000019", version="18", effective_time="20260313")
    new.update(fields)
    return json.dumps(new)


def add_respiratory_depression(record: dict[str, Any]) -> dict[str, Any]:
    boxed = record["boxed_warning"][0].replace(
        "DISSOCIATION; ABUSE", "DISSOCIATION; RESPIRATORY DEPRESSION; ABUSE"
    )
    return {"boxed_warning": [boxed]}


def package_label_edit(record: dict[str, Any]) -> dict[str, Any]:
    panel = record["package_label_principal_display_panel"][0]
    return {"package_label_principal_display_panel": [panel.replace("28 mg Kit", "56 mg Kit")]}


def revision_date_only(record: dict[str, Any]) -> dict[str, Any]:
    panel = record["package_label_principal_display_panel"][0]
    return {"package_label_principal_display_panel": [panel.replace("1/2025", "3/2026")]}


def warnings_listed_in_recent_major_changes(record: dict[str, Any]) -> dict[str, Any]:
    warnings = record["warnings_and_cautions"][0] + " 5.6 Respiratory Depression Monitor SpO2."
    changes = ["Warnings and Precautions (5.6) 3/2026"]
    return {"warnings_and_cautions": [warnings], "recent_major_changes": changes}


@pytest.mark.parametrize(
    ("edit", "tier", "sections", "reason"),
    [
        (add_respiratory_depression, "T1", ["boxed_warning"], "boxed_warning changed: T1"),
        (
            package_label_edit,
            "T4",
            ["package_label_principal_display_panel"],
            "package_label_principal_display_panel changed: T4",
        ),
        (revision_date_only, "T5", [], "only the label's version, id or date changed"),
        (
            warnings_listed_in_recent_major_changes,
            "T1",
            ["recent_major_changes", "warnings_and_cautions"],
            "raised one tier: Recent Major Changes lists Warnings And Precautions",
        ),
    ],
)
def test_synthetic_spravato_label_versions_are_ranked_by_the_changed_section(
    session: Session,
    registered: Callable[..., list[SourceConfig]],
    clock: Clock,
    edit: Callable[[dict[str, Any]], dict[str, Any]],
    tier: str,
    sections: list[str],
    reason: str,
) -> None:
    registered(LABEL_SOURCE)
    v1 = spravato()
    assert (
        crawl(session, LABEL_SOURCE, {SPRAVATO: json.dumps(v1)}, LABEL_OPENFDA, clock.tick()) == []
    )

    changes = crawl(
        session, LABEL_SOURCE, {SPRAVATO: revised(v1, **edit(v1))}, LABEL_OPENFDA, clock.tick()
    )

    assert len(changes) == 1
    change = changes[0]
    assert (change.kind, change.severity, sorted(change.sections)) == ("changed", tier, sections)
    assert any(reason in r for r in change.severity_reasons), change.severity_reasons
    if edit is add_respiratory_depression:
        assert "+## boxed_warning" not in change.diff  # the header is context, not a change
        assert "RESPIRATORY DEPRESSION" in change.summary
        assert change.matched_terms == ["spravato"]


def test_real_openfda_label_a_month_apart_is_no_change(
    session: Session, registered: Callable[..., list[SourceConfig]], clock: Clock
) -> None:
    """Only meta.last_updated and meta.results.total differ: never a change, not even T5."""
    registered(LABEL_SOURCE)
    before = first_result(OPENFDA / "label-first-record-2018-03-08.json")
    after = first_result(OPENFDA / "label-first-record-2018-04-04.json")
    key = before["set_id"]

    crawl(session, LABEL_SOURCE, {key: json.dumps(before)}, LABEL_OPENFDA, clock.tick())
    assert crawl(session, LABEL_SOURCE, {key: json.dumps(after)}, LABEL_OPENFDA, clock.tick()) == []


def test_spl_label_section_diff_names_the_loinc_section(
    session: Session, registered: Callable[..., list[SourceConfig]], clock: Clock
) -> None:
    history_url = "https://dailymed.nlm.nih.gov/dailymed/services/v2/spls/x/history.json"
    source = make_source(id="dailymed_humira", kind="dailymed_spl", tier="T3", url=history_url)
    registered(source)
    xml = (DAILYMED / "spl-humira-adalimumab-2013-09-30.xml").read_text(encoding="utf-8")
    crawl(session, source, {"humira": xml}, LABEL_SPL, clock.tick())
    edited = xml.replace(">None.</paragraph>", ">Known hypersensitivity to adalimumab.</paragraph>")
    assert edited != xml

    [change] = crawl(session, source, {"humira": edited}, LABEL_SPL, clock.tick())

    assert change.sections == ["CONTRAINDICATIONS [34070-3]"]
    assert change.severity == "T2"
    assert "+Known hypersensitivity to adalimumab." in change.diff


def recall(number: str, page: int = 1) -> dict[str, Any]:
    results = json.loads((OPENFDA / f"SYNTHETIC-ketamine-recalls-page{page}.json").read_text())
    return next(r for r in results["results"] if r["recall_number"] == number)


def test_recall_reclassified_class_ii_to_class_i_is_t1_with_the_field_diff(
    session: Session, registered: Callable[..., list[SourceConfig]], clock: Clock
) -> None:
    registered(RECALLS)
    before = recall("D-0103-2026", page=2)
    crawl(session, RECALLS, {"D-0103-2026": json.dumps(before)}, RECORD, clock.tick())
    after = {**before, "classification": "Class I", "center_classification_date": "20260301"}

    [change] = crawl(session, RECALLS, {"D-0103-2026": json.dumps(after)}, RECORD, clock.tick())

    assert (change.kind, change.severity) == ("changed", "T1")
    assert change.sections == ["classification", "center_classification_date"]
    assert "-classification: Class II\n+classification: Class I" in change.diff
    assert "recall reclassified Class II → Class I: T1" in change.severity_reasons


@pytest.mark.parametrize(
    ("number", "page", "tier", "reason"),
    [
        ("D-0103-2026", 2, "T2", "new Class II recall: T2"),
        ("D-0102-2026", 1, "T3", "new Class III recall: T3"),
        # Class II, but a compounded product from an outsourcing facility: one tier up.
        ("D-0101-2026", 1, "T1", "raised one tier: names ketamine, ketamine hcl with compounded"),
    ],
)
def test_new_recalls_after_the_baseline_are_ranked_by_class(
    session: Session,
    registered: Callable[..., list[SourceConfig]],
    clock: Clock,
    number: str,
    page: int,
    tier: str,
    reason: str,
) -> None:
    registered(RECALLS)
    old = {"D-0000-2025": json.dumps(recall("D-0102-2026") | {"recall_number": "D-0000-2025"})}
    crawl(session, RECALLS, old, RECORD, clock.tick())

    later = {**old, number: json.dumps(recall(number, page))}
    changes = crawl(session, RECALLS, later, RECORD, clock.tick())

    [change] = changes
    assert (change.kind, change.doc_key, change.severity) == ("new", number, tier)
    assert any(r.startswith(reason) for r in change.severity_reasons), change.severity_reasons


def test_record_date_only_change_is_t5(
    session: Session, registered: Callable[..., list[SourceConfig]], clock: Clock
) -> None:
    registered(RECALLS)
    before = recall("D-0103-2026", page=2)
    crawl(session, RECALLS, {"k": json.dumps(before)}, RECORD, clock.tick())

    dated = {"k": json.dumps(before | {"report_date": "20260401"})}
    [change] = crawl(session, RECALLS, dated, RECORD, clock.tick())

    assert (change.severity, change.sections) == ("T5", ["report_date"])


def test_records_missing_from_a_complete_set_are_removed_but_never_after_a_failure(
    session: Session, registered: Callable[..., list[SourceConfig]], clock: Clock
) -> None:
    registered(RECALLS)
    both = {n: json.dumps(recall(n)) for n in ("D-0101-2026", "D-0102-2026")}
    crawl(session, RECALLS, both, RECORD, clock.tick())

    only_first = {"D-0101-2026": both["D-0101-2026"]}
    assert crawl(session, RECALLS, {}, RECORD, clock.tick(), outcome=FAILED) == []
    first_absence = crawl(session, RECALLS, only_first, RECORD, clock.tick())
    confirmed = crawl(session, RECALLS, only_first, RECORD, clock.tick())
    again = crawl(session, RECALLS, only_first, RECORD, clock.tick())

    assert first_absence == []  # one absence is not yet a removal (confirm_removal = 2)
    assert [(c.kind, c.doc_key) for c in confirmed] == [("removed", "D-0102-2026")]
    assert again == []  # removed once


def test_a_record_absent_once_then_back_is_never_removed(
    session: Session, registered: Callable[..., list[SourceConfig]], clock: Clock
) -> None:
    """Absences must be in a row: absent, back, absent is two first absences, not a removal."""
    registered(RECALLS)
    both = {n: json.dumps(recall(n)) for n in ("D-0101-2026", "D-0102-2026")}
    only_first = {"D-0101-2026": both["D-0101-2026"]}
    crawl(session, RECALLS, both, RECORD, clock.tick())

    made = [
        crawl(session, RECALLS, records, RECORD, clock.tick())
        for records in (only_first, both, only_first)
    ]

    assert made == [[], [], []]


def test_feed_items_missing_from_a_fetch_are_still_not_removed(
    session: Session, registered: Callable[..., list[SourceConfig]], clock: Clock
) -> None:
    feed = make_source(id="drug_recalls_rss", kind="feed", url="https://www.fda.gov/rss.xml")
    registered(feed)
    at = clock.tick()
    item = observe(feed, "https://www.fda.gov/a", "ketamine", "feed_item", at)
    HistoryWriter([feed]).record_observation(session, item, at)
    session.commit()

    assert crawl(session, feed, {}, "feed_item", clock.tick()) == []
