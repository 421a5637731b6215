"""The severity paths end to end: observations and fetch records through `HistoryWriter`.

`tests/core/test_severity_rules.py` pins what `classify` says for each input; these tests pin
that the history asks it the right question and acts on the answer: the stored change (kind,
tier, reasons, sections), the alert rows it queues (T5 never alerts), and what is never a change
(a 304, a block, an incomplete result set). Sources are the shipped `sources.toml` entries; the
documents are the fixtures (SYNTHETIC pages and API answers, the real Humira SPL).
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session, col, select

from db.models import Alert, Change, Document, HostBackoff, Source
from monitor.config import Recipient
from monitor.core.terms import expand_terms, match_terms
from monitor.history.writer import REFUSALS_REFRESH, HistoryWriter
from monitor.items import (
    BLOCKED,
    FEED_ITEM,
    GONE,
    HTML,
    LABEL_OPENFDA,
    LABEL_SPL,
    NOT_MODIFIED,
    OK,
    RECORD,
    Observation,
    SourceFetch,
)
from monitor.sources import SourceConfig, host_key, load_sources
from tests.support.api_answers import incomplete_recalls
from tests.support.clock import Clock
from tests.support.paths import FIXTURES, ROOT

SHIPPED = load_sources(ROOT / "sources.toml")
OFFICER = Recipient(email="officer@clinic.example")  # every tier but T5 (min_severity T4)
OWNER = Recipient(email="owner@clinic.example", min_severity="T1")
RECIPIENTS = (OFFICER, OWNER)


def fixture(*parts: str) -> str:
    return FIXTURES.joinpath(*parts).read_text(encoding="utf-8")


class History:
    """One source's history as the pipeline writes it: observations, then the fetch record."""

    def __init__(self, session: Session, source: SourceConfig, clock: Clock) -> None:
        self.session, self.source, self.clock = session, source, clock
        self.writer = HistoryWriter([source], recipients=RECIPIENTS)
        self.writer.sync_sources(session)
        session.commit()

    def observe(self, key: str, content: str, content_type: str, title: str = "") -> Observation:
        return Observation(
            source_id=self.source.id, key=key,
            url=key if key.startswith("http") else self.source.url,
            title=title or self.source.title, content=content, content_type=content_type,
            fetched_at=self.clock.now, body=content.encode(),
        )  # fmt: skip

    def fetch(
        self,
        documents: dict[str, str] | list[Observation],
        content_type: str = HTML,
        outcome: str = OK,
        **fetch: Any,
    ) -> list[Change]:
        """One fetch: its observations and its record; the changes it made (removals too)."""
        now = self.clock.tick()
        if isinstance(documents, dict):
            documents = [self.observe(k, v, content_type) for k, v in documents.items()]
        documents = [replace(o, fetched_at=now) for o in documents]
        state = self.writer.state(self.session, self.source.id)
        made = [self.writer.record_observation(self.session, o, now, state) for o in documents]
        keys = [o.key for o in documents] if outcome == OK and self.source.kind != "page" else []
        record = SourceFetch(
            self.source.id, self.source.url, outcome, now, documents=len(keys),
            document_keys=keys, **fetch,
        )  # fmt: skip
        self.writer.record_fetch(self.session, record, now, changes=sum(1 for c in made if c))
        self.session.commit()
        return list(
            self.session.exec(
                select(Change).where(Change.detected_at == now).order_by(col(Change.id))
            )
        )

    def alerts(self, change: Change) -> list[str]:
        query = select(Alert.recipient).where(Alert.change_id == change.id)
        return sorted(self.session.exec(query))


def verdict(change: Change) -> tuple[str, str, list[str]]:
    return change.kind, change.severity, change.severity_reasons


# --- pages -------------------------------------------------------------------------------------

