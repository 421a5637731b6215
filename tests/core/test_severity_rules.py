"""Every severity path of `monitor.core.severity.classify`, one table row per realistic input.

A row is an edit a compliance officer could meet, built from the fixtures (`tests/fixtures/pages`,
`openfda`, `dailymed`, `federal_register`, `warning_letters`; most of them SYNTHETIC, on the real
structure), and its EXACT tier and reasons: the reasons are what the alert email prints after
"why T…", so a rule that fires for the wrong reason fails its row as surely as a wrong tier.
Inputs go through the same steps as in the history (`normalized_text`, `changed_lines`,
`changed_parts`), so a row is what `ChangeWriter` would pass to `classify`. The same paths through
the history writer are in `tests/history/test_signal_paths.py`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from monitor.core import api_records, canonical, labels
from monitor.core.diff import changed_lines
from monitor.core.normalize import html_to_text, looks_like_date_line
from monitor.core.severity import MOVED_REASON, classify, section_tier
from monitor.core.tiers import lower_tier, only_dates_changed, raise_tier
from monitor.items import FEED_ITEM, HTML, LABEL_OPENFDA, LABEL_SPL, RECORD, Observation
from monitor.sources import SourceConfig, load_sources
from spiders.openfda import submission_record
from tests.support.paths import FIXTURES, ROOT

SHIPPED = load_sources(ROOT / "sources.toml")
ORAL_ALERT = SHIPPED["fda_ketamine_oral_alert"]  # T2, under /human-drug-compounding/
REMS_PAGE = SHIPPED["fda_spravato_rems"]  # T1
WHATS_NEW = SHIPPED["fda_drugs_whats_new_rss"]  # T3 feed
MEDWATCH = SHIPPED["fda_medwatch_rss"]  # T2 feed
FDA = "https://www.fda.gov"


@dataclass(frozen=True)
class Edit:
    """One edit of one document: what `ChangeWriter.write` passes to `classify`."""

    source: SourceConfig
    kind: str
    old: str
    new: str
    content_type: str = HTML
    url: str = ""

    def verdict(self) -> tuple[str, tuple[str, ...]]:
        added, removed = changed_lines(self.old, self.new)
        both = self.old and self.new
        found = classify(
            source_tier=self.source.tier,
            source_title=self.source.title,
            kind=self.kind,
            url=self.url or self.source.url,
            added=added,
            removed=removed,
            content_type=self.content_type,
            source_kind=self.source.kind,
            sections=canonical.changed_parts(self.content_type, self.old, self.new) if both else [],
            old_text=self.old,
            new_text=self.new,
        )
        return found.tier, found.reasons


def text(observation_content: str, content_type: str, title: str = "") -> str:
    """The canonical text the history stores for a document (as `normalized_text` makes it)."""
    observation = Observation(
        source_id="x", key="k", url="u", title=title, content=observation_content,
        content_type=content_type, fetched_at=None, body=b"",  # type: ignore[arg-type]
    )  # fmt: skip
    return canonical.normalized_text(observation)[0]


def page(name: str, edit: Callable[[str], str] = lambda html: html) -> str:
    html = (FIXTURES / "pages" / name).read_text(encoding="utf-8")
    edited = edit(html)
    assert edited != html or edit.__name__ == "<lambda>", f"{edit.__name__} changed nothing"
    return html_to_text(edited).text


def last_updated(html: str) -> str:
    """The page on an older fda.gov template: a "Page Last Updated:" heading over its own date.

    That label is not the stripped "Content current as of" furniture, so the date stays in the
    text as a line of its own: the case the dates-only rule exists for.
    """
    return html.replace("Content current as of:", "Page Last Updated:")


V1 = "ketamine_oral_alert_synthetic_v1.html"
V2_DATE = "ketamine_oral_alert_synthetic_v2_date_only.html"
V5_EDIT = "ketamine_oral_alert_synthetic_v5_sentence_edited.html"
ORAL_WATCHED = f"{ORAL_ALERT.title}: watched at T2"
ORAL_CONTEXT = "raised one tier: names ketamine with compounded, compounder, telemedicine"


def feed_item(title: str, description: str = "") -> str:
    return text(description, FEED_ITEM, title=title)


#: A new row of the Compounding Risk Alerts index, as a "What's New: Drugs" feed item (SYNTHETIC).
NEW_ALERT_TITLE = (
    "FDA warns about compounded ketamine products marketed for at-home use through telemedicine "
    "platforms (synthetic test row)"
)
NEW_ALERT_URL = (
    f"{FDA}/drugs/human-drug-compounding/synthetic-test-row-compounded-ketamine-at-home-use"
)
#: A Drug Safety Communication naming Spravato and nothing of the escalation context (SYNTHETIC).
DSC_TITLE = "Synthetic test communication: FDA adds a warning to the Spravato (esketamine) label"
DSC_URL = f"{FDA}/drugs/drug-safety-and-availability/synthetic-dsc-spravato-warning"
LETTER_URL = (
    f"{FDA}/inspections-compliance-enforcement-and-criminal-investigations/warning-letters/"
)
PRESS_URL = f"{FDA}/news-events/press-announcements/synthetic-ketamine-statement"


def replace_tier(source: SourceConfig, tier: str) -> SourceConfig:
    return SourceConfig(**(source.to_dict() | {"tier": tier}))  # type: ignore[arg-type]


# --- pages and feed items ----------------------------------------------------------------------

PAGE_ROWS: dict[str, tuple[Edit, str, tuple[str, ...]]] = {
    # Mutation 11: the audience's core exposure (ketamine with compounders, telemedicine) is one
    # tier up from the source's own T2.
    "oral alert sentence edited": (
        Edit(ORAL_ALERT, "changed", page(V1), page(V5_EDIT)),
        "T1", (ORAL_WATCHED, ORAL_CONTEXT),
    ),
    # Mutation 10 (`all` → `any`): a diff made only of a date line is noise …
    "only the page's date line changed": (
        Edit(ORAL_ALERT, "changed", page(V1, last_updated), page(V2_DATE, last_updated)),
        "T5", ("only dates changed: noise, kept but never alerted",),
    ),
    # … but a real edit that comes with a new date line is a real edit, never noise.
    "sentence edited and the date line with it": (
        Edit(ORAL_ALERT, "changed", page(V1, last_updated), page(V5_EDIT, last_updated)),
        "T1", (ORAL_WATCHED, ORAL_CONTEXT),
    ),
    "the ketamine alert is no longer published": (
        Edit(ORAL_ALERT, "removed", page(V1), ""),
        "T1", (
            ORAL_WATCHED,
            "raised one tier: names esketamine, ketamine, spravato with compounded, compounder, "
            "compounding, telemedicine",
            "the document is no longer published",
        ),
    ),
    # Spravato named, but no compounding / telehealth / home use: the source's own tier.
    "REMS page: respiratory depression added": (
        Edit(REMS_PAGE, "changed", page("spravato_rems_synthetic_2019.html"),
             page("spravato_rems_synthetic_2024.html")),
        "T1", (f"{REMS_PAGE.title}: watched at T1",),
    ),
    "a T2 page naming Spravato without context stays T2": (
        Edit(replace_tier(REMS_PAGE, "T2"), "changed", page("spravato_rems_synthetic_2019.html"),
             page("spravato_rems_synthetic_2024.html")),
        "T2", (f"{REMS_PAGE.title}: watched at T2",),
    ),
    "a ketamine row added to the significant-safety-risks list": (
        Edit(SHIPPED["fda_bulks_significant_safety_risks"], "changed",
             page("significant_safety_risks_synthetic_v1.html"),
             page("significant_safety_risks_synthetic_v2_ketamine_row.html")),
        "T1", (
            f"{SHIPPED['fda_bulks_significant_safety_risks'].title}: watched at T2",
            "raised one tier: names ketamine, ketamine hydrochloride with 503A, at-home, "
            "compounded, home use",
        ),
    ),
    # Mutation 9: a NEW item under an FDA document-type path that names ketamine is T1, from a T3
    # feed, whatever else it names …
    "new compounding risk alert naming ketamine": (
        Edit(WHATS_NEW, "new", "", feed_item(NEW_ALERT_TITLE), FEED_ITEM, NEW_ALERT_URL),
        "T1", (
            f"{WHATS_NEW.title}: watched at T3",
            "new item is an FDA compounding risk alert naming ketamine",
        ),
    ),
    # … also without any escalation context to lift it there anyway.
    "new drug safety communication naming Spravato": (
        Edit(WHATS_NEW, "new", "", feed_item(DSC_TITLE), FEED_ITEM, DSC_URL),
        "T1", (
            f"{WHATS_NEW.title}: watched at T3",
            "new item is an FDA drug safety communication naming esketamine, spravato",
        ),
    ),
    "new warning letter item naming ketamine": (
        Edit(MEDWATCH, "new", "", feed_item("Warning letter: Example Clinic, ketamine troches"),
             FEED_ITEM, LETTER_URL + "example-clinic-700199"),
        "T1", (
            f"{MEDWATCH.title}: watched at T2",
            "new item is an FDA warning letter naming ketamine",
        ),
    ),
    # Not under a critical path: the feed's tier, raised by the context.
    "new press release on compounded ketamine": (
        Edit(WHATS_NEW, "new", "", feed_item(NEW_ALERT_TITLE), FEED_ITEM, PRESS_URL),
        "T2", (
            f"{WHATS_NEW.title}: watched at T3",
            "raised one tier: names ketamine with at-home, compounded, home use, telemedicine",
        ),
    ),
    "new press release naming ketamine alone": (
        Edit(WHATS_NEW, "new", "", feed_item("FDA statement on ketamine (synthetic)"), FEED_ITEM,
             PRESS_URL),
        "T3", (f"{WHATS_NEW.title}: watched at T3",),
    ),
    # Under a critical path but naming no watched term: only the feed's tier.
    "new drug safety communication about another drug": (
        Edit(WHATS_NEW, "new", "", feed_item(
            "Synthetic test communication: earlier monitoring recommended for a made-up product"
        ), FEED_ITEM, DSC_URL),
        "T3", (f"{WHATS_NEW.title}: watched at T3",),
    ),
    # The critical-path rule is for new items: an edit of a kept one is ranked like any edit.
    "kept drug safety communication edited": (
        Edit(WHATS_NEW, "changed", feed_item(DSC_TITLE),
             feed_item(DSC_TITLE.replace("a warning", "a boxed warning")), FEED_ITEM, DSC_URL),
        "T3", (f"{WHATS_NEW.title}: watched at T3",),
    ),
    # Mutation 15's verdict: an edit that drops "ketamine" from a kept item is still ranked on
    # what it removed (the removed line named ketamine with compounded and telemedicine).
    "kept item edited to drop ketamine": (
        Edit(WHATS_NEW, "changed", feed_item(NEW_ALERT_TITLE),
             feed_item(NEW_ALERT_TITLE.replace("compounded ketamine", "compounded")), FEED_ITEM,
             PRESS_URL),
        "T2", (
            f"{WHATS_NEW.title}: watched at T3",
            "raised one tier: names ketamine with at-home, compounded, home use, telemedicine",
        ),
    ),
    "moved page": (
        Edit(ORAL_ALERT, "moved", "", "", HTML, f"{FDA}/drugs/human-drug-compounding/new-address"),
        "T4", (MOVED_REASON,),
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", list(PAGE_ROWS))
def test_page_and_feed_changes_get_their_exact_tier_and_reasons(name: str) -> None:
    edit, tier, reasons = PAGE_ROWS[name]
    assert edit.verdict() == (tier, reasons)


def test_the_dates_only_rows_really_differ_only_in_a_date() -> None:
    """The premise of the T5 row: its one changed line on each side is a bare date."""
    added, removed = changed_lines(page(V1, last_updated), page(V2_DATE, last_updated))
    assert (added, removed) == (["03/05/2024"], ["10/10/2023"])
    added, removed = changed_lines(page(V1, last_updated), page(V5_EDIT, last_updated))
    assert [looks_like_date_line(line) for line in added] == [False, True]


@pytest.mark.parametrize(
    ("added", "removed", "only"),
    [
        (["03/05/2024"], ["10/10/2023"], True),
        (["Revised: 3/2026"], [], True),
        ([], ["Page Last Updated: 10/10/2023"], True),
        (["03/05/2024", "Use at home adds risk."], ["10/10/2023"], False),
        (["03/05/2024"], ["Use at home adds risk."], False),
        ([], [], False),  # no changed line at all is not "only dates"
    ],
)
def test_only_dates_changed_needs_every_line_to_be_a_date(
    added: list[str], removed: list[str], only: bool
) -> None:
    assert only_dates_changed(added, removed) is only


@pytest.mark.parametrize(
    ("tier", "raised", "lowered"),
    [("T1", "T1", "T2"), ("T2", "T1", "T3"), ("T3", "T2", "T4"), ("T4", "T3", "T4"),
     ("T5", "T4", "T4")],
)  # fmt: skip
def test_raising_stops_at_t1_and_lowering_a_real_edit_stops_at_t4(
    tier: str, raised: str, lowered: str
) -> None:
    assert (raise_tier(tier), lower_tier(tier)) == (raised, lowered)
    assert raise_tier("T4", steps=2) == "T2" and lower_tier("T1", floor="T5") == "T2"
    assert lower_tier("T4", floor="T5") == "T5"


# --- warning letters -------------------------------------------------------------------------

LETTERS = SHIPPED["fda_warning_letters_compounded"]  # T3


def letter(name: str) -> str:
    return html_to_text(
        (FIXTURES / "warning_letters" / f"{name}_synthetic.html").read_text(encoding="utf-8")
    ).text


KETAMINE_LETTER = letter("synthetic-ketamine-clinic-rx-700101-03102026")
TELEHEALTH_LETTER = letter("synthetic-slim-telehealth-700102-03032026")
HERBAL_LETTER = letter("synthetic-herbal-supplements-700103-02202026")

LETTER_ROWS: dict[str, tuple[Edit, str, tuple[str, ...]]] = {
    "new letter naming ketamine": (
        Edit(LETTERS, "new", "", KETAMINE_LETTER),
        "T1", ("new FDA warning letter naming ketamine",),
    ),
    "new letter about compounded drugs sold by telehealth": (
        Edit(LETTERS, "new", "", TELEHEALTH_LETTER),
        "T3", ("new FDA warning letter about compounded, telehealth without ketamine: "
               "enforcement context",),
    ),
    "new letter found for another reason": (
        Edit(LETTERS, "new", "", HERBAL_LETTER),
        "T5", ("new FDA warning letter found by the search but naming neither ketamine nor "
               "compounding / telehealth: kept, not alerted",),
    ),
    "ketamine letter edited": (
        Edit(LETTERS, "changed", KETAMINE_LETTER,
             KETAMINE_LETTER.replace("ketamine", "ketamine hydrochloride", 1)),
        "T2", ("a warning letter naming ketamine, ketamine hydrochloride was edited",),
    ),
    "other letter edited": (
        Edit(LETTERS, "changed", TELEHEALTH_LETTER,
             TELEHEALTH_LETTER + "\nClose-out letter issued."),
        "T4", ("a warning letter was edited",),
    ),
    # The subject line ends in the term: nothing else in the letter names it.
    "new letter whose subject names compounded ketamine": (
        Edit(LETTERS, "new", "", "Re: Compounded Ketamine\nDear Dr. Example:"),
        "T1", ("new FDA warning letter naming ketamine",),
    ),
    "new letter naming esketamine and Spravato": (
        Edit(LETTERS, "new", "", "Your esketamine product is not Spravato."),
        "T1", ("new FDA warning letter naming esketamine, spravato",),
    ),
    "letter's date line only": (
        Edit(LETTERS, "changed", TELEHEALTH_LETTER + "\nMarch 3, 2026",
             TELEHEALTH_LETTER + "\nMarch 4, 2026"),
        "T5", ("only dates changed in the letter: noise, kept but never alerted",),
    ),
    "letter withdrawn": (
        Edit(LETTERS, "removed", KETAMINE_LETTER, ""),
        "T3", ("the letter is no longer published",),
    ),
    "letter moved": (
        Edit(LETTERS, "moved", "", "", HTML, LETTER_URL + "moved"), "T4", (MOVED_REASON,),
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", list(LETTER_ROWS))
def test_warning_letters_get_their_exact_tier_and_reasons(name: str) -> None:
    edit, tier, reasons = LETTER_ROWS[name]
    assert edit.verdict() == (tier, reasons)


# --- labels: openFDA and DailyMed SPL ----------------------------------------------------------

OPENFDA_LABEL = SHIPPED["openfda_spravato_label"]  # T2
SPL_LABEL = SHIPPED["dailymed_spravato_label"]  # T2
SPRAVATO = json.loads((FIXTURES / "openfda" / "SYNTHETIC-spravato-label-v1.json").read_text())[
    "results"
][0]
HUMIRA = (FIXTURES / "dailymed" / "spl-humira-adalimumab-2013-09-30.xml").read_text(
    encoding="utf-8"
)
#: A sentence of the Humira boxed warning (34066-1); nothing in it mentions a REMS.
HUMIRA_BOXED = "Discontinue HUMIRA if a patient develops a serious infection or sepsis."


def openfda(**fields: Any) -> str:
    """The Spravato label's next version (new id, version, date) with `fields` replaced."""
    record = copy.deepcopy(SPRAVATO)
    record.update(
        id="00000000-0000-4000-8000-000000000019", version="18", effective_time="20260313"
    )
    record.update(fields)
    return text(json.dumps(record), LABEL_OPENFDA)


