"""Severity tiers T1 (critical) … T5 (noise) for a change, with the reasons that set them.

The rules come from the source catalog, section 6: a source's own tier is the starting point;
FDA document types named in a feed item's URL path and the audience's core exposure (ketamine
named together with compounding, telehealth or home use) move it; a diff that only touches dates
is noise (T5: kept, never alerted). Pure: the caller passes everything in.

Labels and records (openFDA, DailyMed, Federal Register) are ranked by what changed in them,
section 6.2: a label by its changed sections (boxed warning T1 … package label T4, only the
version/date T5), a recall by its classification, a shortage by its status, an approval by its
submission class, a Federal Register document by its type and agency. The escalation rules then
apply: ketamine named with compounding / telehealth / home use, and a PLR label whose "Recent
Major Changes" lists the changed section, each raise one tier.

FDA warning letters (kind `fda_warning_letters`) are ranked by what the letter names: ketamine
T1, compounding or telehealth without ketamine T3 (enforcement context), neither T5.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import urlsplit

from monitor.core import labels
from monitor.core.record_severity import classify_record
from monitor.core.terms import CONTEXT_TERMS, KETAMINE_TERMS, match_context, match_terms
from monitor.core.tiers import TIERS, Verdict, escalate, only_dates_changed, raise_tier
from monitor.items import HTML, LABEL_OPENFDA, LABEL_SPL, RECORD

#: URL path fragments of FDA document types that are critical when they name ketamine.
CRITICAL_PATHS = {
    "/human-drug-compounding/": "an FDA compounding risk alert",
    "/drug-safety-and-availability/": "an FDA drug safety communication",
    "/warning-letters/": "an FDA warning letter",
}


#: A page that moved (a permanent redirect) is still watched at its new address: low severity.
MOVED_TIER = "T4"
MOVED_REASON = (
    "moved to a new address (a permanent redirect); its content is still compared as usual: "
    "update the source's url in sources.toml"
)


def classify(
    *,
    source_tier: str,
    source_title: str,
    kind: str,
    url: str,
    added: Sequence[str],
    removed: Sequence[str],
    content_type: str = HTML,
    source_kind: str = "page",
    sections: Sequence[str] = (),
    old_text: str = "",
    new_text: str = "",
) -> Verdict:
    """The tier of one change. `added`/`removed` are the changed lines (all lines for `new`).

    Labels and records also pass their `content_type`, the `sections` (or record fields) that
    changed and both texts; pages and feeds need none of that.
    """
    if kind == "moved":
        return Verdict(MOVED_TIER, (MOVED_REASON,))
    if source_kind == WARNING_LETTERS:
        return classify_warning_letter(
            source_tier=source_tier, kind=kind, added=added, removed=removed
        )
    if content_type in LABEL_TYPES:
        return classify_label(
            source_tier=source_tier, kind=kind, sections=sections, added=added,
            removed=removed, new_text=new_text,
        )  # fmt: skip
    if content_type == RECORD:
        return classify_record(
            source_tier=source_tier, source_kind=source_kind, kind=kind, sections=sections,
            old_text=old_text, new_text=new_text,
        )  # fmt: skip
    if kind == "changed" and only_dates_changed(added, removed):
        return Verdict("T5", ("only dates changed: noise, kept but never alerted",))
    tier = source_tier
    reasons = [f"{source_title}: watched at {source_tier}"]
    changed_text = "\n".join([*added, *removed])
    terms = match_terms(changed_text)
    path = urlsplit(url).path
    if kind == "new" and terms:
        for fragment, what in CRITICAL_PATHS.items():
            if fragment in path:
                tier = "T1"
                reasons.append(f"new item is {what} naming {', '.join(terms)}")
                break
    context = match_context(changed_text)
    if terms and context and tier != "T1":
        tier = raise_tier(tier)
        reasons.append(f"raised one tier: names {', '.join(terms)} with {', '.join(context)}")
    if kind == "removed":
        reasons.append("the document is no longer published")
    return Verdict(tier, tuple(reasons))


# --- warning letters ---------------------------------------------------------------------------

WARNING_LETTERS = "fda_warning_letters"
#: What makes a letter T1: the ketamine set without its bare numbers ("211243", "016812", NDC
#: codes), which a letter can carry as an unrelated reference or CMS number.
LETTER_KETAMINE_TERMS = tuple(
    term for term in KETAMINE_TERMS if not term.replace("-", "").isdigit()
)
#: What makes a letter without ketamine enforcement context (catalog 6.1 T3: "telehealth /
#: compounding warning-letter wave about other drugs"). Narrower than CONTEXT_TERMS: "at-home"
#: or "home use" in a letter is as likely an at-home test kit as a compounded drug.
LETTER_CONTEXT_TERMS = tuple(
    term for term in CONTEXT_TERMS if term not in ("home use", "at-home", "direct-to-consumer")
)


def classify_warning_letter(
    *, source_tier: str, kind: str, added: Sequence[str], removed: Sequence[str]
) -> Verdict:
    """A warning letter ranked by what it names (catalog 6.1 T1 / T3; `added` = all lines if new).

    The listing is searched by FDA's full-text search, which stems and matches far more than
    the letter is about (a supplement letter's "active compounds" answers "compounded"): a
    letter that names neither ketamine nor compounding / telehealth is kept, never alerted.
    """
    if kind == "removed":
        return Verdict(source_tier, ("the letter is no longer published",))
    if kind == "changed" and only_dates_changed(added, removed):
        return Verdict("T5", ("only dates changed in the letter: noise, kept but never alerted",))
    text = "\n".join([*added, *removed])
    ketamine = match_terms(text, LETTER_KETAMINE_TERMS)
    context = match_terms(text, LETTER_CONTEXT_TERMS)
    if kind == "new":
        if ketamine:
            return Verdict("T1", (f"new FDA warning letter naming {', '.join(ketamine)}",))
        if context:
            why = f"new FDA warning letter about {', '.join(context)} without ketamine"
            return Verdict("T3", (f"{why}: enforcement context",))
        return Verdict(
            "T5",
            (
                "new FDA warning letter found by the search but naming neither ketamine nor "
                "compounding / telehealth: kept, not alerted",
            ),
        )
    if ketamine:
        return Verdict("T2", (f"a warning letter naming {', '.join(ketamine)} was edited",))
    return Verdict("T4", ("a warning letter was edited",))


# --- labels ------------------------------------------------------------------------------------

LABEL_TYPES = (LABEL_SPL, LABEL_OPENFDA)
#: Label sections by openFDA field name (SPL LOINC codes map onto these): catalog 6.2.
SECTION_TIERS: dict[str, str] = {
    "boxed_warning": "T1",
    **dict.fromkeys(
        ("contraindications", "warnings_and_cautions", "warnings", "precautions",
         "indications_and_usage", "dosage_and_administration"),
        "T2",
    ),
    **dict.fromkeys(
        ("adverse_reactions", "use_in_specific_populations", "pregnancy", "lactation",
         "nursing_mothers", "pediatric_use", "geriatric_use", "drug_abuse_and_dependence",
         "controlled_substance", "abuse", "dependence", "overdosage", "spl_medguide",
         "clinical_studies", "drug_interactions", "recent_major_changes",
         "information_for_patients", "spl_patient_package_insert", "dosage_forms_and_strengths"),
        "T3",
    ),
}  # fmt: skip
#: Every other section (package label, how supplied, storage, description, openfda.* …).
OTHER_SECTION_TIER = "T4"
#: How "Recent Major Changes" names a PLR section.
RECENT_MAJOR_CHANGE_NAMES = {
    "boxed_warning": "boxed warning",
    "indications_and_usage": "indications and usage",
    "dosage_and_administration": "dosage and administration",
    "contraindications": "contraindications",
    "warnings_and_cautions": "warnings and precautions",
}
REMS = re.compile(r"\bREMS\b|risk evaluation and mitigation strateg", re.IGNORECASE)


def section_tier(header: str) -> str:
    """The tier of a change to one label section (`boxed_warning`, `BOXED WARNING [34066-1]`)."""
    if header == labels.DOCUMENT:
        return "T5"
    field = labels.section_field(header).removesuffix("_table")
    return SECTION_TIERS.get(field, OTHER_SECTION_TIER)


def classify_label(
    *,
    source_tier: str,
    kind: str,
    sections: Sequence[str],
    added: Sequence[str],
    removed: Sequence[str],
    new_text: str,
) -> Verdict:
    """A label change ranked by the most severe section it touched."""
    if kind == "new":
        return Verdict("T3", ("a new label (set id) in the watched results",))
    if kind == "removed":
        return Verdict(source_tier, ("the label is no longer in the complete result set",))
    content = [s for s in sections if s != labels.DOCUMENT]
    if not content:
        return Verdict("T5", ("only the label's version, id or date changed: kept, not alerted",))
    changed = [line for line in [*added, *removed] if not line.startswith(labels.HEADER_PREFIX)]
    if only_dates_changed(changed, []):
        return Verdict("T5", ("only dates changed in the label: kept, not alerted",))
    ranked = sorted(content, key=lambda header: TIERS.index(section_tier(header)))
    top = ranked[0]
    tier = section_tier(top)
    reasons = [f"{header} changed: {section_tier(header)}" for header in ranked]
    recent = labels.section_text(new_text, "recent_major_changes").lower()
    name = RECENT_MAJOR_CHANGE_NAMES.get(labels.section_field(top))
    if name and name in recent and tier != "T1":
        tier = raise_tier(tier)
        reasons.append(f"raised one tier: Recent Major Changes lists {name.title()}")
    changed_text = "\n".join(changed)
    if REMS.search(changed_text) and tier != "T1":
        tier = "T1"
        reasons.append("the changed text concerns the REMS: T1")
    return escalate(tier, reasons, changed_text)


# --- records -----------------------------------------------------------------------------------