ORAL_ALERT = SHIPPED["fda_ketamine_oral_alert"]
V1 = fixture("pages", "ketamine_oral_alert_synthetic_v1.html")
V2_DATE = fixture("pages", "ketamine_oral_alert_synthetic_v2_date_only.html")
V5_EDIT = fixture("pages", "ketamine_oral_alert_synthetic_v5_sentence_edited.html")
ORAL = [
    f"{ORAL_ALERT.title}: watched at T2",
    "raised one tier: names ketamine with compounded, compounder, telemedicine",
]


def last_updated(html: str) -> str:
    """An older fda.gov template: "Page Last Updated:" over a date that stays in the text."""
    edited = html.replace("Content current as of:", "Page Last Updated:")
    assert edited != html
    return edited


@pytest.mark.parametrize(
    ("first", "second", "severity", "reasons", "alerted"),
    [
        (V1, V5_EDIT, "T1", ORAL, [OFFICER.email, OWNER.email]),
        # Dates only: kept as a change (the history is complete) but never alerted.
        (last_updated(V1), last_updated(V2_DATE), "T5",
         ["only dates changed: noise, kept but never alerted"], []),
        # A real edit that comes with a new date line is ranked on the edit.
        (last_updated(V1), last_updated(V5_EDIT), "T1", ORAL, [OFFICER.email, OWNER.email]),
    ],
    ids=["sentence", "date_line_only", "sentence_and_date_line"],
)  # fmt: skip
def test_a_page_edit_is_stored_ranked_and_alerted_by_its_tier(
    session: Session,
    clock: Clock,
    first: str,
    second: str,
    severity: str,
    reasons: list[str],
    alerted: list[str],
) -> None:
    history = History(session, ORAL_ALERT, clock)
    assert history.fetch({ORAL_ALERT.url: first}) == []  # the baseline

    [change] = history.fetch({ORAL_ALERT.url: second})

    assert verdict(change) == ("changed", severity, reasons)
    assert history.alerts(change) == alerted


def test_the_date_stamp_of_the_current_template_is_no_change_at_all(
    session: Session, clock: Clock
) -> None:
    """ "Content current as of" is furniture: its date alone never even makes a T5 change."""
    history = History(session, ORAL_ALERT, clock)
    history.fetch({ORAL_ALERT.url: V1})
    assert history.fetch({ORAL_ALERT.url: V2_DATE}) == []


def test_a_page_gone_twice_is_removed_at_its_tier_and_alerted(
    session: Session, clock: Clock
) -> None:
    history = History(session, ORAL_ALERT, clock)
    history.fetch({ORAL_ALERT.url: V1})

    first = history.fetch([], outcome=GONE, http_status=404)
    [change] = history.fetch([], outcome=GONE, http_status=404)

    assert first == []  # confirm_removal = 2: one 404 is not yet a removal
    assert verdict(change) == (
        "removed",
        "T1",
        [
            f"{ORAL_ALERT.title}: watched at T2",
            "raised one tier: names esketamine, ketamine, spravato with compounded, compounder, "
            "compounding, telemedicine",
            "the document is no longer published",
        ],
    )
    assert history.alerts(change) == [OFFICER.email, OWNER.email]


def test_a_moved_page_is_one_t4_change_and_its_content_still_compared(
    session: Session, clock: Clock
) -> None:
    history = History(session, ORAL_ALERT, clock)
    history.fetch({ORAL_ALERT.url: V1})
    new_url = ORAL_ALERT.url.replace("fda-warns-patients", "fda-warns-patients-2026")

    [moved] = history.fetch({ORAL_ALERT.url: V1}, moved_to=new_url)
    again = history.fetch({ORAL_ALERT.url: V1}, moved_to=new_url)
    [edited] = history.fetch({ORAL_ALERT.url: V5_EDIT}, moved_to=new_url)

    assert verdict(moved) == (
        "moved",
        "T4",
        [
            "moved to a new address (a permanent redirect); its content is still compared as "
            "usual: update the source's url in sources.toml"
        ],
    )
    assert moved.summary == f"Moved: {ORAL_ALERT.url} → {new_url}"
    assert history.alerts(moved) == [OFFICER.email]  # T4: the owner wants T1 only
    assert again == []  # the same new address is said once
    assert verdict(edited) == ("changed", "T1", ORAL)


