"""`scrapy crawl feed -a source=<id>`: every item of an RSS / Atom feed, one Observation each.

Scrapy downloads (politeness, retries, robots.txt, conditional GET) and feedparser parses, because
real FDA feeds are quirky: `xml:base` relative links, Drupal `<pubDate><time …>` dates, odd
encodings. Keeping only the items about ketamine is the monitor's job, not the spider's.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any, ClassVar

import feedparser
from scrapy.http import Response
from w3lib.encoding import http_content_type_encoding, read_bom

from monitor.items import FEED_ITEM, Observation, SourceFetch, document_key
from monitor.sources import SourceConfig
from spiders.base import WatchSpider, header, too_many
from spiders.middlewares import codec_name
from spiders.transfer import FEED_END, TAIL_BYTES

#: A feed never needs its own entities; declaring them is the shape of an entity-expansion
#: ("billion laughs") or external-entity attack, so such a body is refused, not parsed.
ENTITY_DECLARATION = re.compile(rb"<!ENTITY", re.IGNORECASE)
ENTITY_DECLARATION_TEXT = re.compile(r"<!ENTITY", re.IGNORECASE)
#: How a document without a byte-order mark starts in UTF-32 / UTF-16 (XML 1.0 appendix F).
XML_START_WITHOUT_BOM = (
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00<", "utf-16-be"),
    (b"<\x00", "utf-16-le"),
)
XML_DECLARED_ENCODING = re.compile(r"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)""")
ENTITY_REFUSAL = (
    "feed declares XML entities (<!ENTITY>): refused, a feed never needs them "
    "(entity-expansion or external-entity attack?)"
)
STAT_WITHOUT_KEY = "fdawatch/feed/items_without_key"
STAT_DUPLICATE_KEY = "fdawatch/feed/duplicate_keys"


class FeedSpider(WatchSpider):
    name = "feed"
    kind: ClassVar[str] = "feed"

    def parse_ok(
        self, source: SourceConfig, response: Response, fetched_at: datetime
    ) -> Iterator[Observation | SourceFetch]:
        if declares_entities(response.body, header(response, "content-type")):
            yield self.failed(source, response, fetched_at, ENTITY_REFUSAL)
            return
        rough = response.body.count(b"<item") + response.body.count(b"<entry")
        if rough > source.max_documents:  # refused before a long parse holds the reactor
            yield self.failed(source, response, fetched_at, too_many(source, rough))
            return
        parsed = parse_feed(response.body, response.url, header(response, "content-type"))
        if len(parsed.entries) > source.max_documents:
            yield self.failed(source, response, fetched_at, too_many(source, len(parsed.entries)))
            return
        observations = list(self.entry_observations(source, response, fetched_at, parsed.entries))
        problem = unreadable_feed_problem(parsed, response, kept=len(observations))
        if problem is None and parsed.get("version") and not feed_ends(response.body):
            problem = (
                f"data loss: the feed from {response.url} ends before its closing tag "
                f"({len(response.body)} bytes, {len(observations)} items read): the transfer "
                "was cut short"
            )
        if problem:
            yield self.failed(source, response, fetched_at, problem)
            return
        if parsed.bozo:
            self.logger.warning(
                "%s: feed is not well-formed (%s); kept %d items",
                source.id, parsed.get("bozo_exception"), len(observations),
            )  # fmt: skip
        yield from self.finish(source, response, fetched_at, observations)

    def entry_observations(
        self, source: SourceConfig, response: Response, fetched_at: datetime, entries: list[Any]
    ) -> Iterator[Observation]:
        """One Observation per keyed entry; the first of several entries with one key wins."""
        seen: set[str] = set()
        for entry in entries:
            link, guid = clean(entry.get("link")), clean(entry.get("id"))
            if link is None and guid is None:
                self.crawler.stats.inc_value(STAT_WITHOUT_KEY)
                self.logger.warning("%s: skipped an item with neither link nor guid", source.id)
                continue
            key = document_key(link, guid)
            if key in seen:
                self.crawler.stats.inc_value(STAT_DUPLICATE_KEY)
                continue
            seen.add(key)
            yield self.observation(
                source,
                response,
                fetched_at,
                key=key,
                url=item_url(link, guid, response.url),
                title=entry.get("title", ""),
                content=entry_html(entry),
                content_type=FEED_ITEM,
                published=entry_date(entry),
            )


