"""What the page and feed spiders share: picking sources, building requests, status and errors.

Every fetch of a source ends in exactly one `SourceFetch`, yielded after that source's
`Observation`s, whatever happened: a 304, an HTTP error, a network error or a parse problem. The
monitor relies on that to keep source health and validators right, so no path may yield nothing.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from scrapy import Request, Spider
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
)
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet.error import (
    ConnectError,
    ConnectionDone,
    ConnectionLost,
    DNSLookupError,
    TCPTimedOutError,
)
from twisted.internet.error import ConnectionRefusedError as TxConnectionRefusedError
from twisted.internet.error import TimeoutError as TxTimeoutError
from twisted.web._newclient import ResponseFailed, ResponseNeverReceived
from twisted.web.http import PotentialDataLoss, _DataLoss

from monitor.items import BLOCKED, FAILED, NOT_MODIFIED, OK, Observation, SourceFetch
from monitor.sources import SourceConfig
from spiders.blocks import Blocked
from spiders.delays import DELAY
from spiders.middlewares import RateLimited, RedirectLoop
from spiders.transfer import TruncatedBody

if TYPE_CHECKING:
    from scrapy.http import Response
    from twisted.python.failure import Failure

#: Statuses the spider handles itself. Redirect codes are left out on purpose: Scrapy's
#: RedirectMiddleware stops following redirects for any status a request says it handles (and
#: for every status under `handle_httpstatus_all`), and moved FDA pages must still be followed.
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
#: Redirects that say "this address has moved for good": following one is a `moved` change.
PERMANENT_REDIRECTS = frozenset({301, 308})
HANDLED_STATUSES = [status for status in range(100, 600) if status not in REDIRECT_STATUSES]

#: (short kind, exception types) — the first kind found anywhere in a failure's chain wins, so
#: specific causes come before the Scrapy wrappers that carry them.
ERROR_KINDS: tuple[tuple[str, tuple[type[BaseException], ...]], ...] = (
    ("rate limited", (RateLimited,)),
    ("redirect loop", (RedirectLoop,)),
    ("dns", (CannotResolveHostError, DNSLookupError)),
    ("connection refused", (DownloadConnectionRefusedError, TxConnectionRefusedError)),
    ("timeout", (DownloadTimeoutError, TxTimeoutError, TCPTimedOutError)),
    ("data loss", (TruncatedBody, ResponseDataLossError, _DataLoss, PotentialDataLoss)),
    ("no response", (ResponseNeverReceived,)),
    ("response failed", (DownloadFailedError, ResponseFailed)),
    ("cancelled", (DownloadCancelledError,)),
    ("http error", (HttpError,)),
    ("ignored", (IgnoreRequest,)),
    ("connection", (ConnectError, ConnectionLost, ConnectionDone)),
)
MAX_ERROR_CHARS = 300
HEADER_NAMES = ("content-type", "etag", "last-modified", "date")
#: Request meta: this request re-checks a change the first look held back, after this many seconds.
SECOND_LOOK = "fdawatch_second_look"


class WatchSpider(Spider):
    """Base of the `page` and `feed` spiders; subclasses set `kind` and implement `parse_ok`."""

    kind: ClassVar[str]
    #: What a 404 / 410 means for this kind of source.
    missing_outcome: ClassVar[str] = FAILED

    def __init__(self, *args: Any, source: str = "all", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.source_arg = source

    @cached_property
    def sources(self) -> dict[str, SourceConfig]:
        """The selected sources, read at first use: Scrapy creates the spider before add-ons
        (which fill FDAWATCH_SOURCES) run, so `__init__` / `from_crawler` would see none."""
        raw = self.settings.getdict("FDAWATCH_SOURCES")
        configured = {key: SourceConfig.coerce(value) for key, value in raw.items()}
        return select_sources(configured, self.source_arg, self.kind)

    async def start(self) -> AsyncIterator[Request]:
        """One request per selected source; a bad `-a source=` raises here, before any fetch."""
        validators = self.settings.getdict("FDAWATCH_VALIDATORS")
        if not self.sources:
            self.logger.warning("no %s sources configured: nothing to fetch", self.kind)
        for source in self.sources.values():
            yield self.build_request(source, validators.get(source.id) or {})

    def build_request(self, source: SourceConfig, validators: dict[str, Any]) -> Request:
        """One GET per source, conditional when the monitor knows the last validators.

        A source that follows its documents always gets its page (small): a 304 would hide the
        links, and a changed PDF behind an unchanged link is what it watches for. Each document
        is then asked conditionally (spiders/documents.py).
        """
        headers = conditional_headers({} if source.follow_documents else validators)
        meta: dict[str, Any] = {
            "source_id": source.id,
            "handle_httpstatus_list": HANDLED_STATUSES,
            "fdawatch_started": time.monotonic(),
        }
        if source.max_bytes:
            meta["download_maxsize"] = source.max_bytes
        return Request(
            source.url,
            callback=self.parse,
            errback=self.on_error,
            headers=headers,
            dont_filter=True,
            meta=meta,
        )

    def second_look_request(self, source_id: str, delay: float) -> Request:
        """The same source fetched again, unconditionally, `delay` seconds from now.

        The history pipeline asks for it when a fetch would shrink a document to a fraction of
        its text (or add replacement characters): the change is raised only if this agrees.
        """
        request = self.build_request(self.sources[source_id], {})
        request.meta[SECOND_LOOK] = True
        request.meta[DELAY] = delay
        return request

    def parse(self, response: Response, **kwargs: Any) -> Iterator[Observation | SourceFetch]:
        """Status handling common to all sources; a 2xx body goes to `parse_ok`."""
        source = self.sources[response.meta["source_id"]]
        fetched_at = datetime.now(UTC)
        status = response.status
        if status == 304:
            yield self.fetch_record(source, response, NOT_MODIFIED, fetched_at)
        elif status in (404, 410) and redirected_from(response):
            # Not the source's own URL answering: a redirect led to a missing page. That is
            # worth a look, not a removal (a move or a block usually explains it).
            error = f"HTTP {status} at {response.url}, redirected from {redirected_from(response)}"
            yield self.fetch_record(source, response, FAILED, fetched_at, error=error)
        elif status in (404, 410):
            outcome = self.missing_outcome
            yield self.fetch_record(source, response, outcome, fetched_at, error=f"HTTP {status}")
        elif not 200 <= status < 300:
            yield self.fetch_record(source, response, FAILED, fetched_at, error=f"HTTP {status}")
        else:
            yield from self.parse_guarded(source, response, fetched_at)

    def parse_guarded(
        self, source: SourceConfig, response: Response, fetched_at: datetime
    ) -> list[Observation | SourceFetch]:
        """`parse_ok`, but a parser crash still ends in a FAILED record, not in silence."""
        try:
            return list(self.parse_ok(source, response, fetched_at))
        except Exception as error:
            self.logger.exception("%s: could not parse %s", source.id, response.url)
            message = f"parse error: {type(error).__name__}: {error}"[:MAX_ERROR_CHARS]
            return [self.failed(source, response, fetched_at, message)]

    def parse_ok(
        self, source: SourceConfig, response: Response, fetched_at: datetime
    ) -> Iterable[Observation | SourceFetch]:
        raise NotImplementedError

    def finish(
        self,
        source: SourceConfig,
        response: Response,
        fetched_at: datetime,
        observations: list[Observation],
    ) -> Iterator[Observation | SourceFetch]:
        """Yield the observations, then the OK record carrying the new validators."""
        yield from observations
        yield self.ok_record(source, response, fetched_at, observations)

    def ok_record(
        self,
        source: SourceConfig,
        response: Response,
        fetched_at: datetime,
        observations: list[Observation],
    ) -> SourceFetch:
        return self.fetch_record(
            source,
            response,
            OK,
            fetched_at,
            etag=header(response, "etag"),
            last_modified=header(response, "last-modified"),
            documents=len(observations),
            document_keys=[o.key for o in observations],
        )

    def fetch_record(
        self,
        source: SourceConfig,
        response: Response,
        outcome: str,
        fetched_at: datetime,
        **fields: Any,
    ) -> SourceFetch:
        """A SourceFetch for a response that arrived (whatever its status)."""
        origin = redirected_from(response)
        return SourceFetch(
            source_id=source.id,
            url=response.url,
            outcome=outcome,
            fetched_at=fetched_at,
            http_status=response.status,
            bytes=len(response.body),
            duration_ms=latency_ms(response),
            final_url=response.url if origin else None,
            moved_to=moved_to(response),
            server=header(response, "server"),
            second_look=bool(response.meta.get(SECOND_LOOK)),
            **fields,
        )

    def on_error(self, failure: Failure) -> Iterator[SourceFetch]:
        """Network errors (after retries), robots.txt refusals etc. become a FAILED record."""
        request: Request = failure.request  # type: ignore[attr-defined]
        source = self.sources[request.meta["source_id"]]
        response = getattr(failure.value, "response", None)
        started = request.meta.get("fdawatch_started")
        duration_ms = round((time.monotonic() - started) * 1000) if started else 0
        second_look = bool(request.meta.get(SECOND_LOOK))
        if isinstance(failure.value, Blocked):
            evidence = failure.value.evidence
            self.logger.warning("%s: %s", source.id, evidence.describe())
            yield SourceFetch(
                source_id=source.id,
                url=request.url,
                outcome=BLOCKED,
                fetched_at=datetime.now(UTC),
                http_status=evidence.status,
                error=evidence.describe()[:MAX_ERROR_CHARS],
                duration_ms=duration_ms,
                final_url=evidence.url if evidence.url != request.url else None,
                server=evidence.server,
                second_look=second_look,
            )
            return
        error = describe_failure(failure)
        self.logger.warning("%s: fetch failed: %s", source.id, error)
        yield SourceFetch(
            source_id=source.id,
            url=request.url,
            outcome=FAILED,
            fetched_at=datetime.now(UTC),
            http_status=response.status if response is not None else None,
            error=error,
            duration_ms=duration_ms,
            second_look=second_look,
        )

    def observation(
        self, source: SourceConfig, response: Response, fetched_at: datetime, **fields: Any
    ) -> Observation:
        """An Observation with the fields every kind fills the same way."""
        return Observation(
            source_id=source.id,
            fetched_at=fetched_at,
            http_status=response.status,
            body=response.body,
            headers=small_headers(response),
            **fields,
        )

    def failed(
        self, source: SourceConfig, response: Response, fetched_at: datetime, error: str
    ) -> SourceFetch:
        self.logger.warning("%s: %s", source.id, error)
        return self.fetch_record(source, response, FAILED, fetched_at, error=error)


def conditional_headers(validators: dict[str, Any]) -> dict[str, str]:
    """If-None-Match / If-Modified-Since from a stored ETag and Last-Modified (urlwatch's 304)."""
    headers: dict[str, str] = {}
    if validators.get("etag"):
        headers["If-None-Match"] = validators["etag"]
    if validators.get("last_modified"):
        headers["If-Modified-Since"] = validators["last_modified"]
    return headers


def select_sources(
    sources: dict[str, SourceConfig], arg: str, kind: str
) -> dict[str, SourceConfig]:
    """The sources named by the `source` spider argument: ids, comma-separated, or `all`."""
    own = {sid: s for sid, s in sources.items() if s.kind == kind}
    ids = [part.strip() for part in arg.split(",") if part.strip()]
    if not ids:
        raise ValueError(f"-a source= is empty; {valid_ids_hint(own, kind)}")
    if ids == ["all"]:
        return own
    for source_id in ids:
        if source_id not in sources:
            raise ValueError(f"unknown source id {source_id!r}; {valid_ids_hint(own, kind)}")
        if source_id not in own:
            other = sources[source_id].kind
            raise ValueError(
                f"source {source_id!r} is a {other} source: run `scrapy crawl {other} "
                f"-a source={source_id}`; {valid_ids_hint(own, kind)}"
            )
    return {source_id: own[source_id] for source_id in ids}


def valid_ids_hint(own: dict[str, SourceConfig], kind: str) -> str:
    if not own:
        return f"no {kind} sources are configured (FDAWATCH_SOURCES is empty)"
    return f"valid {kind} sources: {', '.join(own)} (or all)"


def too_many(source: SourceConfig, count: int) -> str:
    """The failure for a response holding more documents than the source allows."""
    return (
        f"{count} documents in one fetch, more than max_documents = {source.max_documents}: "
        f"not recorded; raise max_documents for {source.id!r} in sources.toml if this is expected"
    )


def redirected_from(response: Response) -> str | None:
    """The URL first asked for, when redirects led to this response; None when none did."""
    urls = response.meta.get("redirect_urls") or []
    return str(urls[0]) if urls and urls[0] != response.url else None


def moved_to(response: Response) -> str | None:
    """The new address when a permanent redirect (301 / 308) led to this response."""
    reasons = response.meta.get("redirect_reasons") or []
    if not redirected_from(response) or not any(r in PERMANENT_REDIRECTS for r in reasons):
        return None
    return response.url


def header(response: Response, name: str) -> str | None:
    value = response.headers.get(name)
    return value.decode("latin-1") if value is not None else None


def small_headers(response: Response) -> dict[str, str]:
    """The few response headers worth keeping as evidence next to the body."""
    values = {name: header(response, name) for name in HEADER_NAMES}
    return {name: value for name, value in values.items() if value is not None}


def latency_ms(response: Response) -> int:
    latency = response.meta.get("download_latency")
    return round(latency * 1000) if latency is not None else 0


def describe_failure(failure: Failure) -> str:
    """'<kind>: <message>', short enough for a health line and an alert email."""
    chain = list(exception_chain(failure.value))
    kind = next(
        (name for name, types in ERROR_KINDS for exc in chain if isinstance(exc, types)),
        type(failure.value).__name__,
    )
    return f"{kind}: {exception_message(failure.value)}"[:MAX_ERROR_CHARS]


def exception_chain(exc: BaseException | None, depth: int = 0) -> Iterator[BaseException]:
    """An exception, its causes and (for Twisted wrappers) the failures it wraps."""
    if exc is None or depth > 5:
        return
    yield exc
    for reason in getattr(exc, "reasons", None) or ():
        yield from exception_chain(reason.value, depth + 1)
    yield from exception_chain(exc.__cause__ or exc.__context__, depth + 1)


def exception_message(exc: BaseException) -> str:
    """Readable text even for Twisted wrappers, whose str() is a list of Failure reprs."""
    if isinstance(exc, HttpError) and exc.response is not None:
        return f"HTTP {exc.response.status} for {exc.response.url}"
    for candidate in exception_chain(exc):
        reasons = getattr(candidate, "reasons", None)
        if reasons:
            return "; ".join(reason_message(reason.value) for reason in reasons)
    return str(exc) or type(exc).__name__


def reason_message(exc: BaseException) -> str:
    """Twisted's _DataLoss and friends have no text: their name says what happened."""
    return str(exc) or type(exc).__name__.lstrip("_")