def field(name: str) -> list[str]:
    return list(SPRAVATO[name])


def spl(old: str, new: str) -> str:
    """The Humira label with the first `old` (in document order) replaced by `new`."""
    edited = HUMIRA.replace(old, new, 1)
    assert edited != HUMIRA, old
    return text(edited, LABEL_SPL)


SPRAVATO_V1 = text(json.dumps(SPRAVATO), LABEL_OPENFDA)
HUMIRA_V1 = text(HUMIRA, LABEL_SPL)
SPL_BOXED = "BOXED WARNING [34066-1]"

LABEL_ROWS: dict[str, tuple[Edit, str, tuple[str, ...]]] = {
    # Mutation 5a: a new boxed-warning paragraph without any REMS text is T1 by its section alone.
    "openFDA boxed warning gains a paragraph": (
        Edit(OPENFDA_LABEL, "changed", SPRAVATO_V1, openfda(boxed_warning=[
            *field("boxed_warning"), "Respiratory depression: monitor with pulse oximetry."
        ]), LABEL_OPENFDA),
        "T1", ("boxed_warning changed: T1",),
    ),
    # Mutation 5b: the same for the SPL format, its section named by LOINC code.
    # Already T1: naming compounded ketamine adds no "raised one tier" to the reasons.
    "openFDA boxed warning naming compounded ketamine": (
        Edit(OPENFDA_LABEL, "changed", SPRAVATO_V1, openfda(boxed_warning=[
            *field("boxed_warning"), "Do not substitute compounded ketamine."
        ]), LABEL_OPENFDA),
        "T1", ("boxed_warning changed: T1",),
    ),
    "boxed warning listed in Recent Major Changes": (
        Edit(OPENFDA_LABEL, "changed", SPRAVATO_V1, openfda(
            boxed_warning=[*field("boxed_warning"), "Respiratory depression: monitor SpO2."],
            recent_major_changes=["Boxed Warning 3/2026"],
        ), LABEL_OPENFDA),
        "T1", ("boxed_warning changed: T1", "recent_major_changes changed: T3"),
    ),
    "SPL boxed warning sentence edited": (
        Edit(SPL_LABEL, "changed", HUMIRA_V1, spl(
            HUMIRA_BOXED, "Discontinue HUMIRA if a patient develops a serious infection, sepsis "
            "or an opportunistic infection."
        ), LABEL_SPL),
        "T1", (f"{SPL_BOXED} changed: T1",),
    ),
    "SPL contraindication added": (
        Edit(SPL_LABEL, "changed", HUMIRA_V1, spl(
            ">None.</paragraph>", ">Known hypersensitivity to adalimumab.</paragraph>"
        ), LABEL_SPL),
        "T2", ("CONTRAINDICATIONS [34070-3] changed: T2",),
    ),
    "SPL boxed warning and contraindications: the top section ranks": (
        Edit(SPL_LABEL, "changed", HUMIRA_V1, text(
            HUMIRA.replace(HUMIRA_BOXED, HUMIRA_BOXED.replace("sepsis", "septic shock"), 1).replace(
                ">None.</paragraph>", ">Known hypersensitivity to adalimumab.</paragraph>"
            ), LABEL_SPL), LABEL_SPL),
        "T1", (f"{SPL_BOXED} changed: T1", "CONTRAINDICATIONS [34070-3] changed: T2"),
    ),
    "openFDA contraindication naming compounded ketamine": (
        Edit(OPENFDA_LABEL, "changed", SPRAVATO_V1, openfda(contraindications=[
            field("contraindications")[0] + " Do not combine with compounded ketamine."
        ]), LABEL_OPENFDA),
        "T1", (
            "contraindications changed: T2",
            "raised one tier: names esketamine, ketamine with compounded",
        ),
    ),
    "openFDA adverse reactions edited": (
        Edit(OPENFDA_LABEL, "changed", SPRAVATO_V1, openfda(adverse_reactions=[
            field("adverse_reactions")[0].replace("vertigo", "vertigo, hypoesthesia")
        ]), LABEL_OPENFDA),
        "T3", ("adverse_reactions changed: T3",),
    ),
    "openFDA package label edited": (
        Edit(OPENFDA_LABEL, "changed", SPRAVATO_V1, openfda(
            package_label_principal_display_panel=[
                field("package_label_principal_display_panel")[0].replace("28 mg Kit", "56 mg Kit")
            ]
        ), LABEL_OPENFDA),
        "T4", ("package_label_principal_display_panel changed: T4",),
    ),
    "warnings listed in Recent Major Changes": (
        Edit(OPENFDA_LABEL, "changed", SPRAVATO_V1, openfda(
            warnings_and_cautions=[field("warnings_and_cautions")[0] + " 5.6 Respiratory "
                                   "Depression Monitor SpO2."],
            recent_major_changes=["Warnings and Precautions (5.6) 3/2026"],
        ), LABEL_OPENFDA),
        "T1", (
            "warnings_and_cautions changed: T2",
            "recent_major_changes changed: T3",
            "raised one tier: Recent Major Changes lists Warnings And Precautions",
        ),
    ),
    # The REMS rule: any changed text about the REMS is T1, here in a T3 section.
    "abuse section edited to name the REMS": (
        Edit(OPENFDA_LABEL, "changed", SPRAVATO_V1, openfda(drug_abuse_and_dependence=[
            field("drug_abuse_and_dependence")[0] + " Dispensed only under the SPRAVATO REMS."
        ]), LABEL_OPENFDA),
        "T1", (
            "drug_abuse_and_dependence changed: T3",
            "the changed text concerns the REMS: T1",
        ),
    ),
    # "REMS" ends the first changed line: the rule reads each line whole.
    "two T3 sections edited, one ending with the REMS": (
        Edit(OPENFDA_LABEL, "changed", SPRAVATO_V1, openfda(
            adverse_reactions=[field("adverse_reactions")[0] + " Report to the SPRAVATO REMS"],
            drug_abuse_and_dependence=[field("drug_abuse_and_dependence")[0] + " Schedule III."],
        ), LABEL_OPENFDA),
        "T1", (
            "adverse_reactions changed: T3",
            "drug_abuse_and_dependence changed: T3",
            "the changed text concerns the REMS: T1",
        ),
    ),
    "only the label's version and date": (
        Edit(OPENFDA_LABEL, "changed", SPRAVATO_V1, openfda(), LABEL_OPENFDA),
        "T5", ("only the label's version, id or date changed: kept, not alerted",),
    ),
    "a revision date inside a section": (
        Edit(OPENFDA_LABEL, "changed", SPRAVATO_V1, openfda(recent_major_changes=[
            "Indications and Usage (1) 1/2025", "Dosage and Administration (2.1) 3/2026"
        ]), LABEL_OPENFDA),
        "T3", ("recent_major_changes changed: T3",),
    ),
    "new label in the result set": (
        Edit(OPENFDA_LABEL, "new", "", SPRAVATO_V1, LABEL_OPENFDA),
        "T3", ("a new label (set id) in the watched results",),
    ),
    "label gone from the complete result set": (
        Edit(OPENFDA_LABEL, "removed", SPRAVATO_V1, "", LABEL_OPENFDA),
        "T2", ("the label is no longer in the complete result set",),
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", list(LABEL_ROWS))
def test_label_changes_get_their_exact_tier_and_reasons(name: str) -> None:
    edit, tier, reasons = LABEL_ROWS[name]
    assert edit.verdict() == (tier, reasons)


def test_a_label_whose_only_changed_line_is_a_date_is_noise() -> None:
    """A section edit that only swaps a bare revision-date line (SPL "Revised: 9/2013")."""
    old = SPRAVATO_V1 + "\nRevised: 1/2025"
    new = SPRAVATO_V1 + "\nRevised: 3/2026"
    found = classify(
        source_tier="T2", source_title="label", kind="changed", url="u",
        added=["Revised: 3/2026"], removed=["Revised: 1/2025"], content_type=LABEL_SPL,
        sections=["package_label_principal_display_panel"], old_text=old, new_text=new,
    )  # fmt: skip
    assert found.tier == "T5"
    assert found.reasons == ("only dates changed in the label: kept, not alerted",)


@pytest.mark.parametrize(
    ("header", "tier"),
    [
        ("boxed_warning", "T1"),
        (SPL_BOXED, "T1"),
        ("CONTRAINDICATIONS [34070-3]", "T2"),
        ("warnings_and_cautions", "T2"),
        ("adverse_reactions_table", "T3"),  # a section's table ranks as the section
        ("recent_major_changes", "T3"),
        ("how_supplied", "T4"),
        ("openfda.brand_name", "T4"),
        (labels.DOCUMENT, "T5"),
    ],
)
def test_each_label_section_has_its_catalog_tier(header: str, tier: str) -> None:
    assert section_tier(header) == tier


# --- records: recalls, shortages, approvals, Federal Register, DailyMed listings ---------------

RECALLS = SHIPPED["openfda_ketamine_recalls"]  # T2
SHORTAGES = SHIPPED["openfda_ketamine_shortages"]  # T4
ESKETAMINE_APPS = SHIPPED["openfda_esketamine_drugsfda"]  # T3
KETAMINE_APPS = SHIPPED["openfda_ketamine_drugsfda"]  # T3
FEDERAL_REGISTER = SHIPPED["federal_register_ketamine"]  # T2
DAILYMED_SEARCH = SHIPPED["dailymed_ketamine_search"]  # T3


def results(directory: str, name: str) -> list[dict[str, Any]]:
    return json.loads((FIXTURES / directory / name).read_text(encoding="utf-8"))["results"]


def record(value: dict[str, Any]) -> str:
    return text(json.dumps(value), RECORD)


RECALL = {r["recall_number"]: r for n in (1, 2)
          for r in results("openfda", f"SYNTHETIC-ketamine-recalls-page{n}.json")}  # fmt: skip
CLASS_II = RECALL["D-0103-2026"]  # Example Generics Inc., ketamine HCl vial
COMPOUNDED = RECALL["D-0101-2026"]  # Class II, compounded by an outsourcing facility
CLASS_III = RECALL["D-0102-2026"]
APPLICATIONS = results("openfda", "SYNTHETIC-drugsfda-esketamine-v2.json")
SPRAVATO_APP, GENERIC_APP = APPLICATIONS


def submission(application: dict[str, Any], index: int = 0, **fields: Any) -> dict[str, Any]:
    """One Drugs@FDA submission record, as the spider builds it from an application."""
    brands = sorted({p["brand_name"] for p in application["products"]})
    return submission_record(application, application["submissions"][index], brands) | fields


#: The same generic, but of racemic ketamine: the new-product rule is for esketamine/arketamine.
KETAMINE_GENERIC = copy.deepcopy(GENERIC_APP)
KETAMINE_GENERIC["products"][0]["brand_name"] = "KETAMINE HYDROCHLORIDE"
KETAMINE_GENERIC["products"][0]["active_ingredients"][0]["name"] = "KETAMINE HYDROCHLORIDE"
SHORTAGE = {
    "package_ndc": "0409-2051-05",
    "generic_name": "Ketamine Hydrochloride",
    "company_name": "Example Pharma Inc.",
    "presentation": "Injection, 50 mg/mL",
    "status": "Resolved",
    "update_date": "2026-01-02",
}
FR = {
    r["document_number"]: r
    for n in (1, 2)
    for r in results("federal_register", f"SYNTHETIC-documents-ketamine-page{n}.json")
}
DEA_RULE, PROPOSED, NOTICE = FR["2025-24123"], FR["2025-01099"], FR["2023-07237"]
LISTING = {"setid": "14e8f864-8b8a-4e7e-8439-e510d3107063", "title": "KETALAR (ketamine) injection",
           "spl_version": "29", "published_date": "Jan 02, 2026"}  # fmt: skip


def without(value: dict[str, Any], *fields: str) -> dict[str, Any]:
    """The record as openFDA or the Federal Register sends it when these fields are empty."""
    return {k: v for k, v in value.items() if k not in fields}


def new(source: SourceConfig, value: dict[str, Any]) -> Edit:
    return Edit(source, "new", "", record(value), RECORD)


def changed(source: SourceConfig, old: dict[str, Any], **fields: Any) -> Edit:
    return Edit(source, "changed", record(old), record(old | fields), RECORD)


def removed(source: SourceConfig, old: dict[str, Any]) -> Edit:
    return Edit(source, "removed", record(old), "", RECORD)


RECORD_ROWS: dict[str, tuple[Edit, str, tuple[str, ...]]] = {
    "new Class I recall": (
        new(RECALLS, CLASS_II | {"classification": "Class I"}), "T1", ("new Class I recall: T1",),
    ),
    "new Class II recall": (new(RECALLS, CLASS_II), "T2", ("new Class II recall: T2",)),
    "new Class III recall": (new(RECALLS, CLASS_III), "T3", ("new Class III recall: T3",)),
    "new unclassified recall": (
        new(RECALLS, CLASS_II | {"classification": ""}), "T2", ("new unclassified recall: T2",),
    ),
    "new Class II recall of a compounded product": (
        new(RECALLS, COMPOUNDED), "T1", (
            "new Class II recall: T2",
            "raised one tier: names ketamine, ketamine hcl with compounded, outsourcing facility",
        ),
    ),
    "new Class III recall by a pharmacy": (
        new(RECALLS, CLASS_III | {"recalling_firm": "Example Family Pharmacy"}), "T2", (
            "new Class III recall: T3",
            "raised one tier: names ketamine, ketamine hydrochloride with a pharmacy recalling "
            "firm",
        ),
    ),
    "recall reclassified Class II → Class I": (
        changed(RECALLS, CLASS_II, classification="Class I"), "T1",
        ("recall reclassified Class II → Class I: T1",),
    ),
    "Class I recall updated (status)": (
        changed(RECALLS, CLASS_II | {"classification": "Class I"}, status="Terminated"), "T2",
        ("Class I recall updated (status): T2",),
    ),
    "Class III recall updated (quantity)": (
        changed(RECALLS, CLASS_III, product_quantity="2400 vials"), "T4",
        ("Class III recall updated (product_quantity): T4",),
    ),
    # A recall first listed before FDA classified it (openFDA leaves the field out).
    "recall classified for the first time": (
        Edit(RECALLS, "changed", record(without(CLASS_II, "classification")),
             record(CLASS_II | {"classification": "Class I"}), RECORD),
        "T1", ("recall reclassified none → Class I: T1",),
    ),
    "Class III recall updated (status and quantity)": (
        changed(RECALLS, CLASS_III, status="Terminated", product_quantity="2400 vials"), "T4",
        ("Class III recall updated (status, product_quantity): T4",),
    ),
    "new recall without a recalling firm": (
        new(RECALLS, without(CLASS_III, "recalling_firm")), "T3",
        ("new Class III recall: T3",),
    ),
    "recall: only its report and classification dates": (
        changed(RECALLS, CLASS_II, center_classification_date="20260301", report_date="20260401"),
        "T5", ("only dates changed (center_classification_date, report_date): kept, not "
               "alerted",),
    ),
    "recall: only its report date": (
        changed(RECALLS, CLASS_II, report_date="20260401"), "T5",
        ("only dates changed (report_date): kept, not alerted",),
    ),
    "recall gone from the complete set": (
        removed(RECALLS, CLASS_II), "T2", ("the record is no longer in the complete result set",),
    ),
    "new shortage, status Current": (
        new(SHORTAGES, SHORTAGE | {"status": "Current"}), "T2",
        ("entered the drug shortage list (status Current): T2",),
    ),
    "new shortage, already resolved": (
        new(SHORTAGES, SHORTAGE), "T4", ("new shortage record (status Resolved): T4",),
    ),
    "new shortage without status": (
        new(SHORTAGES, SHORTAGE | {"status": ""}), "T4",
        ("new shortage record (status unknown): T4",),
    ),
    "shortage back to Current": (
        changed(SHORTAGES, SHORTAGE, status="Current"), "T2",
        ("shortage status Resolved → Current: T2",),
    ),
    "shortage resolved": (
        changed(SHORTAGES, SHORTAGE | {"status": "Current"}, status="Resolved"), "T2",
        ("shortage status Current → Resolved: T2",),
    ),
    "shortage without status becomes Current": (
        Edit(SHORTAGES, "changed", record(without(SHORTAGE, "status")),
             record(SHORTAGE | {"status": "Current"}), RECORD),
        "T2", ("shortage status none → Current: T2",),
    ),
    "shortage loses its Current status": (
        Edit(SHORTAGES, "changed", record(SHORTAGE | {"status": "Current"}),
             record(without(SHORTAGE, "status")), RECORD),
        "T2", ("shortage status Current → none: T2",),
    ),
    "shortage presentation and company edited": (
        changed(SHORTAGES, SHORTAGE, presentation="Injection, 100 mg/mL",
                company_name="Example Pharma LLC"), "T4",
        ("shortage record updated (company_name, presentation): T4",),
    ),
    "shortage status between two other states": (
        changed(SHORTAGES, SHORTAGE, status="To Be Discontinued"), "T4",
        ("shortage record updated (status): T4",),
    ),
    "shortage presentation edited": (
        changed(SHORTAGES, SHORTAGE, presentation="Injection, 100 mg/mL"), "T4",
        ("shortage record updated (presentation): T4",),
    ),
    "shortage: only its update date": (
        changed(SHORTAGES, SHORTAGE, update_date="2026-02-01"), "T5",
        ("only dates changed (update_date): kept, not alerted",),
    ),
    # Drugs@FDA: a new application of esketamine is a new product (T1) …
    "new generic esketamine application": (
        new(ESKETAMINE_APPS, submission(GENERIC_APP)), "T1",
        ("a new application (ORIG STANDARD) for esketamine: a new product: T1",),
    ),
    # … one of racemic ketamine is not (its active ingredient is not the watched product).
    "new generic ketamine application": (
        new(KETAMINE_APPS, submission(KETAMINE_GENERIC)), "T3",
        ("new ORIG STANDARD submission: T3",),
    ),
    # A submission record carries the brand names, not the active ingredients: Spravato's own
    # original application is recognised by its brand.
    "new original application of Spravato": (
        new(ESKETAMINE_APPS, submission(SPRAVATO_APP, 0)), "T1",
        ("a new application (ORIG TYPE 1) for spravato: a new product: T1",),
    ),
    "new original application of an esketamine kit": (
        new(ESKETAMINE_APPS, submission(GENERIC_APP) | {
            "brand_name": ["ESKETAMINE HYDROCHLORIDE", "SPRAVATO"]
        }), "T1",
        ("a new application (ORIG STANDARD) for esketamine, spravato: a new product: T1",),
    ),
    "new submission without a class code": (
        new(ESKETAMINE_APPS, without(submission(SPRAVATO_APP, 1), "submission_class_code")),
        "T3", ("new SUPPL unclassified submission: T3",),
    ),
    "new submission without type or class": (
        new(ESKETAMINE_APPS, without(submission(SPRAVATO_APP, 1), "submission_class_code",
                                     "submission_type")),
        "T3", ("new unclassified submission: T3",),
    ),
    "a submission's status withdrawn from the record": (
        Edit(ESKETAMINE_APPS, "changed", record(submission(SPRAVATO_APP, 1)),
             record(without(submission(SPRAVATO_APP, 1), "submission_status")), RECORD),
        "T1", ("status  SUPPL EFFICACY submission: T1",),
    ),
    "new efficacy supplement": (
        new(ESKETAMINE_APPS, submission(SPRAVATO_APP, 1)), "T1",
        ("new SUPPL EFFICACY submission: T1",),
    ),
    "new labeling supplement": (
        new(ESKETAMINE_APPS, submission(SPRAVATO_APP, 1, submission_class_code="LABELING")), "T2",
        ("new SUPPL LABELING submission: T2",),
    ),
    "new REMS supplement": (
        new(ESKETAMINE_APPS, submission(SPRAVATO_APP, 1, submission_class_code="REMS")), "T1",
        ("new SUPPL REMS submission: T1",),
    ),
    "labeling supplement approved": (
        changed(ESKETAMINE_APPS, submission(SPRAVATO_APP, 1, submission_class_code="LABELING",
                                            submission_status="TA"), submission_status="AP"),
        "T2", ("status AP SUPPL LABELING submission: T2",),
    ),
    "a label PDF added to a submission": (
        changed(ESKETAMINE_APPS, submission(SPRAVATO_APP, 1),
                application_docs=["Label 20260313 https://www.accessdata.fda.gov/x.pdf"]),
        "T2", ("new or changed letter/label document on the SUPPL EFFICACY submission: T2",),
    ),
    "submission sponsor renamed": (
        changed(ESKETAMINE_APPS, submission(SPRAVATO_APP, 1), sponsor_name="JANSSEN PHARMS INC"),
        "T4", ("SUPPL EFFICACY submission record updated (sponsor_name): T4",),
    ),
    "submission sponsor and brand renamed": (
        changed(ESKETAMINE_APPS, submission(SPRAVATO_APP, 1), sponsor_name="JANSSEN PHARMS INC",
                brand_name=["SPRAVATO KIT"]),
        "T4", ("SUPPL EFFICACY submission record updated (brand_name, sponsor_name): T4",),
    ),
    "new DEA final rule naming telemedicine": (
        new(FEDERAL_REGISTER, DEA_RULE), "T1", (
            "new Federal Register DEA final rule naming telemedicine: T1",
        ),
    ),
    "new DEA final rule naming ketamine and telemedicine": (
        new(FEDERAL_REGISTER, DEA_RULE | {"abstract": "Ketamine prescribed by telemedicine."}),
        "T1", ("new Federal Register DEA final rule naming ketamine, telemedicine: T1",),
    ),
    "new final rule of another agency": (
        new(FEDERAL_REGISTER, DEA_RULE | {"agencies": [{"name": "Food and Drug Administration"}]}),
        "T2", ("new Federal Register final rule: T2",),
    ),
    "new DEA proposed rule on ketamine by telemedicine": (
        new(FEDERAL_REGISTER, PROPOSED), "T1", (
            "new Federal Register proposed rule: T2",
            "raised one tier: names ketamine with telemedicine",
        ),
    ),
    "new notice naming ketamine": (
        new(FEDERAL_REGISTER, NOTICE | {
            "title": "Importer of Controlled Substances Application: Example Labs (synthetic)",
            "abstract": "Registration to import ketamine.",
        }), "T2", ("new Federal Register notice naming ketamine: T2",),
    ),
    # The fixture's notice (FDA's 503B bulks list), its abstract naming ketamine.
    "new 503B bulks-list notice naming ketamine": (
        new(FEDERAL_REGISTER, NOTICE | {"abstract": "Ketamine is nominated for the list."}), "T1", (
            "new Federal Register notice naming ketamine: T2",
            "raised one tier: names ketamine with 503B",
        ),
    ),
    "new notice naming ketamine and esketamine": (
        new(FEDERAL_REGISTER, NOTICE | {
            "title": "Importer of Controlled Substances Application: Example Labs (synthetic)",
            "abstract": "Registration to import ketamine and esketamine.",
        }), "T2", ("new Federal Register notice naming esketamine, ketamine: T2",),
    ),
    "new notice": (new(FEDERAL_REGISTER, NOTICE), "T3", ("new Federal Register notice: T3",)),
    # The field ends in the term: the only mention of it in the record.
    "new notice whose title ends in Ketamine": (
        new(FEDERAL_REGISTER, NOTICE | {
            "title": "Bulk Manufacturer of Controlled Substances Application: Ketamine",
            "abstract": "Registration of a bulk manufacturer.",
        }), "T2", ("new Federal Register notice naming ketamine: T2",),
    ),
    "new document without a type or agencies": (
        new(FEDERAL_REGISTER, without(NOTICE, "type", "agencies")), "T2",
        ("new Federal Register untyped document: T2",),
    ),
    "new presidential document": (
        new(FEDERAL_REGISTER, NOTICE | {"type": "Presidential Document"}), "T2",
        ("new Federal Register Presidential Document document: T2",),
    ),
    "final rule corrected": (
        changed(FEDERAL_REGISTER, DEA_RULE, abstract="Corrected."), "T2",
        ("Federal Register DEA final rule naming telemedicine updated (abstract): T2",),
    ),
    "final rule corrected, with a new PDF": (
        changed(FEDERAL_REGISTER, DEA_RULE, abstract="Corrected.",
                pdf_url="https://www.govinfo.gov/content/pkg/FR-2025-01-17/pdf/2025-24123-c.pdf"),
        "T2", ("Federal Register DEA final rule naming telemedicine updated (abstract, pdf_url): "
               "T2",),
    ),
    "new DailyMed label set": (
        new(DAILYMED_SEARCH, LISTING), "T3", ("a new label set id in the DailyMed search: T3",),
    ),
    "DailyMed listing: new SPL version": (
        changed(DAILYMED_SEARCH, LISTING, spl_version="30"), "T4",
        ("DailyMed listing updated (spl_version): T4",),
    ),
    "DailyMed listing: new version and title": (
        changed(DAILYMED_SEARCH, LISTING, spl_version="30", title="KETALAR (ketamine) kit"), "T4",
        ("DailyMed listing updated (title, spl_version): T4",),
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", list(RECORD_ROWS))
def test_record_changes_get_their_exact_tier_and_reasons(name: str) -> None:
    edit, tier, reasons = RECORD_ROWS[name]
    assert edit.verdict() == (tier, reasons)


@pytest.mark.parametrize(
    ("tier", "text", "verdict"),
    [
        ("T3", "title: a notice", ("T3", ("watched at T3",))),
        ("T3", "title: compounded ketamine", ("T2", (
            "watched at T3", "raised one tier: names ketamine with compounded"
        ))),
        # A source watched as noise stays noise, whatever it names.
        ("T5", "title: compounded ketamine", ("T5", ("watched at T5",))),
    ],
)  # fmt: skip
def test_a_record_source_without_a_rule_keeps_its_own_tier(
    tier: str, text: str, verdict: tuple[str, tuple[str, ...]]
) -> None:
    found = classify(
        source_tier=tier, source_title="x", kind="new", url="u", added=[text], removed=[],
        content_type=RECORD, source_kind="some_future_api", new_text=text,
    )  # fmt: skip
    assert (found.tier, found.reasons) == verdict


def test_the_record_rows_change_only_the_fields_they_name() -> None:
    """The premise of the "updated (…)" rows: one field each, as the reasons say."""
    assert api_records.changed_fields(
        record(CLASS_III), record(CLASS_III | {"product_quantity": "2400 vials"})
    ) == ["product_quantity"]
