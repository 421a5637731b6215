"""Severity tiers T1 (critical) … T5 (noise) for a change, with the reasons that set them.

The rules come from the source catalog, section 6: a source's own tier is the starting point;
FDA document types named in a feed item's URL path and the audience's core exposure (ketamine
named together with compounding, telehealth or home use) move it; a diff that only touches dates
is noise (T5: kept, never alerted). Pure: the caller passes everything in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from monitor.normalize import looks_like_date_line
from monitor.terms import match_context, match_terms

TIERS = ("T1", "T2", "T3", "T4", "T5")

#: URL path fragments of FDA document types that are critical when they name ketamine.
CRITICAL_PATHS = {
    "/human-drug-compounding/": "an FDA compounding risk alert",
    "/drug-safety-and-availability/": "an FDA drug safety communication",
    "/warning-letters/": "an FDA warning letter",
}


@dataclass(frozen=True)
class Verdict:
    tier: str
    reasons: tuple[str, ...]


def raise_tier(tier: str, steps: int = 1) -> str:
    """One tier more severe (T3 → T2); T1 stays T1."""
    return TIERS[max(0, TIERS.index(tier) - steps)]


def only_dates_changed(added: Sequence[str], removed: Sequence[str]) -> bool:
    lines = [*added, *removed]
    return bool(lines) and all(looks_like_date_line(line) for line in lines)


def classify(
    *,
    source_tier: str,
    source_title: str,
    kind: str,
    url: str,
    added: Sequence[str],
    removed: Sequence[str],
) -> Verdict:
    """The tier of one change. `added`/`removed` are the changed lines (all lines for `new`)."""
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
