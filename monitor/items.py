"""The contract at the spider → monitor border: the items spiders yield, and what they mean.

Spiders only parse: what happens to an item is the monitor's job. Spiders import this module and
the source configuration, and (for DailyMed's SPL XML) the pure label parser; nothing else.

A crawl of one source yields zero or more `Observation`s (one per watched document: the page, or
one feed item) followed by exactly one `SourceFetch` saying how the fetch went. The order matters:
the monitor stores new validators (ETag / Last-Modified) only once every document is recorded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

from w3lib.url import canonicalize_url

#: Observation.content_type values: how the monitor turns `content` into text.
HTML = "html"  # a page's watched region
FEED_ITEM = "feed_item"  # one RSS / Atom item's description
LABEL_SPL = "label_spl"  # a DailyMed SPL XML label
LABEL_OPENFDA = "label_openfda"  # an openFDA label record (JSON)
RECORD = "record"  # any other API record (recall, shortage, application, FR document), JSON
#: A document a source links (a PDF): `content` is its text read by monitor.core.pdf_text, one
#: paragraph a line (or a note that it has no text layer), `body` the file as fetched.
DOCUMENT = "document"
CONTENT_TYPES = (HTML, FEED_ITEM, LABEL_SPL, LABEL_OPENFDA, RECORD, DOCUMENT)

#: SourceFetch.outcome values.
OK = "ok"  # fetched and parsed; its documents were yielded before this item
NOT_MODIFIED = "not_modified"  # 304: unchanged, nothing to record
GONE = "gone"  # 404 / 410 for a page: the document was removed
FAILED = "failed"  # network error, 5xx, timeout, truncated body, unparseable body
DRIFT = "drift"  # fetched, but the configured selector matched nothing: the layout changed
#: A CDN / bot defence refused us (an apology redirect, 401/403, a challenge page), or the host
#: is backing off after such a refusal: a source-health state, never a content change.
BLOCKED = "blocked"
#: The text shrank to a fraction or gained replacement characters: held, not recorded, while
#: the same URL is fetched once more (the second look decides; see monitor.runtime.pipeline).
HELD = "held"


@dataclass
class Observation:
    """One watched document as seen in one response, before normalization."""

    source_id: str
    key: str  # document key: the page URL, a feed item's normalized link / guid, a linked
    # document's canonical URL, an API record's id
    url: str
    title: str
    content: str  # the watched region's HTML (pages) or the item's description HTML (feeds)
    content_type: str  # one of CONTENT_TYPES
    fetched_at: datetime
    http_status: int = 200
    body: bytes = b""  # the raw response body exactly as fetched (the evidence)
    headers: dict[str, str] = field(default_factory=dict)
    published: str | None = None  # a feed item's own date, as given


@dataclass
class SourceFetch:
    """How one fetch of one source went: the source-health record, never a content change."""

    source_id: str
    url: str
    outcome: str
    fetched_at: datetime
    http_status: int | None = None
    error: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    documents: int = 0
    bytes: int = 0
    duration_ms: int = 0
    document_keys: list[str] = field(default_factory=list)
    final_url: str | None = None  # where the answer came from, when a redirect was followed
    moved_to: str | None = None  # the new address, when a permanent redirect (301/308) led there
    server: str | None = None  # the Server header: evidence of who answered (a CDN?)
    second_look: bool = False  # this fetch re-checks a change held by the first look


# --- document keys -----------------------------------------------------------------------------

TRACKING_PARAM = re.compile(r"^(?:utm_[^=]*|fbclid|gclid)$", re.IGNORECASE)
DEFAULT_PORTS = {"http": 80, "https": 443}


def document_key(link: str | None, guid: str | None) -> str:
    """The key a feed item is stored under: its normalized link, else its guid.

    FDA feed links are `http://www.fda.gov/...` today and may turn https later; both give the
    same key, so a scheme switch does not make every item look new.
    """
    for candidate in (link, guid):
        value = (candidate or "").strip()
        if value:
            return _canonical_or_as_is(value)
    raise ValueError("a feed item needs a link or a guid to be stored")


def _canonical_or_as_is(value: str) -> str:
    """A web URL in canonical form; anything else (or a malformed URL) as given."""
    try:
        return canonical_url(value) if _is_web_url(value) else value
    except ValueError:
        return value


def canonical_url(url: str) -> str:
    """https, lower-case host, no default port, no fragment, no tracking params, sorted query."""
    parts = urlsplit(canonicalize_url(url.strip()))
    host = (parts.hostname or "").lower()
    netloc = host
    if parts.port is not None and parts.port != DEFAULT_PORTS.get(parts.scheme.lower()):
        netloc = f"{host}:{parts.port}"
    if "@" in parts.netloc:
        netloc = f"{parts.netloc.rsplit('@', 1)[0]}@{netloc}"
    query = "&".join(
        pair
        for pair in parts.query.split("&")
        if pair and not TRACKING_PARAM.match(pair.split("=", 1)[0])
    )
    scheme = "https" if parts.scheme.lower() in DEFAULT_PORTS else parts.scheme.lower()
    return urlunsplit((scheme, netloc, parts.path, query, ""))


def _is_web_url(value: str) -> bool:
    return urlsplit(value).scheme.lower() in DEFAULT_PORTS and "://" in value
