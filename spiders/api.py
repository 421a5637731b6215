"""What the JSON API spiders share: paging through a result set and reporting it as one fetch.

A source's URL is the first page of a query. Each page's documents are held back until the last
page has arrived; then all of them are yielded (sharing the first page's `fetched_at`), followed
by one OK `SourceFetch` listing every document key. That record means "this is the complete
result set", which is what lets the history mark a document that disappeared as removed. So:

* a page that fails (network error, HTTP error, unreadable body) ends the set with one FAILED
  record and no documents: a partial set is never recorded;
* a set that cannot be completed (more than `max_pages` pages, or past openFDA's skip limit
  without a `Link: rel="next"`) yields the documents it has, then a FAILED record saying how to
  narrow the query: its new and changed documents are real, but nothing is inferred removed.

Only the first page is a conditional request: the API bodies carry the dataset's update date
(openFDA `meta.last_updated`), so an unchanged first page means an unchanged dataset.

The openFDA key (`Settings.openfda_api_key`) is sent as `api_key=` and never kept: it is
stripped from every URL and error that goes into an item, and redacted from every log line. It is
sent only to the source's own origin (scheme, host, port): a next page (`Link: rel="next"`,
`next_page_url`) on another origin is not requested at all, and the set ends incomplete.
Politeness: openFDA allows 240 requests/min (one per 0.25 s); the deployment's DOWNLOAD_DELAY
(default 1 s, `[crawl] delay`) applies and should not be set below 0.25 s.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urljoin, urlsplit

from scrapy import Request

from monitor.items import FAILED, OK, Observation, SourceFetch, canonical_url
from monitor.sources import SourceConfig
from spiders.base import HANDLED_STATUSES, WatchSpider, header, latency_ms, too_many
from spiders.documents import DocumentLink, FollowsDocuments, is_document_url

if TYPE_CHECKING:
    from scrapy.http import Response
    from twisted.python.failure import Failure

STATE = "fdawatch_result_set"
STAGE = "fdawatch_stage"
API_KEY_PARAM = re.compile(r"(?i)(api_key=)[^&\s'\"<>]+")
LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?', re.IGNORECASE)
MAX_PAGES = 100
DEFAULT_PORTS = {"http": 80, "https": 443}


def strip_api_key(url: str) -> str:
    """The URL without any `api_key=` parameter (what may be stored or shown)."""
    base, sep, query = url.partition("?")
    if not sep:
        return url
    pairs = [pair for pair in query.split("&") if pair and not pair.lower().startswith("api_key=")]
    return f"{base}?{'&'.join(pairs)}" if pairs else base


def with_api_key(url: str, key: str | None) -> str:
    """The URL with `api_key=KEY` as its first parameter (openFDA's advice); as is without key."""
    if not key:
        return url
    base, _, query = strip_api_key(url).partition("?")
    return f"{base}?api_key={key}" + (f"&{query}" if query else "")


def redact(text: str) -> str:
    return API_KEY_PARAM.sub(r"\1REDACTED", text)


def with_param(url: str, name: str, value: str | int) -> str:
    """The URL with one query parameter set, the others kept exactly as written."""
    base, _, query = url.partition("?")
    pairs = [pair for pair in query.split("&") if pair and pair.split("=", 1)[0] != name]
    return f"{base}?{'&'.join([*pairs, f'{name}={value}'])}"


def query_param(url: str, name: str) -> str | None:
    for pair in url.partition("?")[2].split("&"):
        key, _, value = pair.partition("=")
        if key == name:
            return value
    return None


class RedactApiKeys(logging.Filter):
    """Rewrites any `api_key=…` in a log line (Scrapy logs request URLs when it retries)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "api_key=" in message.lower():
            record.msg, record.args = redact(message), None
        return True


def install_log_redaction() -> None:
    """Put the redacting filter on every root handler (where all crawl logs end up), once."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactApiKeys) for f in handler.filters):
            handler.addFilter(RedactApiKeys())


@dataclass
class ResultSet:
    """One source's pages so far: the documents by key (first page wins) and fetch totals."""

    source: SourceConfig
    fetched_at: datetime
    url: str
    http_status: int
    etag: str | None
    last_modified: str | None
    documents: dict[str, Observation] = field(default_factory=dict)
    pages: int = 0
    bytes: int = 0
    duration_ms: int = 0
    received: int = 0  # results seen on all pages, duplicates included
    extra: dict[str, Any] = field(default_factory=dict)
    #: Documents the results link (`follow_documents`), by key, first link wins.
    links: dict[str, DocumentLink] = field(default_factory=dict)

    def link(self, url: Any, title: str) -> None:
        """Note a document a result links, when the source follows documents and it is one."""
        if self.source.follow_documents and isinstance(url, str) and is_document_url(url):
            key = canonical_url(url)
            self.links.setdefault(key, DocumentLink(key, url.strip(), title[:200]))

    def add(self, observations: list[Observation]) -> None:
        self.received += len(observations)
        for observation in observations:
            self.documents.setdefault(observation.key, observation)


@dataclass
class Page:
    """What one response gave: its documents, and the next request of the set, if any."""

    observations: list[Observation]
    next_url: str | None = None
    next_stage: str = "page"
    incomplete: str | None = None  # why the set cannot be completed


class ApiSpider(FollowsDocuments, WatchSpider):
    """Base of the JSON API spiders; subclasses set `name`/`kind` and implement `parse_page`."""

    #: Whether requests carry the openFDA key.
    uses_api_key: ClassVar[bool] = False
    max_pages: ClassVar[int] = MAX_PAGES

    @property
    def api_key(self) -> str | None:
        config = self.settings.get("FDAWATCH_SETTINGS")
        return getattr(config, "openfda_api_key", None) if self.uses_api_key else None

    async def start(self) -> AsyncIterator[Request]:
        if self.api_key:
            install_log_redaction()
        async for request in super().start():
            yield request

    def build_request(self, source: SourceConfig, validators: dict[str, Any]) -> Request:
        request = super().build_request(source, validators)
        return request.replace(url=with_api_key(source.url, self.api_key))

    def page_request(self, source: SourceConfig, url: str, state: ResultSet, stage: str) -> Request:
        """The next request of a result set, carrying the set along.

        The key goes only to the source's own origin (`parse_ok` never follows another one).
        """
        key = self.api_key if same_origin(source.url, url) else None
        return Request(
            with_api_key(url, key),
            callback=self.parse,
            errback=self.on_error,
            dont_filter=True,
            meta={
                "source_id": source.id,
                "handle_httpstatus_list": HANDLED_STATUSES,
                STATE: state,
                STAGE: stage,
            },
        )

    def parse(self, response: Response, **kwargs: Any) -> Iterator[Any]:
        """An "empty result" answer (openFDA's 404 NOT_FOUND) ends the set; else as usual."""
        if response.status == 404 and self.is_empty_result(response):
            source = self.sources[response.meta["source_id"]]
            state = self.result_set(source, response, datetime.now(UTC))
            yield from self.finish_set(state)
            return
        yield from super().parse(response, **kwargs)

    def is_empty_result(self, response: Response) -> bool:
        return False

    def parse_ok(
        self, source: SourceConfig, response: Response, fetched_at: datetime
    ) -> Iterator[Observation | SourceFetch | Request]:
        state = self.result_set(source, response, fetched_at)
        page = self.parse_page(source, response, state, response.meta.get(STAGE, "first"))
        state.add(page.observations)
        if len(state.documents) > source.max_documents:  # bounded work: record none of them
            yield self.set_record(state, FAILED, error=too_many(source, len(state.documents)))
            return
        if page.next_url:
            page.next_url = urljoin(response.url, page.next_url)
            if not same_origin(source.url, page.next_url):
                page.incomplete = other_origin_problem(source.url, page.next_url)
        if page.next_url and state.pages >= self.max_pages and not page.incomplete:
            page.incomplete = (
                f"stopped after {self.max_pages} pages ({state.received} results) before the end "
                f"of the result set; narrow the query in the source's url"
            )
        if page.incomplete:
            yield from self.end_set(state, self.set_record(state, FAILED, error=page.incomplete))
        elif page.next_url:
            yield self.page_request(source, page.next_url, state, page.next_stage)
        else:
            yield from self.finish_set(state)

    def parse_page(
        self, source: SourceConfig, response: Response, state: ResultSet, stage: str
    ) -> Page:
        raise NotImplementedError

    def result_set(
        self, source: SourceConfig, response: Response, fetched_at: datetime
    ) -> ResultSet:
        """The set this response belongs to (a new one for a first page), counted in."""
        state: ResultSet | None = response.meta.get(STATE)
        if state is None:
            state = ResultSet(
                source=source,
                fetched_at=fetched_at,
                url=strip_api_key(response.url),
                http_status=response.status,
                etag=header(response, "etag"),
                last_modified=header(response, "last-modified"),
            )
        state.pages += 1
        state.bytes += len(response.body)
        state.duration_ms += latency_ms(response)
        return state

    def finish_set(self, state: ResultSet) -> Iterator[Observation | SourceFetch | Request]:
        """Every document of the complete set, then the one OK record listing their keys."""
        record = self.set_record(
            state,
            OK,
            etag=state.etag,
            last_modified=state.last_modified,
            documents=len(state.documents),
            document_keys=list(state.documents),
        )
        yield from self.end_set(state, record)

    def end_set(
        self, state: ResultSet, record: SourceFetch
    ) -> Iterator[Observation | SourceFetch | Request]:
        """The set's documents and its record; first the documents they link, if followed."""
        if state.links:
            observations, links = list(state.documents.values()), list(state.links.values())
            yield from self.follow_documents(state.source, observations, record, links)
            return
        yield from state.documents.values()
        yield record

    def set_record(self, state: ResultSet, outcome: str, **fields: Any) -> SourceFetch:
        if "error" in fields:
            fields["error"] = redact(fields["error"])
            self.logger.warning("%s: %s", state.source.id, fields["error"])
        return SourceFetch(
            source_id=state.source.id,
            url=state.url,
            outcome=outcome,
            fetched_at=state.fetched_at,
            http_status=state.http_status,
            bytes=state.bytes,
            duration_ms=state.duration_ms,
            **fields,
        )

    def fetch_record(
        self,
        source: SourceConfig,
        response: Response,
        outcome: str,
        fetched_at: datetime,
        **fields: Any,
    ) -> SourceFetch:
        record = super().fetch_record(source, response, outcome, fetched_at, **fields)
        return without_key(record)

    def on_error(self, failure: Failure) -> Iterator[SourceFetch]:
        for record in super().on_error(failure):
            yield without_key(record)

    # --- helpers for subclasses ----------------------------------------------------------------

    def json_body(self, response: Response) -> Any:
        """The decoded JSON body; a non-JSON body raises, which fails the fetch with the reason."""
        content_type = header(response, "content-type") or "no content-type"
        if not response.body.strip():
            raise ValueError(f"empty body ({content_type}) from {response.url}")
        try:
            return json.loads(response.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(
                f"expected JSON from {response.url}, got {content_type}: {error}"
            ) from None

    def document(
        self,
        state: ResultSet,
        response: Response,
        *,
        key: str,
        url: str,
        title: str,
        content: str,
        content_type: str,
    ) -> Observation:
        return self.observation(
            state.source,
            response,
            state.fetched_at,
            key=key,
            url=strip_api_key(url),
            title=title,
            content=content,
            content_type=content_type,
        )


def without_key(record: SourceFetch) -> SourceFetch:
    error = redact(record.error) if record.error else record.error
    return replace(
        record,
        url=strip_api_key(record.url),
        error=error,
        final_url=strip_api_key(record.final_url) if record.final_url else None,
        moved_to=strip_api_key(record.moved_to) if record.moved_to else None,
    )


def link_next(response: Response) -> str | None:
    """The `Link: <…>; rel="next"` URL (openFDA's search_after paging), if any."""
    value = header(response, "link")
    match = LINK_NEXT.search(value or "")
    return match.group(1) if match else None


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of a URL, the default port filled in; port -1 when it is invalid."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = -1
    return scheme, (parts.hostname or "").lower(), port or DEFAULT_PORTS.get(scheme)


def same_origin(first_url: str, other_url: str) -> bool:
    return origin(first_url) == origin(other_url)


def other_origin_problem(source_url: str, next_url: str) -> str:
    """Why a result set whose next page is on another origin ends there, incomplete.

    Following it would send the API key to a server that is not the source's (so it is never
    requested at all), and record another server's answers as pages of this source's complete
    set: documents it lacks would be reported removed. The documents gathered so far are kept
    (new and changed ones are real); no removal is inferred from an incomplete set.
    """
    scheme, host, port = origin(source_url)
    return (
        f"the next page is on another server ({strip_api_key(next_url)}), not the source's "
        f"{scheme}://{host}:{port}; not followed (the API key is sent only to the source's own "
        "origin), so the result set is incomplete: check the source's url"
    )


def base_url(url: str) -> str:
    """The URL without its query (the endpoint)."""
    return strip_api_key(url).partition("?")[0]
