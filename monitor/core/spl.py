"""DailyMed SPL XML: its sections by LOINC code, and DailyMed's version lists.

SPL XML is parsed with entities, DTDs and the network switched off, so a hostile document cannot
read files or reach out. The DailyMed spider reads a label's version and title with `parse_spl`
and a set id's versions with `parse_dailymed_versions`; `monitor.core.labels` turns a parsed
label into the canonical text.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from lxml import etree

from monitor.core.label_model import SPACES, Label, Section, clean_lines, scalar
from monitor.core.normalize import XML_DECLARATION, html_to_text
from monitor.errors import LabelError

NDC_SYSTEM = "2.16.840.1.113883.6.69"


#: LOINC section code → (openFDA field name, stable header name), in prescribing-info order.
#: The field name is the section's identity for severity, whichever source the label came from.
LOINC_SECTIONS: dict[str, tuple[str, str]] = {
    "48780-1": ("spl_product_data_elements", "PRODUCT DATA ELEMENTS"),
    "34066-1": ("boxed_warning", "BOXED WARNING"),
    "43683-2": ("recent_major_changes", "RECENT MAJOR CHANGES"),
    "34067-9": ("indications_and_usage", "INDICATIONS AND USAGE"),
    "34068-7": ("dosage_and_administration", "DOSAGE AND ADMINISTRATION"),
    "43678-2": ("dosage_forms_and_strengths", "DOSAGE FORMS AND STRENGTHS"),
    "34070-3": ("contraindications", "CONTRAINDICATIONS"),
    "43685-7": ("warnings_and_cautions", "WARNINGS AND PRECAUTIONS"),
    "34071-1": ("warnings", "WARNINGS"),
    "42232-9": ("precautions", "PRECAUTIONS"),
    "34084-4": ("adverse_reactions", "ADVERSE REACTIONS"),
    "34073-7": ("drug_interactions", "DRUG INTERACTIONS"),
    "43684-0": ("use_in_specific_populations", "USE IN SPECIFIC POPULATIONS"),
    "42228-7": ("pregnancy", "PREGNANCY"),
    "77290-5": ("lactation", "LACTATION"),
    "34080-2": ("nursing_mothers", "NURSING MOTHERS"),
    "34081-0": ("pediatric_use", "PEDIATRIC USE"),
    "34082-8": ("geriatric_use", "GERIATRIC USE"),
    "42227-9": ("drug_abuse_and_dependence", "DRUG ABUSE AND DEPENDENCE"),
    "34085-1": ("controlled_substance", "CONTROLLED SUBSTANCE"),
    "34086-9": ("abuse", "ABUSE"),
    "34087-7": ("dependence", "DEPENDENCE"),
    "34088-5": ("overdosage", "OVERDOSAGE"),
    "34089-3": ("description", "DESCRIPTION"),
    "34090-1": ("clinical_pharmacology", "CLINICAL PHARMACOLOGY"),
    "43680-8": ("nonclinical_toxicology", "NONCLINICAL TOXICOLOGY"),
    "34092-7": ("clinical_studies", "CLINICAL STUDIES"),
    "34093-5": ("references", "REFERENCES"),
    "34069-5": ("how_supplied", "HOW SUPPLIED"),
    "44425-7": ("storage_and_handling", "STORAGE AND HANDLING"),
    "34076-0": ("information_for_patients", "PATIENT COUNSELING INFORMATION"),
    "42231-1": ("spl_medguide", "MEDICATION GUIDE"),
    "42230-3": ("spl_patient_package_insert", "PATIENT PACKAGE INSERT"),
    "51945-4": ("package_label_principal_display_panel", "PACKAGE LABEL"),
    "42229-5": ("spl_unclassified_section", "SPL UNCLASSIFIED"),
    "55106-9": ("active_ingredient", "ACTIVE INGREDIENT"),
    "55105-1": ("purpose", "PURPOSE"),
    "51727-6": ("inactive_ingredient", "INACTIVE INGREDIENT"),
    "53413-1": ("questions", "QUESTIONS"),
}


#: SPL element (local name) → the HTML element `normalize.html_to_text` renders it as.
SPL_TO_HTML = {
    "paragraph": "p",
    "list": "ul",
    "item": "li",
    "title": "h3",
    "caption": "caption",
    "table": "table",
    "thead": "thead",
    "tbody": "tbody",
    "tfoot": "tfoot",
    "tr": "tr",
    "td": "td",
    "th": "th",
    "br": "br",
    "sub": "sub",
    "sup": "sup",
    "content": "span",
    "linkHtml": "span",
    "footnote": "span",
    "footnoteRef": "span",
    "section": "section",
}


#: SPL elements without reader-visible text (or with only image alt-text) inside a section.
SPL_DROP = frozenset(
    {"code", "id", "effectiveTime", "subject", "renderMultiMedia", "observationMedia", "col",
     "colgroup", "templateId", "confidentialityCode", "languageCode", "setId", "versionNumber"}
)  # fmt: skip


def safe_parser() -> etree.XMLParser:
    """No entity expansion, DTD loading or network access, no unbounded trees."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def parse_spl(body: bytes | str) -> Label:
    """The sections of a DailyMed SPL document, top-level sections in document order."""
    # lxml refuses a str that still declares its encoding; bytes keep theirs.
    raw = XML_DECLARATION.sub("", body, count=1) if isinstance(body, str) else body
    try:
        root = etree.fromstring(raw, safe_parser())
    except etree.XMLSyntaxError as error:
        raise LabelError(f"not well-formed SPL XML: {error}") from None
    if _local(root) != "document":
        raise LabelError(f"not an SPL document: the root element is <{_local(root)}>")
    body_element = _first(root, "component", "structuredBody")
    sections = []
    if body_element is not None:
        for component in _children(body_element, "component"):
            for element in _children(component, "section"):
                sections.append(_spl_section(element))
    return Label(
        set_id=_attr(_first(root, "setId"), "root"),
        version=_attr(_first(root, "versionNumber"), "value"),
        effective_time=_attr(_first(root, "effectiveTime"), "value"),
        title=_flat(_first(root, "title")),
        sections=tuple(sections),
        document_id=_attr(_first(root, "id"), "root"),
    )


