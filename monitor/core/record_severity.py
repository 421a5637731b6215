"""Severity of API records, catalog 6.2: recalls by class, shortages by status, approvals by
submission class (and a new ketamine or esketamine application), Federal Register documents by
type and agency, DailyMed listings. Pure; the tier scale and escalation are `monitor.core.tiers`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from monitor.core import api_records as records
from monitor.core.terms import match_terms
from monitor.core.tiers import Verdict, escalate, lower_tier

RECALL_CLASS_TIERS = {"class i": "T1", "class ii": "T2", "class iii": "T3"}


APPROVAL_CLASS_TIERS = {"EFFICACY": "T1", "REMS": "T1", "LABELING": "T2"}


#: A new application (ORIG) naming one of these is a new esketamine / arketamine product, e.g. a
#: generic esketamine (catalog 6.1 T1: "new approval").
NEW_PRODUCT_TERMS = (
    "esketamine",
    "s-ketamine",
    "(s)-ketamine",
    "arketamine",
    "r-ketamine",
    "(r)-ketamine",
    "spravato",
)


DEA = "drug enforcement administration"


#: Federal Register words that count as a term match besides the ketamine set.
FEDERAL_REGISTER_TERMS = ("telemedicine", "telehealth", "controlled substance", "schedule III")


#: The API's `type` ("Rule", "Proposed Rule", "Notice") and its filter codes, as filter codes.
FEDERAL_REGISTER_TYPES = {
    "RULE": "RULE",
    "PROPOSED RULE": "PRORULE",
    "PRORULE": "PRORULE",
    "NOTICE": "NOTICE",
    "PRESIDENTIAL DOCUMENT": "PRESDOCU",
    "PRESDOCU": "PRESDOCU",
}


PHARMACY = re.compile(r"\bpharmac(?:y|ies)\b", re.IGNORECASE)


def classify_record(
    *,
    source_tier: str,
    source_kind: str,
    kind: str,
    sections: Sequence[str],
    old_text: str,
    new_text: str,
) -> Verdict:
    """A record change ranked by the record's own fields (class, status, type …)."""
    old, new = records.parse_record_text(old_text), records.parse_record_text(new_text)
    if kind == "removed":
        return Verdict(source_tier, ("the record is no longer in the complete result set",))
    if kind == "changed" and sections and all(records.is_date_field(f) for f in sections):
        return Verdict("T5", (f"only dates changed ({', '.join(sections)}): kept, not alerted",))
    rule = RECORD_RULES.get(source_kind)
    if rule is None:
        tier, reasons = source_tier, [f"watched at {source_tier}"]
    else:
        tier, reasons = rule(kind, old, new, sections, source_tier)
    extra = []
    if source_kind == "openfda_recalls" and PHARMACY.search(new.get("recalling_firm", "")):
        extra.append("a pharmacy recalling firm")
    return escalate(tier, reasons, new_text or old_text, extra)


def _recall(
    kind: str, old: dict[str, str], new: dict[str, str], sections: Sequence[str], default: str
) -> tuple[str, list[str]]:
    label = new.get("classification", "")
    tier = RECALL_CLASS_TIERS.get(label.strip().lower(), default)
    if kind == "new":
        return tier, [f"new {label or 'unclassified'} recall: {tier}"]
    if "classification" in sections:
        before = old.get("classification", "none")
        return tier, [f"recall reclassified {before} → {label}: {tier}"]
    lowered = lower_tier(tier)
    return lowered, [f"{label} recall updated ({', '.join(sections)}): {lowered}"]


def _shortage(
    kind: str, old: dict[str, str], new: dict[str, str], sections: Sequence[str], default: str
) -> tuple[str, list[str]]:
    status = new.get("status", "")
    if kind == "new":
        if status.lower() == "current":
            return "T2", ["entered the drug shortage list (status Current): T2"]
        return "T4", [f"new shortage record (status {status or 'unknown'}): T4"]
    before = old.get("status", "")
    if "status" in sections and "current" in (before.lower(), status.lower()):
        return "T2", [f"shortage status {before or 'none'} → {status or 'none'}: T2"]
    return "T4", [f"shortage record updated ({', '.join(sections)}): T4"]


def _approval(
    kind: str, old: dict[str, str], new: dict[str, str], sections: Sequence[str], default: str
) -> tuple[str, list[str]]:
    code = new.get("submission_class_code", "").upper()
    what = f"{new.get('submission_type', '')} {code or 'unclassified'}".strip()
    if kind == "new" and new.get("submission_type", "").upper() == "ORIG":
        product = match_terms("\n".join(new.values()), NEW_PRODUCT_TERMS)
        if product:
            names = ", ".join(product)
            return "T1", [f"a new application ({what}) for {names}: a new product: T1"]
    if kind == "new" or "submission_status" in sections:
        tier = APPROVAL_CLASS_TIERS.get(code, default)
        status = new.get("submission_status", "")
        return tier, [f"{'new' if kind == 'new' else 'status ' + status} {what} submission: {tier}"]
    if "application_docs" in sections:
        return "T2", [f"new or changed letter/label document on the {what} submission: T2"]
    return "T4", [f"{what} submission record updated ({', '.join(sections)}): T4"]


def _federal_register(
    kind: str, old: dict[str, str], new: dict[str, str], sections: Sequence[str], default: str
) -> tuple[str, list[str]]:
    text = "\n".join(f"{k}: {v}" for k, v in new.items())
    doc_type = FEDERAL_REGISTER_TYPES.get(new.get("type", "").strip().upper(), "")
    terms = match_terms(text) + match_terms(text, FEDERAL_REGISTER_TERMS)
    by_dea = DEA in new.get("agencies", "").lower()
    if doc_type == "RULE" and by_dea and terms:
        tier, why = "T1", f"DEA final rule naming {', '.join(terms)}"
    elif doc_type in ("RULE", "PRORULE"):
        tier, why = "T2", f"{'final' if doc_type == 'RULE' else 'proposed'} rule"
    elif doc_type == "NOTICE":
        ketamine = match_terms(text)
        tier = "T2" if ketamine else "T3"
        why = f"notice naming {', '.join(ketamine)}" if ketamine else "notice"
    else:
        tier, why = default, f"{new.get('type') or 'untyped'} document"
    if kind == "new":
        return tier, [f"new Federal Register {why}: {tier}"]
    lowered = lower_tier(tier)
    return lowered, [f"Federal Register {why} updated ({', '.join(sections)}): {lowered}"]


def _dailymed_listing(
    kind: str, old: dict[str, str], new: dict[str, str], sections: Sequence[str], default: str
) -> tuple[str, list[str]]:
    if kind == "new":
        return "T3", ["a new label set id in the DailyMed search: T3"]
    return "T4", [f"DailyMed listing updated ({', '.join(sections)}): T4"]


RECORD_RULES = {
    "openfda_recalls": _recall,
    "openfda_shortages": _shortage,
    "openfda_drugsfda": _approval,
    "federal_register": _federal_register,
    "federal_register_inspection": _federal_register,
    "dailymed_spl": _dailymed_listing,
}
