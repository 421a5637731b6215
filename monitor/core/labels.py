"""Drug labels as sections: DailyMed SPL XML by LOINC code, openFDA label JSON by field name.

A label's canonical text is one block per section, each headed by a stable header line
(`## BOXED WARNING [34066-1]` for SPL, `## boxed_warning` for openFDA), after a `## document`
block holding the set id, version and effective date. The history's line diff then shows each
edit inside its section, and `changed_sections()` says which sections an edit touched, which is
what severity ranks. Nested SPL sections (5.1, 5.2 …) stay inside their top-level section: the
top-level code (Warnings and Precautions) is what matters, not the subsection's 42229-5.

Pure functions over bytes and strings. SPL XML is parsed with entities, DTDs and the network
switched off, so a hostile document cannot read files or reach out.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from lxml import etree

from monitor.core.normalize import XML_DECLARATION, html_to_text, looks_like_date_line
from monitor.errors import LabelError

#: Observation.content_type of a DailyMed SPL XML document / of one openFDA label result.
DOCUMENT = "document"
HEADER_PREFIX = "## "
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
FIELD_ORDER = [field for field, _ in LOINC_SECTIONS.values()]
#: openFDA label fields that describe the document, not a section of it.
OPENFDA_DOCUMENT_FIELDS = ("set_id", "id", "version", "effective_time")
#: `openfda.*` fields that repeat the document's own id / set id (they change with every version).
OPENFDA_ECHOES = frozenset({"spl_id", "spl_set_id"})
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
REVISED_INLINE = re.compile(
    r"\b(?:Revised|Revision\s+Date)\s*:?\s*\d{1,2}/(?:\d{1,2}/)?\d{4}\b", re.I
)
REVISED_LINE = re.compile(r"^\s*(?:revised|revision(?:\s+date)?|rev\.?)\b", re.I)
HEADER_ID = re.compile(r"\[([^\]]+)\]\s*$")
SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Section:
    """One top-level label section: its code (LOINC or openFDA field), title and text lines."""

    code: str
    title: str
    header: str  # the stable header line without "## "
    lines: tuple[str, ...]
    subsections: int = 0

    @property
    def characters(self) -> int:
        return sum(len(line) for line in self.lines)


@dataclass(frozen=True)
class Label:
    """A parsed label: what identifies the version, and its sections in document order."""

    set_id: str
    version: str
    effective_time: str
    title: str
    sections: tuple[Section, ...]
    document_id: str = ""

    def text(self) -> str:
        """The canonical text the history hashes and diffs."""
        lines = [f"{HEADER_PREFIX}{DOCUMENT}", f"set_id: {self.set_id}"]
        if self.document_id:
            lines.append(f"id: {self.document_id}")
        lines += [f"version: {self.version}", f"effective_time: {self.effective_time}"]
        for section in self.sections:
            if section.lines:
                lines.append(HEADER_PREFIX + section.header)
                lines.extend(_escape(line) for line in section.lines)
        return "\n".join(lines)


# --- SPL XML -----------------------------------------------------------------------------------


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
    return _clean_lines(html_to_text(markup).text.splitlines())


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


# --- openFDA label JSON ------------------------------------------------------------------------


def parse_openfda_label(record: Mapping[str, Any] | str) -> Label:
    """The sections of one openFDA `drug/label` result, by field name.

    Section text is the field's strings, `*_table` fields with their HTML markup stripped;
    `openfda.*` fields are sorted (their order changes between index runs) and are sections of
    their own. Fields are ordered like a prescribing information, then alphabetically.
    """
    data = json.loads(record) if isinstance(record, str) else record
    if not isinstance(data, Mapping) or not data.get("set_id"):
        raise LabelError("not an openFDA label result: it has no set_id")
    sections = []
    fields = [f for f in data if f not in OPENFDA_DOCUMENT_FIELDS and f != "openfda"]
    fields = [f for f in fields if not f.startswith("@")]
    for field in sorted(fields, key=_field_rank):
        lines = _field_lines(field, data[field])
        sections.append(Section(field, field, field, tuple(lines)))
    openfda = data.get("openfda") or {}
    for field in sorted(set(openfda) - OPENFDA_ECHOES):
        values = sorted({_scalar(v) for v in _as_list(openfda[field])} - {""})
        name = f"openfda.{field}"
        sections.append(Section(name, name, name, tuple(values)))
    title = " / ".join(
        _as_list(openfda.get("brand_name"))[:1] + _as_list(openfda.get("generic_name"))[:1]
    )
    return Label(
        set_id=str(data["set_id"]),
        version=_scalar(data.get("version")),
        effective_time=_scalar(data.get("effective_time")),
        title=title,
        sections=tuple(sections),
        document_id=_scalar(data.get("id")),
    )


def _field_rank(field: str) -> tuple[int, str]:
    base = field.removesuffix("_table")
    rank = FIELD_ORDER.index(base) if base in FIELD_ORDER else len(FIELD_ORDER)
    return rank, field


def _field_lines(field: str, value: Any) -> list[str]:
    lines: list[str] = []
    for item in _as_list(value):
        text = _scalar(item)
        if field.endswith("_table") or text.lstrip().startswith("<"):
            lines.extend(html_to_text(text).text.splitlines())
        else:
            lines.extend(text.splitlines())
    return _clean_lines(lines)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return SPACES.sub(" ", str(value if value is not None else "")).strip()


# --- shared ------------------------------------------------------------------------------------


def _clean_lines(lines: Iterable[str]) -> list[str]:
    """Whitespace collapsed, "Revised: 3/2024" stamps dropped, empty lines removed."""
    kept = []
    for line in lines:
        line = SPACES.sub(" ", REVISED_INLINE.sub("", line)).strip()
        if not line or (REVISED_LINE.match(line) and looks_like_date_line(line)):
            continue
        kept.append(line)
    return kept


def _escape(line: str) -> str:
    """A content line can never be mistaken for a section header."""
    return "# #" + line[2:] if line.startswith("##") else line


def spl_text(body: bytes | str) -> str:
    return parse_spl(body).text()


def openfda_label_text(record: Mapping[str, Any] | str) -> str:
    return parse_openfda_label(record).text()


def blocks(text: str) -> dict[str, list[str]]:
    """A label text split back into {section header: lines}; repeated headers are joined."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith(HEADER_PREFIX):
            current = found.setdefault(line[len(HEADER_PREFIX) :], [])
        elif current is not None:
            current.append(line)
    return found