def declares_entities(body: bytes, content_type: str | None) -> bool:
    """Whether the document declares `<!ENTITY>`, anywhere, in whatever encoding it is in.

    The raw bytes are searched whole (every ASCII-compatible encoding spells `<!ENTITY` the
    same); a body in an encoding that does not (UTF-16, UTF-32: by byte-order mark, by XML's
    own first bytes, by its declaration or by the HTTP charset) is decoded whole and searched
    again. Linear in the body's size: a few tens of milliseconds for the 20 MB download limit.
    """
    if ENTITY_DECLARATION.search(body):
        return True
    for encoding in document_encodings(body, content_type):
        try:
            if "<!ENTITY".encode(encoding, errors="replace") == b"<!ENTITY":
                continue  # ASCII-compatible: the byte search above already covered it
            text = body.decode(encoding, errors="replace")
        except (LookupError, UnicodeError):  # not a text encoding (`base64`, `undefined`)
            continue
        if ENTITY_DECLARATION_TEXT.search(text):
            return True
    return False


def document_encodings(body: bytes, content_type: str | None) -> list[str]:
    """Every encoding the feed may be read in (known Python codecs only), most certain first."""
    candidates = [read_bom(body)[0]]
    start = next((name for prefix, name in XML_START_WITHOUT_BOM if body.startswith(prefix)), None)
    candidates.append(start)
    head = body[:1024].decode(start or "utf-8", errors="replace").lstrip("\ufeff")
    declared = XML_DECLARED_ENCODING.match(head)
    candidates.append(declared.group(1) if declared else None)
    candidates.append(http_content_type_encoding(content_type or ""))
    found: list[str] = []
    for candidate in candidates:
        name = codec_name(candidate) if candidate else None
        if name and name not in found:
            found.append(name)
    return found


def parse_feed(body: bytes, url: str, content_type: str | None) -> Any:
    """feedparser on the downloaded bytes, never on a str (which it may open as a path or URL).

    Content-Location gives relative links a base when the feed has no xml:base; HTML is not
    sanitized here because the raw description is the evidence and normalization comes later.
    """
    headers = {"content-location": url}
    if content_type:
        headers["content-type"] = content_type
    return feedparser.parse(io.BytesIO(body), response_headers=headers, sanitize_html=False)


def unreadable_feed_problem(parsed: Any, response: Response, kept: int) -> str | None:
    """Why the body is not a feed we can read, or None.

    A well-formed feed with zero items is fine, and so is a slightly broken one that still gave
    items; a broken one that gave none is a failure, never "every item disappeared".
    """
    content_type = header(response, "content-type") or "no content-type"
    if not response.body.strip():
        return f"empty body ({content_type}) from {response.url}"
    if kept:
        return None
    if parsed.bozo:
        return f"not a readable feed ({content_type}): {parsed.get('bozo_exception')}"
    if not parsed.get("version"):
        return f"not an RSS or Atom feed ({content_type}) at {response.url}"
    return None


def feed_ends(body: bytes) -> bool:
    """Whether the body ends with a feed's closing root tag (also in UTF-16 / UTF-32).

    A feed cut in the middle of an item still gives feedparser the items before the cut; only
    its missing end tells the cut from the whole.
    """
    tail = body[-TAIL_BYTES * 4 :].replace(b"\x00", b"")
    return FEED_END.search(tail[-TAIL_BYTES:]) is not None


def clean(value: Any) -> str | None:
    text = str(value or "").strip()
    return text or None


def item_url(link: str | None, guid: str | None, feed_url: str) -> str:
    """Where a reader can open the item: its link, a permalink guid, else the feed itself."""
    if link:
        return link
    if guid and guid.startswith(("http://", "https://")):
        return guid
    return feed_url


def entry_date(entry: Any) -> str | None:
    """The item's own date string as given (RSS pubDate, Atom published, else updated).

    Plain dict lookups: feedparser's mapping of a missing `updated` to `published` warns.
    """
    return dict.get(entry, "published") or dict.get(entry, "updated") or None


def entry_html(entry: Any) -> str:
    """The item's description (RSS) / summary (Atom), else its full content."""
    if entry.get("summary"):
        return str(entry["summary"])
    contents = entry.get("content") or []
    return str(contents[0].get("value", "")) if contents else ""
