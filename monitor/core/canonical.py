"""From an observation to the text fdawatch hashes and diffs, and what an edit touched. Pure.

One dispatch on the content type (`monitor.items`) above the normalizer, the label and the record
renderers, so none of them needs to know the others.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from monitor.core import api_records, diff, labels
from monitor.core.normalize import content_sha256, feed_item_text, html_to_text
from monitor.core.pdf_layout import words_key
from monitor.core.terms import weight
from monitor.core.text_render import clean_line
from monitor.items import DOCUMENT, FEED_ITEM, LABEL_OPENFDA, LABEL_SPL, RECORD, Observation

#: Bump when `normalized_text` gives a different text for the same input: every document is then
#: normalized again once, instead of trusting the input hashes stored by the older version.
NORMALIZER_VERSION = "1"
LABEL_TYPES = (LABEL_SPL, LABEL_OPENFDA)


def normalized_text(observation: Observation) -> tuple[str, dict[str, str]]:
    """The text that is hashed and diffed, and metadata kept beside it (the page's own date).

    Labels and records keep their content type in the metadata, so a later change knows to
    diff them by section or by field.
    """
    if observation.content_type == FEED_ITEM:
        return feed_item_text(observation.title, observation.content), {}
    if observation.content_type == LABEL_SPL:
        return labels.spl_text(observation.content), {"content_type": LABEL_SPL}
    if observation.content_type == LABEL_OPENFDA:
        return labels.openfda_label_text(observation.content), {"content_type": LABEL_OPENFDA}
    if observation.content_type == RECORD:
        return api_records.record_text(observation.content), {"content_type": RECORD}
    if observation.content_type == DOCUMENT:
        return document_text(observation.content), {"content_type": DOCUMENT}
    page = html_to_text(observation.content)
    meta = {"content_date": page.content_date} if page.content_date else {}
    return page.text, meta


def document_text(content: str) -> str:
    """A linked document's text (already one paragraph a line), cleaned as page lines are."""
    return "\n".join(line for line in map(clean_line, content.splitlines()) if line)


def version_sha256(content_type: str, text: str) -> str:
    """The identity of a version: the text's hash; for a linked document, its words' hash.

    A re-issued PDF laid out again splits its paragraphs differently (5-16 % of them, measured
    on real FDA PDFs) while every word stays: the words decide, so that is not a change.
    """
    if content_type == DOCUMENT:
        return content_sha256(words_key(text))
    return content_sha256(text)


def input_sha256(observation: Observation) -> str:
    """Hash of everything `normalized_text` reads: the same input gives the same text.

    Stored beside each snapshot, it lets an unchanged feed item or API record skip the HTML
    parse altogether; the region a page's selector picks is the input, so a new selector (or a
    new NORMALIZER_VERSION) still normalizes the page again.
    """
    digest = hashlib.sha256()
    parts = (NORMALIZER_VERSION, observation.content_type, observation.title, observation.content)
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()


def changed_parts(content_type: str, old_text: str, new_text: str) -> list[str]:
    """The label sections or record fields an edit touched (nothing for pages and feeds)."""
    if content_type in LABEL_TYPES:
        return labels.changed_sections(old_text, new_text)
    if content_type == RECORD:
        return api_records.changed_fields(old_text, new_text)
    return []


def summary(
    content_type: str, old: str | None, new: str, kind: str, sections: Sequence[str]
) -> str:
    """The one-line summary; a label's quotes its changed sections, not its version line."""
    if sections and content_type in LABEL_TYPES and old is not None:
        old, new = labels.without_document(old), labels.without_document(new)
    return diff.summarize(old, new, kind, weigh=weight)