def test_a_blocked_fetch_is_never_a_change_nor_a_removal(session: Session, clock: Clock) -> None:
    history = History(session, ORAL_ALERT, clock)
    history.fetch({ORAL_ALERT.url: V1})

    made = [
        history.fetch([], outcome=BLOCKED, http_status=403, error="HTTP 403 from the CDN")
        for _ in range(ORAL_ALERT.confirm_removal + 2)
    ]

    assert made == [[], [], [], []]
    assert session.exec(select(Document)).one().removed_at is None
    row = session.get(Source, ORAL_ALERT.id)
    assert row is not None and row.health == "blocked"
    notices = session.exec(
        select(Alert.kind, Alert.recipient).where(col(Alert.change_id).is_(None))
    )
    assert sorted(notices) == [("source_blocked", OFFICER.email)]  # T2 notice: not the owner


@pytest.mark.parametrize("refused_by", ["this crawl", "another crawl"])
def test_a_host_that_answers_again_is_no_longer_backed_off(
    session: Session, clock: Clock, refused_by: str
) -> None:
    """A refusal this crawl (one writer) recorded, or one another crawl noted meanwhile."""
    writer = HistoryWriter([ORAL_ALERT])
    writer.sync_sources(session)
    host = host_key(ORAL_ALERT.url)

    def fetch(outcome: str, now: datetime) -> None:
        refused: dict[str, Any] = {}
        if outcome == BLOCKED:
            refused = {"http_status": 403, "error": "HTTP 403 from the CDN"}
        observed = SourceFetch(ORAL_ALERT.id, ORAL_ALERT.url, outcome, now, **refused)
        writer.record_fetch(session, observed, now)
        session.commit()

    start = clock.tick()
    fetch(OK, start)  # nothing to forget yet
    noted = start + timedelta(seconds=1)
    if refused_by == "this crawl":
        fetch(BLOCKED, noted)
        answered = noted + timedelta(seconds=1)  # at once
    else:
        until = noted + timedelta(hours=1)
        session.add(HostBackoff(host=host, refusals=1, first_refused_at=noted,
                                last_refused_at=noted, until=until))  # fmt: skip
        session.commit()
        answered = start + REFUSALS_REFRESH  # once this crawl reads the table again
    assert session.get(HostBackoff, host) is not None
    fetch(OK, answered)
    assert session.get(HostBackoff, host) is None


def test_a_304_keeps_the_stored_validators(session: Session, clock: Clock) -> None:
    """One by one and in bulk: a 304 has no validators of its own and must not wipe ours."""
    other = SHIPPED["fda_compounding_risk_alerts"]
    writer = HistoryWriter([ORAL_ALERT, other])
    writer.sync_sources(session)
    now = clock.tick()
    for source in (ORAL_ALERT, other):
        writer.record_fetch(
            session, SourceFetch(source.id, source.url, OK, now, etag=f'"{source.id}"',
                                 last_modified="Mon, 02 Nov 2026 09:00:00 GMT"), now,
        )  # fmt: skip
    session.commit()

    now = clock.tick()
    answer = SourceFetch(ORAL_ALERT.id, ORAL_ALERT.url, NOT_MODIFIED, now, http_status=304)
    writer.record_fetch(session, answer, now)
    batch = [SourceFetch(other.id, other.url, NOT_MODIFIED, now, http_status=304)]
    writer.record_not_modified(session, batch, now)
    session.commit()

    for source in (ORAL_ALERT, other):
        row = session.get(Source, source.id)
        assert row is not None
        assert (row.etag, row.last_modified) == (
            f'"{source.id}"',
            "Mon, 02 Nov 2026 09:00:00 GMT",
        )


# --- feed items --------------------------------------------------------------------------------

