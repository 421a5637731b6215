"""Drug labels as sections: DailyMed SPL XML by LOINC code, openFDA label JSON by field name.

A label's canonical text is one block per section, each headed by a stable header line
(`## BOXED WARNING [34066-1]` for SPL, `## boxed_warning` for openFDA), after a `## document`
block holding the set id, version and effective date. The history's line diff then shows each
edit inside its section, and `changed_sections()` says which sections an edit touched, which is
what severity ranks. Nested SPL sections (5.1, 5.2 …) stay inside their top-level section: the
top-level code (Warnings and Precautions) is what matters, not the subsection's 42229-5.

Pure functions over bytes and strings; the model is `monitor.core.label_model`, SPL XML parsing
`monitor.core.spl`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from monitor.core.label_model import (
    DOCUMENT,
    HEADER_ID,
    HEADER_PREFIX,
    Label,
    Section,
    clean_lines,
    scalar,
)
from monitor.core.normalize import html_to_text
from monitor.core.spl import LOINC_SECTIONS, parse_spl
from monitor.errors import LabelError

FIELD_ORDER = [field for field, _ in LOINC_SECTIONS.values()]
#: openFDA label fields that describe the document, not a section of it.
OPENFDA_DOCUMENT_FIELDS = ("set_id", "id", "version", "effective_time")
#: `openfda.*` fields that repeat the document's own id / set id (they change with every version).
OPENFDA_ECHOES = frozenset({"spl_id", "spl_set_id"})


# --- SPL XML -----------------------------------------------------------------------------------


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
        values = sorted({scalar(v) for v in _as_list(openfda[field])} - {""})
        name = f"openfda.{field}"
        sections.append(Section(name, name, name, tuple(values)))
    title = " / ".join(
        _as_list(openfda.get("brand_name"))[:1] + _as_list(openfda.get("generic_name"))[:1]
    )
    return Label(
        set_id=str(data["set_id"]),
        version=scalar(data.get("version")),
        effective_time=scalar(data.get("effective_time")),
        title=title,
        sections=tuple(sections),
        document_id=scalar(data.get("id")),
    )


def _field_rank(field: str) -> tuple[int, str]:
    base = field.removesuffix("_table")
    rank = FIELD_ORDER.index(base) if base in FIELD_ORDER else len(FIELD_ORDER)
    return rank, field


def _field_lines(field: str, value: Any) -> list[str]:
    lines: list[str] = []
    for item in _as_list(value):
        text = scalar(item)
        if field.endswith("_table") or text.lstrip().startswith("<"):
            lines.extend(html_to_text(text).text.splitlines())
        else:
            lines.extend(text.splitlines())
    return clean_lines(lines)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


# --- shared ------------------------------------------------------------------------------------


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
