"""Label sections on real SPL XML and openFDA JSON, DailyMed version listings, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import cli
from monitor.cli.labels import label_sections
from monitor.core import labels, spl
from tests.support.api_history import first_result
from tests.support.paths import DAILYMED, OPENFDA

PLR_HEAD = ["48780-1", "43683-2", "34067-9", "34068-7", "43678-2", "34070-3", "43685-7"]
PLR_BODY = ["34084-4", "34073-7", "43684-0", "34088-5", "34089-3", "34090-1", "43680-8"]


@pytest.mark.parametrize(
    ("name", "set_id", "version", "codes", "all_sections"),
    [
        (
            "spl-humira-adalimumab-2013-09-30.xml",
            "608d4f0d-b19f-46d3-749a-7159aa5f933d",
            "1560",
            ["48780-1", "34066-1", *PLR_HEAD[1:], *PLR_BODY, "34092-7", "34093-5", "34069-5",
             "34076-0", "42231-1", "51945-4"],
            73,
        ),
        (
            "spl-lipitor-orig.xml",
            "c6e131fe-e7df-4876-83f7-9156fc4e8228",
            "11",
            [*PLR_HEAD, *PLR_BODY, "34092-7", "34093-5", "34069-5", "34076-0", "42229-5",
             "42230-3", *["51945-4"] * 18],
            110,
        ),
        (
            "spl-viagra-64f8040f.xml",
            "0b0be196-0c62-461c-94f4-9a35339b4501",
            "20",
            [*PLR_HEAD, *PLR_BODY, "34092-7", "34069-5", "34076-0", "42229-5", "42230-3",
             *["51945-4"] * 3],
            105,
        ),
        (
            "spl-rogaine-1b5e2860_v1-from-zip.xml",
            "1b5e2860-6855-4a65-8bbc-e064172a1adf",
            "1",
            ["48780-1", "42229-5", "55106-9", "55105-1", "34067-9", "34071-1", "34068-7",
             "44425-7", "51727-6", "53413-1", "42229-5", "51945-4"],
            19,
        ),
        (
            "spl-no-title.xml",
            "0027b8a3-73bf-4005-a7e3-b035f451a861",
            "1",
            ["48780-1", "34066-1", "34089-3", "34090-1", "34067-9", "34070-3", "34071-1",
             "42232-9", "34084-4", "34088-5", "34068-7", "34069-5", "51945-4"],
            44,
        ),
    ],
)  # fmt: skip
def test_real_spl_top_level_sections_by_loinc_code(
    name: str, set_id: str, version: str, codes: list[str], all_sections: int
) -> None:
    label = spl.parse_spl((DAILYMED / name).read_bytes())

    assert (label.set_id, label.version) == (set_id, version)
    assert [section.code for section in label.sections] == codes
    # Every <section> of the document is either a top-level block or nested inside one.
    assert len(label.sections) + sum(s.subsections for s in label.sections) == all_sections
    assert all(s.characters > 0 for s in label.sections)


def test_humira_sections_keep_their_titles_text_and_nested_subsections() -> None:
    label = spl.parse_spl((DAILYMED / "spl-humira-adalimumab-2013-09-30.xml").read_bytes())
    by_code = {s.code: s for s in label.sections}

    boxed = by_code["34066-1"]
    assert boxed.title == "WARNING: SERIOUS INFECTIONS AND MALIGNANCY"
    assert boxed.header == "BOXED WARNING [34066-1]"
    assert any("Lymphoma and other malignancies" in line for line in boxed.lines)
    warnings = by_code["43685-7"]
    assert (warnings.title, warnings.subsections) == ("5 WARNINGS AND PRECAUTIONS", 11)
    assert "5.1 Serious Infections" in warnings.lines  # the subsection title, inside 43685-7
    assert by_code["34070-3"].lines == ("4 CONTRAINDICATIONS", "None.", "None (4)")
    assert "NDC 0074-3799" in by_code["48780-1"].lines
    text = label.text()
    assert "\n## BOXED WARNING [34066-1]\nWARNING: SERIOUS INFECTIONS AND MALIGNANCY\n" in text
    assert labels.section_text(text, "recent_major_changes").startswith(
        "Indications and Usage, Ulcerative Colitis (1.6)"
    )


def test_spl_without_titles_falls_back_to_the_loinc_name() -> None:
    label = spl.parse_spl((DAILYMED / "spl-no-title.xml").read_bytes())

    assert label.title == ""
    boxed = label.sections[1]
    assert (boxed.code, boxed.title, boxed.header) == (
        "34066-1",
        "BOXED WARNING",
        "BOXED WARNING [34066-1]",
    )


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>not a label</body></html>",
        b'<?xml version="1.0"?><document xmlns="urn:hl7-org:v3"><title>x',
        b"",
    ],
)
def test_not_an_spl_is_a_label_error(body: bytes) -> None:
    with pytest.raises(labels.LabelError):
        spl.parse_spl(body)


def test_external_entities_are_never_resolved(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT", encoding="utf-8")
    body = (
        f'<?xml version="1.0"?><!DOCTYPE document [<!ENTITY e SYSTEM "{secret.as_uri()}">]>'
        '<document xmlns="urn:hl7-org:v3"><title>&e;</title><component><structuredBody>'
        '<component><section><code code="34066-1"/><text><paragraph>&e;</paragraph></text>'
        "</section></component></structuredBody></component></document>"
    ).encode()

    label = spl.parse_spl(body)

    assert "TOP-SECRET" not in label.text()
    assert "TOP-SECRET" not in label.title


def test_openfda_label_sections_by_field_with_sorted_openfda_arrays() -> None:
    record = first_result(OPENFDA / "label-first-record-2018-03-08.json")
    label = labels.parse_openfda_label(record)

    codes = [s.code for s in label.sections]
    assert codes[:3] == [
        "spl_product_data_elements",
        "indications_and_usage",
        "dosage_and_administration",
    ]
    assert "openfda.spl_id" not in codes  # it repeats the document id
    ndc = next(s for s in label.sections if s.code == "openfda.package_ndc")
    assert ndc.lines == tuple(sorted(record["openfda"]["package_ndc"]))
    shuffled = {**record, "openfda": {**record["openfda"], "package_ndc": ndc.lines[::-1]}}
    assert labels.parse_openfda_label(shuffled).text() == label.text()


def test_openfda_table_markup_and_revision_dates_are_not_label_text() -> None:
    record = first_result(OPENFDA / "SYNTHETIC-spravato-label-v1.json")
    record["adverse_reactions_table"] = [
        "<table><tr><th>Reaction</th><th>SPRAVATO</th></tr><tr><td>Dissociation</td>"
        "<td>41%</td></tr></table>"
    ]
    text = labels.openfda_label_text(record)

    assert "## adverse_reactions_table\nReaction | SPRAVATO\nDissociation | 41%" in text
    assert "<td>" not in text
    assert "Revised" not in text  # "Revised: 1/2025" in the package label is dropped


@pytest.mark.parametrize(
    ("name", "count", "first"),
    [
        (
            "dailymed-v2-spls-history-vitrakvi-9525f887.json",
            2,
            ("9525f887-a055-4e33-8e92-898d42828cd1", 3, "May 02, 2019"),
        ),
        (
            "dailymed-v2-spls-index-page1-2021-05-12.xml",
            100,
            ("025c0c24-ac0f-42ed-a17c-fd70f1efd38a", 1, "May 12, 2021"),
        ),
    ],
)
def test_dailymed_history_and_index_parse_into_versions(
    name: str, count: int, first: tuple[str, int, str]
) -> None:
    versions = spl.parse_dailymed_versions((DAILYMED / name).read_bytes())

    assert len(versions) == count
    assert (versions[0].setid, versions[0].spl_version, versions[0].published_date) == first
    if count == 2:
        assert [v.spl_version for v in versions] == [3, 1]
        assert versions[0].title.startswith("VITRAKVI (LAROTRECTINIB) CAPSULE")
    else:
        assert max(v.spl_version for v in versions) == 5
        assert len({v.setid for v in versions}) == 100


def test_label_sections_command_prints_one_json_line_per_section(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(label_sections, [str(DAILYMED / "spl-humira-adalimumab-2013-09-30.xml")])

    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert len(lines) == 21
    assert lines[1] == {
        "code": "34066-1",
        "title": "WARNING: SERIOUS INFECTIONS AND MALIGNANCY",
        "characters": lines[1]["characters"],
        "subsections": 0,
    }
    assert lines[1]["characters"] > 3000

    openfda = runner.invoke(label_sections, [str(OPENFDA / "label-first-record-2018-03-08.json")])
    assert openfda.exit_code == 0
    assert json.loads(openfda.output.splitlines()[0])["code"] == "spl_product_data_elements"

    bad = tmp_path / "history.json"
    bad.write_bytes((DAILYMED / "dailymed-v2-spls-history-vitrakvi-9525f887.json").read_bytes())
    failed = runner.invoke(cli, ["label-sections", str(bad)])
    assert failed.exit_code == 2
    assert failed.output.startswith(f"fdawatch: error: {bad}: ")
    assert "Pass a DailyMed SPL XML" in failed.output and len(failed.output.splitlines()) == 1
