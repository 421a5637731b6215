"""Records (recalls, shortages, approvals, Federal Register documents) as `field: value` lines.

A record's canonical text is one `field: value` line per field in a fixed order, so the
history's line diff names the field that changed (`classification: Class II` →
`classification: Class I`) and `changed_fields()` lists them for severity and for
`Change.sections`.

Field order (documented, stable): the identifying fields first, then the fields a reader
checks first, in this order —

    recall_number, document_number, application_number, submission_type, submission_number,
    setid, package_ndc, generic_name, brand_name, title, type, classification, status,
    submission_status, submission_status_date, submission_class_code,
    submission_class_code_description, review_priority, product_description,
    reason_for_recall, recalling_firm, company_name, sponsor_name, presentation, availability,
    shortage_reason, agencies, abstract, action, publication_date, effective_on,
    comments_close_on, docket_ids, citation, recall_initiation_date,
    center_classification_date, report_date, termination_date, initial_posting_date,
    update_type, update_date, change_date, discontinued_date, resolved_note, related_info,
    code_info, distribution_pattern, voluntary_mandated, product_quantity, spl_version,
    published_date, application_docs, html_url, pdf_url

— then every other field alphabetically. Nested objects become `parent.child` fields; lists
are sorted and joined with "; " (their order is noise); a list of objects with a `name` (the
Federal Register's agencies) is the list of names. Fields that only echo the search
(`excerpts`) or are index internals (`@…`) are left out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from monitor.errors import RecordError

#: Observation.content_type of one API record (a JSON object).
FIELD_ORDER = (
    "recall_number", "document_number", "application_number", "submission_type",
    "submission_number", "setid", "package_ndc", "generic_name", "brand_name", "title", "type",
    "classification", "status", "submission_status", "submission_status_date",
    "submission_class_code", "submission_class_code_description", "review_priority",
    "product_description", "reason_for_recall", "recalling_firm", "company_name", "sponsor_name",
    "presentation", "availability", "shortage_reason", "agencies", "abstract", "action",
    "publication_date", "effective_on", "comments_close_on", "docket_ids", "citation",
    "recall_initiation_date", "center_classification_date", "report_date", "termination_date",
    "initial_posting_date", "update_type", "update_date", "change_date", "discontinued_date",
    "resolved_note", "related_info", "code_info", "distribution_pattern", "voluntary_mandated",
    "product_quantity", "spl_version", "published_date", "application_docs", "html_url",
    "pdf_url",
)  # fmt: skip
IGNORED_FIELDS = frozenset({"excerpts"})
#: Fields whose change alone is a date stamp, not content (severity T5).
DATE_FIELD = re.compile(r"(?:^|_)(?:date|on|time)$|_date$")
SPACES = re.compile(r"\s+")


def record_text(record: Mapping[str, Any] | str) -> str:
    """The canonical `field: value` text of one record."""
    data = json.loads(record) if isinstance(record, str) else record
    if not isinstance(data, Mapping):
        raise RecordError(f"a record must be a JSON object, not {type(data).__name__}")
    fields = dict(_flatten(data))
    order = {name: index for index, name in enumerate(FIELD_ORDER)}
    names = sorted(fields, key=lambda name: (order.get(name, len(order)), name))
    return "\n".join(f"{name}: {fields[name]}" for name in names if fields[name])


def _flatten(data: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    for key, value in data.items():
        if key in IGNORED_FIELDS or key.startswith("@"):
            continue
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _flatten(value, f"{name}.")
        else:
            yield name, _value(value)


def _value(value: Any) -> str:
    if isinstance(value, list | tuple):
        items = [_item(item) for item in value]
        return "; ".join(sorted({item for item in items if item}))
    return _item(value)


def _item(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        if value.get("name"):
            return _item(value["name"])
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return SPACES.sub(" ", str(value)).strip()


def parse_record_text(text: str) -> dict[str, str]:
    """The fields of a record text (the inverse of `record_text`)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition(": ")
        if sep:
            fields[name] = value
    return fields


def changed_fields(old: str, new: str) -> list[str]:
    """The fields whose value differs between two record texts, in the new text's order."""
    before, after = parse_record_text(old), parse_record_text(new)
    names = list(after) + [name for name in before if name not in after]
    return [name for name in names if before.get(name) != after.get(name)]


def is_date_field(name: str) -> bool:
    return bool(DATE_FIELD.search(name.rsplit(".", 1)[-1]))