WHATS_NEW = SHIPPED["fda_drugs_whats_new_rss"]  # T3; keeps items naming ketamine or compounding
MEDWATCH = SHIPPED["fda_medwatch_rss"]  # T2; keeps items naming ketamine
ALERT_LINK = (
    "https://www.fda.gov/drugs/human-drug-compounding/"
    "synthetic-test-row-compounded-ketamine-at-home-use"
)
ALERT_TITLE = (
    "FDA warns about compounded ketamine products marketed for at-home use through telemedicine "
    "platforms (synthetic test row)"
)
OLD_LINK = "https://www.fda.gov/drugs/human-drug-compounding/compounding-risk-alerts"


def item(history: History, link: str, title: str, description: str = "") -> Observation:
    return history.observe(link, description, FEED_ITEM, title=title)


def test_a_new_compounding_risk_alert_naming_ketamine_is_t1(session: Session, clock: Clock) -> None:
    history = History(session, WHATS_NEW, clock)
    baseline = [item(history, OLD_LINK, "Compounding Risk Alerts")]
    assert history.fetch(baseline) == []

    [change] = history.fetch([*baseline, item(history, ALERT_LINK, ALERT_TITLE)])

    assert (change.doc_key, change.matched_terms) == (ALERT_LINK, ["ketamine"])
    assert verdict(change) == (
        "new",
        "T1",
        [
            f"{WHATS_NEW.title}: watched at T3",
            "new item is an FDA compounding risk alert naming ketamine",
        ],
    )
    assert history.alerts(change) == [OFFICER.email, OWNER.email]


def test_a_kept_item_edited_to_drop_ketamine_is_still_a_change(
    session: Session, clock: Clock
) -> None:
    """The term filter decides which NEW items are kept; a kept item is followed for good.

    An edit that takes "ketamine" out of an FDA alert matters (was it retracted? narrowed?), so
    it is a `changed` change ranked on the removed line, not silently dropped by the filter.
    MedWatch keeps items naming the ketamine set only, so the edited title names no kept term.
    """
    history = History(session, MEDWATCH, clock)
    history.fetch([item(history, OLD_LINK, "Compounding Risk Alerts")])  # not kept: no ketamine
    history.fetch([item(history, ALERT_LINK, ALERT_TITLE)])
    without = ALERT_TITLE.replace("compounded ketamine products", "compounded products")
    assert match_terms(without, expand_terms(MEDWATCH.terms)) == []

    [change] = history.fetch([item(history, ALERT_LINK, without)])

    assert (change.doc_key, change.matched_terms) == (ALERT_LINK, ["ketamine"])
    assert f"-{ALERT_TITLE}\n+{without}" in change.diff
    assert verdict(change) == (
        "changed",
        "T1",
        [
            f"{MEDWATCH.title}: watched at T2",
            "raised one tier: names ketamine with at-home, compounded, home use, telemedicine",
        ],
    )
    assert history.alerts(change) == [OFFICER.email, OWNER.email]


def test_a_new_item_outside_the_terms_is_not_kept(session: Session, clock: Clock) -> None:
    history = History(session, WHATS_NEW, clock)
    history.fetch([item(history, OLD_LINK, "Compounding Risk Alerts")])

    made = history.fetch([item(history, "https://www.fda.gov/x", "Egg recall (synthetic)")])

    assert made == []
    assert [d.doc_key for d in session.exec(select(Document))] == [OLD_LINK]


# --- labels and records ------------------------------------------------------------------------

SPL_LABEL = SHIPPED["dailymed_spravato_label"]  # T2
HUMIRA = fixture("dailymed", "spl-humira-adalimumab-2013-09-30.xml")
#: A sentence of the Humira boxed warning (LOINC 34066-1); no REMS text near it.
BOXED = "Discontinue HUMIRA if a patient develops a serious infection or sepsis."