def without_document(text: str) -> str:
    """A label text without its `document` block (what a reader of the sections sees)."""
    return "\n".join(
        line
        for header, lines in blocks(text).items()
        if header != DOCUMENT
        for line in [HEADER_PREFIX + header, *lines]
    )


def changed_sections(old: str, new: str) -> list[str]:
    """The headers of the sections that differ between two label texts, new order first.

    The `document` block (set id, version, date) is left out: a version bump alone is not a
    section change, and severity calls a change with no changed section date-only (T5).
    """
    before, after = blocks(old), blocks(new)
    names = list(after) + [name for name in before if name not in after]
    return [name for name in names if name != DOCUMENT and before.get(name) != after.get(name)]


def section_field(header: str) -> str:
    """The openFDA field name a section header stands for (`BOXED WARNING [34066-1]` too)."""
    match = HEADER_ID.search(header)
    if match:
        code = match.group(1)
        return LOINC_SECTIONS.get(code, (code, ""))[0]
    return header


def section_text(text: str, field: str) -> str:
    """The lines of the sections that stand for `field` (e.g. recent_major_changes)."""
    return "\n".join(
        "\n".join(lines) for header, lines in blocks(text).items() if section_field(header) == field
    )


def read_label_file(data: bytes) -> Label:
    """An SPL XML or an openFDA label JSON (a response with `results`, or one result)."""
    head = data.lstrip()[:1]
    if head == b"<":
        return parse_spl(data)
    try:
        parsed = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise LabelError(f"neither SPL XML nor openFDA label JSON: {error}") from None
    if isinstance(parsed, dict) and isinstance(parsed.get("results"), list):
        if len(parsed["results"]) != 1:
            raise LabelError(
                f"the openFDA response holds {len(parsed['results'])} labels; save one result "
                "(or query by set_id) to list its sections"
            )
        parsed = parsed["results"][0]
    return parse_openfda_label(parsed)


# --- DailyMed version listings -----------------------------------------------------------------


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
                title=_scalar(spl.get("title")),
                published_date=_scalar(entry.get("published_date")),
            )
            for entry in body.get("history") or []
        ]
    if isinstance(body, list):  # a search page
        return [_version(item) for item in body if isinstance(item, Mapping) and item.get("setid")]
    raise LabelError("not a DailyMed SPL listing: expected data.history or a data list")


def _version(item: Mapping[str, Any]) -> SplVersion:
    return SplVersion(
        setid=_scalar(item.get("setid")),
        spl_version=int(item.get("spl_version") or 0),
        title=_scalar(item.get("title")),
        published_date=_scalar(item.get("published_date")),
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
