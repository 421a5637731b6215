"""The typed items spiders yield. Spiders only parse: what happens to an item is the monitor's job.

A crawl of one source yields zero or more `Observation`s (one per watched document: the page, or
one feed item) followed by exactly one `SourceFetch` saying how the fetch went. The order matters:
the monitor stores new validators (ETag / Last-Modified) only once every document is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

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
    key: str  # document key: the page URL, or a feed item's normalized link / guid
    url: str
    title: str
    content: str  # the watched region's HTML (pages) or the item's description HTML (feeds)
    content_type: str  # "html" for a page region, "feed_item" for a feed item
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