def _spl_section(element: etree._Element) -> Section:
    code_element = _first(element, "code")
    code = _attr(code_element, "code") or "no-code"
    display = _attr(code_element, "displayName")
    name = LOINC_SECTIONS.get(code, ("", ""))[1] or _display_name(display) or "SECTION"
    title = _flat(_first(element, "title"))
    lines = _section_lines(element)
    if code == "48780-1":
        lines = _product_lines(element)
    nested = len(element.xpath(".//*[local-name()='section']"))
    return Section(code, title or name, f"{name} [{code}]", tuple(lines), nested)


def _section_lines(section: etree._Element) -> list[str]:
    """The section's title, paragraphs, list items and table rows (nested sections included)."""
    tree = copy.deepcopy(section)
    for element in list(tree.iter()):
        if not isinstance(element.tag, str):  # comments, processing instructions
            element.getparent().remove(element)
            continue
        if _local(element) in SPL_DROP and element is not tree:
            element.getparent().remove(element)
    for element in tree.iter():
        element.tag = SPL_TO_HTML.get(_local(element), "div")
        element.attrib.clear()
    markup = etree.tostring(tree, method="html", encoding="unicode")
    return clean_lines(html_to_text(markup).text.splitlines())


def _product_lines(section: etree._Element) -> list[str]:
    """Product data elements: the product names and every NDC code, sorted (order is noise)."""
    names = [
        _flat(name)
        for name in section.xpath(".//*[local-name()='manufacturedProduct']/*[local-name()='name']")
    ]
    ndcs = {
        code.get("code")
        for code in section.xpath(".//*[local-name()='code']")
        if code.get("codeSystem") == NDC_SYSTEM and code.get("code")
    }
    products = [f"product: {name}" for name in dict.fromkeys(n for n in names if n)]
    return products + [f"NDC {ndc}" for ndc in sorted(ndcs)]


def _display_name(display: str) -> str:
    name = SPACES.sub(" ", display).strip().upper()
    return name.removesuffix(" SECTION").strip()


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname if isinstance(element.tag, str) else ""


def _children(element: etree._Element, name: str) -> Iterator[etree._Element]:
    return (child for child in element if _local(child) == name)


def _first(element: etree._Element, *path: str) -> etree._Element | None:
    current: etree._Element | None = element
    for name in path:
        if current is None:
            return None
        current = next(_children(current, name), None)
    return current


def _attr(element: etree._Element | None, name: str) -> str:
    return (element.get(name) or "").strip() if element is not None else ""


def _flat(element: etree._Element | None) -> str:
    """An element's text on one line (a `<br/>` in a title becomes a space)."""
    if element is None:
        return ""
    return SPACES.sub(" ", " ".join(element.itertext())).strip()


@dataclass(frozen=True)
class SplVersion:
    """One SPL version as DailyMed lists it (history of a set id, or a search/index page)."""

    setid: str
    spl_version: int
    title: str
    published_date: str


def parse_dailymed_versions(data: bytes | Mapping[str, Any]) -> list[SplVersion]:
    """Versions from `spls/{setid}/history.json`, a `spls.json` search or a `spls.xml` index."""
    if isinstance(data, bytes) and data.lstrip()[:1] == b"<":
        return _index_xml_versions(data)
    parsed = json.loads(data) if isinstance(data, bytes) else data
    body = parsed.get("data") if isinstance(parsed, Mapping) else None
    if isinstance(body, Mapping):  # one set id's history
        spl = body.get("spl") or {}
        return [
            SplVersion(
                setid=str(spl.get("setid") or ""),
                spl_version=int(entry["spl_version"]),
                title=scalar(spl.get("title")),
                published_date=scalar(entry.get("published_date")),
            )
            for entry in body.get("history") or []
        ]
    if isinstance(body, list):  # a search page
        return [_version(item) for item in body if isinstance(item, Mapping) and item.get("setid")]
    raise LabelError("not a DailyMed SPL listing: expected data.history or a data list")


def _version(item: Mapping[str, Any]) -> SplVersion:
    return SplVersion(
        setid=scalar(item.get("setid")),
        spl_version=int(item.get("spl_version") or 0),
        title=scalar(item.get("title")),
        published_date=scalar(item.get("published_date")),
    )


def _index_xml_versions(data: bytes) -> list[SplVersion]:
    try:
        root = etree.fromstring(data, safe_parser())
    except etree.XMLSyntaxError as error:
        raise LabelError(f"not well-formed DailyMed XML: {error}") from None
    return [
        _version({_local(child): (child.text or "") for child in spl})
        for spl in root
        if _local(spl) == "spl"
    ]
