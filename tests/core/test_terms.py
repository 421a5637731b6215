"""Term matching: the ketamine words that must trigger an alert, and look-alikes that must not."""

from __future__ import annotations

import pytest

from monitor.core.terms import (
    CONTEXT_TERMS,
    KETAMINE_TERMS,
    expand_terms,
    match_context,
    match_terms,
    weight,
)


@pytest.mark.parametrize(
    ("text", "terms"),
    [
        ("Spravato (esketamine) nasal spray", ["esketamine", "spravato"]),
        ("SPRAVATO", ["spravato"]),
        ("compounded KETAMINE products", ["ketamine"]),
        ("ketamine-induced cystitis", ["ketamine"]),
        ("risks of ketamine.", ["ketamine"]),
        ("ketamine's risks", ["ketamine"]),
        ("compounded ketamines", ["ketamine"]),
        ("(S)-ketamine", ["(s)-ketamine", "ketamine"]),
        ("S-ketamine", ["ketamine", "s-ketamine"]),
        ("S\u2011ketamine (non-breaking hyphen)", ["ketamine", "s-ketamine"]),
        ("(R)-ketamine and R-ketamine", ["(r)-ketamine", "ketamine", "r-ketamine"]),
        ("(±)-ketamine", ["(±)-ketamine", "ketamine"]),
        ("(+/-)-ketamine", ["(±)-ketamine", "ketamine"]),
        ("racemic  ketamine", ["ketamine", "racemic ketamine"]),
        ("Ketamine Hydrochloride Injection", ["ketamine", "ketamine hydrochloride"]),
        ("Ketamine HCl 50 mg/mL", ["ketamine", "ketamine hcl"]),
        ("esketamine hydrochloride", ["esketamine", "esketamine hydrochloride"]),
        ("arketamine trial", ["arketamine"]),
        ("Ketalar (ketamine hydrochloride)", ["ketalar", "ketamine", "ketamine hydrochloride"]),
        ("NDA 211243", ["211243", "NDA 211243"]),
        ("NDA #211243", ["211243", "NDA 211243"]),
        ("application_number NDA211243", ["NDA 211243"]),
        ("NDA 016812 (Ketalar)", ["016812", "NDA 016812", "ketalar"]),
        ("NDC 50458-028-02", ["50458-028"]),
        ("NDC 42023-113-10", ["42023-113"]),
        ("UNII: o18yuo0i83", ["O18YUO0I83"]),
        (
            "setid=D81A6A79-A74A-44B7-822C-0DFA3036EAED",
            ["d81a6a79-a74a-44b7-822c-0dfa3036eaed"],
        ),
        ("set id 14e8f864-8b8a-4e7e-8439-e510d3107063", ["14e8f864-8b8a-4e7e-8439-e510d3107063"]),
    ],
)
def test_ketamine_terms_are_found(text: str, terms: list[str]) -> None:
    assert match_terms(text) == terms


@pytest.mark.parametrize(
    "text",
    [
        "ketorolac tromethamine injection",
        "ketoconazole cream",
        "ketoprofen gel",
        "ketotifen eye drops",
        "ketone bodies",
        "urine ketones",
        "Eskata (hydrogen peroxide) topical solution",
        "bketamine",
        "ketaminergic",
        "esketaminex",
        "ket",
        "NDA 2112430",
        "50458-0281",
        "1211243",
        "211243s019lbl.pdf",
        "undeclared egg allergen in onion soup mix",
    ],
)
def test_look_alikes_do_not_match(text: str) -> None:
    assert match_terms(text) == []


@pytest.mark.parametrize(
    ("terms", "expanded"),
    [
        (["@ketamine"], KETAMINE_TERMS),
        (["@KETAMINE", "Spravato"], KETAMINE_TERMS),
        (["Remdesivir", " sulfite  "], ("remdesivir", "sulfite")),
        (["nda 211243", "503b"], ("NDA 211243", "503B")),
        (["ketamine", "@ketamine", ""], KETAMINE_TERMS),
    ],
)
def test_expand_terms(terms: list[str], expanded: tuple[str, ...]) -> None:
    assert expand_terms(terms) == expanded


def test_unknown_term_set_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown term set '@opioids'"):
        expand_terms(["@opioids"])


@pytest.mark.parametrize(
    ("text", "terms", "found"),
    [
        ("Compounded remdesivir", ["remdesivir"], ["remdesivir"]),
        ("Compounded remdesivir", ["@ketamine"], []),
        ("Spravato REMS and remdesivir", ["@ketamine", "remdesivir"], ["remdesivir", "spravato"]),
    ],
)
def test_custom_term_lists(text: str, terms: list[str], found: list[str]) -> None:
    assert match_terms(text, terms) == found


@pytest.mark.parametrize(
    ("text", "context"),
    [
        ("compounded ketamine", ["compounded"]),
        ("human drug compounding", ["compounding"]),
        ("a compounder; several compounders", ["compounder"]),
        (
            "503A pharmacies and 503B outsourcing facilities",
            ["503A", "503B", "outsourcing facility"],
        ),
        ("an outsourcing facility", ["outsourcing facility"]),
        ("telehealth and telemedicine platforms", ["telehealth", "telemedicine"]),
        ("never dispensed for home use", ["home use"]),
        ("at-home treatment", ["at-home"]),
        ("direct-to-consumer and direct to consumer ads", ["direct-to-consumer"]),
        ("taken at home", []),
        ("compound interest", []),
        ("5030A", []),
        ("FDA-approved nasal spray", []),
    ],
)
def test_context_terms(text: str, context: list[str]) -> None:
    assert match_context(text) == context


def test_context_terms_are_not_ketamine_terms() -> None:
    assert not set(CONTEXT_TERMS) & set(KETAMINE_TERMS)
    assert match_terms("compounded telehealth 503B") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Contact us by email.", 0),
        ("Outsourcing facility inspections resumed.", 1),  # a context word only
        ("Spravato REMS was modified.", 2),  # one ketamine term
        ("Do not use compounded ketamine at home.", 3),  # a term and a context word
        ("Ketalar (ketamine) and Spravato (esketamine)", 8),  # four ketamine terms
    ],
)
def test_weight_ranks_lines_for_summaries(text: str, expected: int) -> None:
    assert weight(text) == expected