def test_an_spl_boxed_warning_edit_is_t1_without_any_rems_text(
    session: Session, clock: Clock
) -> None:
    history = History(session, SPL_LABEL, clock)
    history.fetch({"humira": HUMIRA}, LABEL_SPL)
    edited = HUMIRA.replace(BOXED, BOXED.replace("or sepsis", ", sepsis or septic shock"), 1)
    assert "REMS" not in BOXED and "REMS" not in HUMIRA  # the REMS rule cannot be what ranks it

    [change] = history.fetch({"humira": edited}, LABEL_SPL)

    assert change.sections == ["BOXED WARNING [34066-1]"]
    assert verdict(change) == ("changed", "T1", ["BOXED WARNING [34066-1] changed: T1"])
    assert history.alerts(change) == [OFFICER.email, OWNER.email]


OPENFDA_LABEL = SHIPPED["openfda_spravato_label"]
SPRAVATO = json.loads(fixture("openfda", "SYNTHETIC-spravato-label-v1.json"))["results"][0]
SET_ID = SPRAVATO["set_id"]


def test_an_openfda_boxed_warning_paragraph_without_rems_text_is_t1(
    session: Session, clock: Clock
) -> None:
    history = History(session, OPENFDA_LABEL, clock)
    history.fetch({SET_ID: json.dumps(SPRAVATO)}, LABEL_OPENFDA)
    paragraph = "Respiratory depression: monitor with pulse oximetry."
    revised = SPRAVATO | {"version": "18", "boxed_warning": [*SPRAVATO["boxed_warning"], paragraph]}

    [change] = history.fetch({SET_ID: json.dumps(revised)}, LABEL_OPENFDA)

    assert (change.sections, change.summary) == (["boxed_warning"], f"Added: “{paragraph}”")
    assert verdict(change) == ("changed", "T1", ["boxed_warning changed: T1"])


RECALLS = SHIPPED["openfda_ketamine_recalls"]


def recalls(page: int) -> dict[str, str]:
    data = json.loads(fixture("openfda", f"SYNTHETIC-ketamine-recalls-page{page}.json"))
    return {r["recall_number"]: json.dumps(r) for r in data["results"]}


def test_a_new_class_i_recall_is_t1_and_a_reclassification_to_class_iii_is_t3(
    session: Session, clock: Clock
) -> None:
    history = History(session, RECALLS, clock)
    history.fetch(recalls(1), RECORD)
    record = json.loads(recalls(2)["D-0103-2026"])
    class_i = json.dumps(record | {"classification": "Class I"})

    [new] = history.fetch(recalls(1) | {"D-0103-2026": class_i}, RECORD)
    class_iii = json.dumps(record | {"classification": "Class III"})
    [reclassified] = history.fetch(recalls(1) | {"D-0103-2026": class_iii}, RECORD)

    assert verdict(new) == ("new", "T1", ["new Class I recall: T1"])
    assert history.alerts(new) == [OFFICER.email, OWNER.email]
    assert verdict(reclassified) == (
        "changed",
        "T3",
        ["recall reclassified Class I → Class III: T3"],
    )
    assert history.alerts(reclassified) == [OFFICER.email]


def test_an_incomplete_result_set_removes_nothing(session: Session, clock: Clock) -> None:
    """The spider's own output for a set stopped at `max_pages`: documents, then FAILED.

    The complete baseline has three recalls; the incomplete fetches carry two of them, as often
    as it takes to confirm a removal and more: the third must never be removed.
    """
    source = RECALLS  # the spider's source id too
    history = History(session, source, clock)
    history.fetch(recalls(1) | recalls(2), RECORD)

    for _ in range(source.confirm_removal + 1):
        *observations, record = incomplete_recalls()
        assert record.outcome != OK and "narrow the query" in (record.error or "")
        made = history.fetch(observations, RECORD, outcome=record.outcome, error=record.error)
        assert made == []

    documents = session.exec(select(Document).order_by(col(Document.doc_key))).all()
    assert [(d.doc_key, d.removed_at, d.missing_checks) for d in documents] == [
        ("D-0101-2026", None, 0),
        ("D-0102-2026", None, 0),
        ("D-0103-2026", None, 0),
    ]
