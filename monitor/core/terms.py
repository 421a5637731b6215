"""Which ketamine / esketamine terms (and escalation context words) a text names.

Pure functions over strings. Terms match case-insensitively on whole words: a term may not be
preceded or followed by a letter or digit, so "ketamine-induced" and "(S)-ketamine" match while
"bketamine", "ketorolac" or "Eskata" do not. Matches are reported as canonical terms: the
catalog's spelling, lower case for words ("spravato", "ketamine hcl") and the official spelling
for identifiers ("NDA 211243", "503B", "O18YUO0I83"). A user's term that equals a built-in one
(ignoring case) takes the built-in spelling; any other user term is lower-cased.

Plurals: "ketamines" (likewise "esketamines", "arketamines") counts as "ketamine". It is still
about the molecule and no unrelated word is spelled that way, so a miss would cost more than the
match. "ketone(s)" is a different word and never matches.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

#: The special entry that stands for the whole built-in ketamine set in a source's `terms`.
KETAMINE_TOKEN = "@ketamine"

#: Built-in ketamine / esketamine set (source catalog, section 6.3), in canonical form.
KETAMINE_TERMS: tuple[str, ...] = (
    "ketamine",
    "ketamine hydrochloride",
    "ketamine hcl",
    "(±)-ketamine",
    "racemic ketamine",
    "esketamine",
    "esketamine hydrochloride",
    "s-ketamine",
    "(s)-ketamine",
    "arketamine",
    "r-ketamine",
    "(r)-ketamine",
    "spravato",
    "ketalar",
    "NDA 211243",
    "NDA 016812",
    "211243",
    "016812",
    "50458-028",
    "42023-113",
    "O18YUO0I83",
    "d81a6a79-a74a-44b7-822c-0dfa3036eaed",
    "14e8f864-8b8a-4e7e-8439-e510d3107063",
)

#: Words that raise a ketamine item one tier (catalog 6.1, escalation rules).
CONTEXT_TERMS: tuple[str, ...] = (
    "compounded",
    "compounding",
    "compounder",
    "503A",
    "503B",
    "outsourcing facility",
    "telehealth",
    "telemedicine",
    "home use",
    "at-home",
    "direct-to-consumer",
)

_BUILT_IN_SPELLING = {term.lower(): term for term in (*KETAMINE_TERMS, *CONTEXT_TERMS)}
#: Spellings a term also goes by, as regex fragments (already case-insensitive).
_ALTERNATE_FORMS: dict[str, tuple[str, ...]] = {
    "compounder": (r"compounders",),
    "outsourcing facility": (r"outsourcing\s+facilities",),
    "direct-to-consumer": (r"direct\s+to\s+consumer",),
}
_NOT_ALNUM = r"(?<![^\W_])"  # not preceded by a letter or digit
_NOT_ALNUM_AFTER = r"(?![^\W_])"  # not followed by a letter or digit
_HYPHEN = "[-\u2010\u2011\u2012\u2013]"
_PLUS_MINUS = r"(?:±|\+/-|\+-)"


def expand_terms(terms: Iterable[str]) -> tuple[str, ...]:
    """Canonical terms, with "@ketamine" replaced by the built-in set; order kept, no repeats."""
    expanded: list[str] = []
    for term in terms:
        key = " ".join(term.split()).lower()
        if key == KETAMINE_TOKEN:
            expanded.extend(KETAMINE_TERMS)
        elif key.startswith("@"):
            raise ValueError(f"unknown term set {term!r}: the only one is {KETAMINE_TOKEN!r}")
        elif key:
            expanded.append(_BUILT_IN_SPELLING.get(key, key))
    return tuple(dict.fromkeys(expanded))


def match_terms(text: str, terms: Iterable[str] = KETAMINE_TERMS) -> list[str]:
    """The canonical terms `text` names, sorted and without repeats."""
    return list(_named(text, expand_terms(terms)))


@lru_cache(maxsize=8)
def _named(text: str, terms: tuple[str, ...]) -> tuple[str, ...]:
    """`match_terms`, remembered for the last few texts: a change's severity and its own list of
    terms scan the same changed lines one after the other (~1 % of a changed crawl each)."""
    matchers = _matchers(terms)
    if not matchers or not _any_of(matchers).search(text):
        return ()  # most lines name no term: one scan instead of one per term
    return tuple(sorted({term for term, pattern in matchers if pattern.search(text)}))


def weight(text: str) -> int:
    """How much a line matters to a ketamine watcher: 2 per ketamine term, 1 per context word.

    Summaries quote the changed line that weighs most.
    """
    return 2 * len(match_terms(text)) + len(match_context(text))


def match_context(text: str) -> list[str]:
    """The escalation context words (compounded, telehealth, 503B …) `text` names."""
    return match_terms(text, CONTEXT_TERMS)


@lru_cache(maxsize=64)
def _matchers(terms: tuple[str, ...]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    """One compiled pattern per term, built once per term set.

    Each term gets its own pattern (rather than one alternation) so overlapping terms are all
    reported: "ketamine hydrochloride" names both "ketamine" and "ketamine hydrochloride".
    """
    return tuple((term, re.compile(_term_regex(term), re.IGNORECASE)) for term in terms)


@lru_cache(maxsize=64)
def _any_of(matchers: tuple[tuple[str, re.Pattern[str]], ...]) -> re.Pattern[str]:
    """One pattern that matches wherever any of `matchers` does."""
    return re.compile("|".join(f"(?:{pattern.pattern})" for _, pattern in matchers), re.IGNORECASE)


def _term_regex(term: str) -> str:
    """Whole-word regex for one canonical term, tolerant of spacing and hyphen variants."""
    forms = [_literal_regex(term), *_ALTERNATE_FORMS.get(term, ())]
    plural = "s?" if term.endswith("ketamine") else ""
    return f"{_NOT_ALNUM}(?:{'|'.join(forms)}){plural}{_NOT_ALNUM_AFTER}"


def _literal_regex(term: str) -> str:
    """Regex for the term as written: any run of spaces, any hyphen, ± as "+/-" too.

    "NDA 211243" also matches "NDA #211243" and openFDA's "NDA211243".
    """
    if term.lower().startswith("nda "):
        return r"nda[\s#]*" + re.escape(term[4:])
    parts: list[str] = []
    for char in term:
        if char == " ":
            parts.append(r"\s+")
        elif char == "-":
            parts.append(_HYPHEN)
        elif char == "±":
            parts.append(_PLUS_MINUS)
        else:
            parts.append(re.escape(char))
    return "".join(parts)
