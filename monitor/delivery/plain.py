"""Severity in plain language: what T1–T5 mean to a clinic, and the stored reasons as sentences.

`monitor.core.severity` writes terse reasons for engineers and tests ("raised one tier: names
ketamine with at-home"); emails and the site show them as sentences a compliance officer can
repeat. Unknown reasons are shown as they are, with a capital letter and a full stop.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import urlsplit

#: What each tier means for a clinic, shown in every email's legend and on the site.
TIER_MEANINGS = {
    "T1": "Critical: FDA rules or enforcement that can change how your clinic must operate "
    "(REMS requirements, warning letters naming ketamine). Read today.",
    "T2": "High: an FDA safety alert, guidance or label change about compounded ketamine or "
    "esketamine. Read this week.",
    "T3": "Medium: related FDA news and lists worth knowing about. No action expected.",
    "T4": "Low: background changes kept for the record.",
    "T5": "Noise: only dates or page layout changed. Kept, never emailed.",
}
TIER_NAMES = {"T1": "critical", "T2": "high", "T3": "medium", "T4": "low", "T5": "noise"}

_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"^(?P<source>.+): watched at (?P<tier>T\d)$"),
        "Every change on {source} is rated at least {tier} ({name}).",
    ),
    (
        re.compile(r"^raised one tier: names (?P<terms>.+) with (?P<context>.+)$"),
        "Raised one level because the changed text names {terms} together with {context}.",
    ),
    (
        re.compile(r"^new item is (?P<what>.+) naming (?P<terms>.+)$"),
        "Critical because the new item is {what} naming {terms}.",
    ),
    (
        re.compile(r"^(?P<section>.+) changed: (?P<tier>T\d)$"),
        "The label section {section} changed; changes there are rated {tier} ({name}).",
    ),
    (
        re.compile(r"^the changed text concerns the REMS: T1$"),
        "Critical because the changed text concerns the REMS, whose requirements your clinic "
        "must meet.",
    ),
)


def tier_sentence(tier: str) -> str:
    """`Critical: FDA rules or enforcement …`, the tier's meaning for a clinic."""
    return TIER_MEANINGS.get(tier, f"{tier}: a tier fdawatch does not know.")


def reason_sentence(reason: str) -> str:
    """One stored severity reason as a sentence."""
    text = reason.strip()
    for pattern, template in _RULES:
        match = pattern.match(text)
        if match:
            fields = match.groupdict()
            name = TIER_NAMES.get(fields.get("tier", ""), "")
            return template.format(name=name, **fields)
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def reason_sentences(reasons: Sequence[str]) -> list[str]:
    return [sentence for sentence in map(reason_sentence, reasons) if sentence]


def open_label(url: str | None) -> str:
    """`Open on fda.gov` for an FDA page, else `Open the source page`."""
    host = (urlsplit(url).hostname or "") if url else ""
    return (
        "Open on fda.gov"
        if host == "fda.gov" or host.endswith(".fda.gov")
        else ("Open the source page")
    )
