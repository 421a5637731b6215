"""sources.toml loading: the shipped catalog loads, and every bad entry is named precisely."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from monitor.errors import SourcesError
from monitor.sources import SourceTable, load_sources, select
from tests.support.paths import ROOT


def test_shipped_sources_load_with_the_catalog_sources() -> None:
    sources = load_sources(ROOT / "sources.toml")
    assert {
        "fda_compounding_risk_alerts",
        "fda_ketamine_oral_alert",
        "fda_ketamine_nasal_alert",
        "fda_spravato_rems",
        "fda_medwatch_rss",
        "fda_press_releases_rss",
        "fda_recalls_rss",
        "fda_drugs_whats_new_rss",
    } <= set(sources)
    assert all(s.url.startswith("https://") for s in sources.values())
    assert sources["fda_spravato_rems"].tier == "T1"


GOOD = 'id = "x_page"\nkind = "page"\nurl = "https://www.fda.gov/x"\n'


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('kind = "page"\nurl = "https://www.fda.gov/x"\n', "field 'id' is missing"),
        (
            'id = "Bad Id"\nkind = "page"\nurl = "https://www.fda.gov/x"\n',
            "field 'id' = 'Bad Id' is invalid",
        ),
        (
            'id = "x"\nkind = "pdf"\nurl = "https://www.fda.gov/x"\n',
            "('x'): field 'kind' = 'pdf' is invalid",
        ),
        (
            'id = "x"\nkind = "page"\nurl = "ftp://fda.gov/x"\n',
            "field 'url' = 'ftp://fda.gov/x' is not an http(s) URL",
        ),
        (GOOD + 'interval = "often"\n', "field 'interval' = 'often' is invalid"),
        (GOOD + 'tier = "T9"\n', "field 'tier' = 'T9' is invalid"),
        (GOOD + 'terms = "ketamine"\n', "field 'terms' must be a list"),
        (GOOD + 'selectr = "main"\n', "unknown field 'selectr'"),
        (GOOD + 'cron = "0 6 * *"\n', "field 'cron' = '0 6 * *' is invalid"),
        (GOOD + "failure_threshold = 0\n", "field 'failure_threshold'"),
        (
            GOOD + 'terms = ["@esketamine"]\n',
            "field 'terms' is invalid (unknown term set '@esketamine': the only one is "
            "'@ketamine')",
        ),
        (
            'id = "fr_pi"\nkind = "federal_register_inspection"\n'
            'url = "https://www.federalregister.gov/api/v1/public-inspection-documents/current.json"\n',
            "('fr_pi'): field 'terms' is missing: a federal_register_inspection source lists every "
            'filing of the day, so name the words to keep, e.g. terms = ["@ketamine", '
            '"telemedicine"]',
        ),
    ],
)
def test_bad_entry_names_the_entry_and_the_field(tmp_path: Path, entry: str, message: str) -> None:
    path = tmp_path / "sources.toml"
    path.write_text(f"[[source]]\n{GOOD}\n[[source]]\n{entry}", encoding="utf-8")
    with pytest.raises(SourcesError) as raised:
        load_sources(path)
    assert "[[source]] #2" in str(raised.value)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("field", "message"),
    [
        (
            'interval = "0s"',
            "field 'interval' = '0s' is too short: the minimum is 1m (each check is a request to "
            "FDA's servers, a public service); use e.g. '30m' or '6h'",
        ),
        ('interval = "0m"', "field 'interval' = '0m' is too short: the minimum is 1m"),
        ('interval = "30s"', "field 'interval' = '30s' is too short: the minimum is 1m"),
        ('interval = "59 s"', "field 'interval' = '59 s' is too short"),
        (
            'interval = "99999999999d"',
            "field 'interval' = '99999999999d' is too long: the maximum is 365d; for a rare check "
            "use a cron such as '0 6 1 * *' (monthly)",
        ),
        ('interval = "366d"', "field 'interval' = '366d' is too long"),
        (
            'interval = "1d"\ncron = "0 6 * * *"',
            "has both 'interval' = '1d' and 'cron' = '0 6 * * *'; keep one: remove 'interval' to "
            "keep the schedule the daemon followed (cron), or remove 'cron'",
        ),
        (
            'selector = "::bogus(("',
            "field 'selector' = '::bogus((' is not a CSS selector the page spider can use "
            "(Expected an argument, got <DELIM '(' at 8>); e.g. 'main', 'div#content' or "
            "'article.main-content'",
        ),
        ('selector = "p::first-line"', "(unknown pseudo-element ::first-line)"),
        ('selector = "a::attr(1)"', "(::attr() is not ::attr(name))"),
    ],
)
def test_intervals_out_of_bounds_both_schedules_and_bad_selectors_are_refused(
    tmp_path: Path, field: str, message: str
) -> None:
    path = tmp_path / "sources.toml"
    path.write_text(f"[[source]]\n{GOOD}{field}\n", encoding="utf-8")
    with pytest.raises(SourcesError) as raised:
        load_sources(path)
    assert str(raised.value).startswith(f"{path}: [[source]] #1 ('x_page'): ")
    assert message in str(raised.value)


@pytest.mark.parametrize("interval", ["1m", "60s", "90s", "6h", "365d"])
def test_intervals_from_one_minute_to_a_year_load(tmp_path: Path, interval: str) -> None:
    path = tmp_path / "sources.toml"
    path.write_text(f'[[source]]\n{GOOD}interval = "{interval}"\n', encoding="utf-8")
    assert load_sources(path)["x_page"].interval == interval


@pytest.mark.parametrize(
    "selector",
    [
        "main", "body", "::bogus((", "::bogus", "a::attr(href)", "a::attr('href')",
        "a::attr(href, x)", "a::attr(1)", "::attr()", "a::text", "a::text()", "p::first-line",
        "main, #content", "div > p:nth-child(2n+1)", ":nth-child(", "p:contains(x)", "a:checked",
        "main::text::text", "[", "a:not(.x)", "div.main-content article", "#main-content",
    ],
)  # fmt: skip
def test_the_selector_check_agrees_with_the_page_spiders_parsel(selector: str) -> None:
    from parsel import Selector

    from monitor.sources import css_selector_problem

    try:
        Selector(text="<main><a href='x'>t</a></main>").css(selector)
        parsel_accepts = True
    except Exception:
        parsel_accepts = False
    assert (css_selector_problem(selector) is None) == parsel_accepts


def test_an_unreadable_sources_file_is_one_error_naming_it(tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes(f'[[source]]\n{GOOD}title = "Información"\n'.encode("latin-1"))
    with pytest.raises(SourcesError) as raised:
        load_sources(latin1)
    assert str(raised.value) == (
        f"{latin1}: not UTF-8 text (line 5 has the byte 0xf3); save it as UTF-8"
    )
    with pytest.raises(SourcesError) as raised:
        load_sources(tmp_path)
    assert str(raised.value) == (
        f"{tmp_path}: is a folder, not a file; pass --sources PATH/TO/sources.toml or set "
        "FDAWATCH_SOURCES to the file"
    )


def test_duplicate_ids_and_broken_toml_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "sources.toml"
    path.write_text(f"[[source]]\n{GOOD}\n[[source]]\n{GOOD}", encoding="utf-8")
    with pytest.raises(SourcesError, match="'x_page' is used twice"):
        load_sources(path)
    path.write_text("[[source]\n", encoding="utf-8")
    with pytest.raises(SourcesError, match="not valid TOML"):
        load_sources(path)
    with pytest.raises(SourcesError, match="no such file"):
        load_sources(tmp_path / "missing.toml")


def test_select_rejects_unknown_ids_and_lists_the_known_ones() -> None:
    sources = load_sources(ROOT / "sources.toml")
    assert [s.id for s in select(sources, ["fda_spravato_rems"])] == ["fda_spravato_rems"]
    with pytest.raises(SourcesError, match=r"unknown source id 'nope'.*fda_spravato_rems"):
        select(sources, ["nope"])


def test_shipped_sources_include_the_label_and_regulatory_apis() -> None:
    sources = load_sources(ROOT / "sources.toml")
    kinds = {s.kind for s in sources.values()}
    assert {
        "openfda_label",
        "openfda_recalls",
        "openfda_shortages",
        "openfda_drugsfda",
        "dailymed_spl",
        "federal_register",
    } <= kinds
    spravato = sources["openfda_spravato_label"]
    assert spravato.url == (
        'https://api.fda.gov/drug/label.json?search=set_id:"d81a6a79-a74a-44b7-822c-0dfa3036eaed"'
    )
    assert "api_key" not in "".join(s.url for s in sources.values())


def test_a_dailymed_source_must_watch_a_history_or_a_search(tmp_path: Path) -> None:
    path = tmp_path / "sources.toml"
    path.write_text(
        '[[source]]\nid = "dm"\nkind = "dailymed_spl"\n'
        'url = "https://dailymed.nlm.nih.gov/dailymed/drugInfo.cfm?setid=x"\n',
        encoding="utf-8",
    )
    with pytest.raises(SourcesError, match=r"\('dm'\): field 'url' = .*spls/SETID/history\.json"):
        load_sources(path)


def test_scrapy_shares_the_source_table_instead_of_copying_it() -> None:
    """Every crawler copies its settings; a thousand sources are shared, not deep-copied."""
    from scrapy.settings import Settings

    table = SourceTable(load_sources(ROOT / "sources.toml"))
    settings = Settings()
    settings.set("FDAWATCH_SOURCES", table, priority="cmdline")
    copied = settings.copy()
    assert copied["FDAWATCH_SOURCES"] is table
    assert dict(copied.getdict("FDAWATCH_SOURCES")) == dict(table)


def test_shipped_sources_carry_the_checked_urls_and_queries() -> None:
    """The fixes of the live-sources check: slugs, queries that also match esketamine / labels
    with an empty openfda block, and the sources that were missing."""
    sources = load_sources(ROOT / "sources.toml")
    base = "https://www.fda.gov/drugs/human-drug-compounding/"

    assert sources["fda_503a_bulks"].url == (
        base + "bulk-drug-substances-used-compounding-under-section-503a-fdc-act"
    )
    assert sources["fda_503b_bulks"].url == (
        base + "bulk-drug-substances-used-compounding-under-section-503b-fdc-act"
    )
    assert sources["openfda_ketamine_recalls"].url == (
        "https://api.fda.gov/drug/enforcement.json?search=product_description:"
        "(ketamine+OR+esketamine+OR+spravato+OR+ketalar)&sort=report_date:desc&limit=100"
    )
    assert "+OR+spl_product_data_elements:ketamine&" in sources["openfda_ketamine_labels"].url
    assert "+OR+spl_product_data_elements:esketamine&" in sources["openfda_esketamine_labels"].url
    assert {
        "fda_drug_safety_communications": "page",
        "fda_compounding_qa": "page",
        "fda_telehealth_compounded_promotion": "page",
        "fda_compounding_actions": "page",
        "fda_registered_outsourcing_facilities": "page",
        "fda_bulks_significant_safety_risks": "page",
        "dea_telemedicine": "page",
        "federal_register_public_inspection": "federal_register_inspection",
        "openfda_esketamine_drugsfda": "openfda_drugsfda",
        "openfda_ketamine_drugsfda": "openfda_drugsfda",
        "fda_warning_letters_ketamine": "fda_warning_letters",
        "fda_warning_letters_compounded": "fda_warning_letters",
        "fda_warning_letters_telehealth": "fda_warning_letters",
    }.items() <= {s.id: s.kind for s in sources.values()}.items()
    assert 'products.active_ingredients.name:"ESKETAMINE+HYDROCHLORIDE"' in (
        sources["openfda_esketamine_drugsfda"].url
    )
    assert all("search_api_fulltext=" in s.url for s in sources.values()
               if s.kind == "fda_warning_letters")  # fmt: skip
    assert all(s.notes for s in sources.values())  # each says where its URL was confirmed


def test_sources_toml_comments_point_nowhere_outside_the_repository() -> None:
    text = (ROOT / "sources.toml").read_text(encoding="utf-8")

    assert "../" not in text and "/work/" not in text
    assert not re.search(r"\bids? \d{6,}", text)
