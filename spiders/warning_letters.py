"""`fda_warning_letters`: FDA warning letters found by the listing's own search (catalog 2F F1).

FDA publishes no feed or API for warning letters. The listing page
(…/compliance-actions-and-activities/warning-letters) loads its table from a Drupal DataTables
endpoint, `/datatables/views/ajax?view_name=warning_letter_solr_index&…`, which takes the
page's full-text search as `search_api_fulltext=` and answers JSON:

    {"draw": 1, "recordsTotal": 3313, "recordsFiltered": 12,
     "data": [[posted date, letter issue date, <a href=letter>company</a>, issuing office,
               subject, response letter, closeout letter], …]}

(cells are HTML fragments; dates as `<time datetime=…>`). A source's `url` is that query. The
endpoint answers an empty table unless the request says it is an XMLHttpRequest, so every
listing request sends `X-Requested-With: XMLHttpRequest`.

Each letter in the listing that is not stored yet is fetched (its fda.gov page; the source's
`selector`, `#main-content` on fda.gov) and observed as its own `html` document keyed by its
canonical URL. The keys already stored come from the history through the Scrapy settings
(`FDAWATCH_KNOWN_DOCUMENTS`, filled by monitor.runtime.scrapy_addon), so a stored letter costs
nothing.
When every letter on a listing page is new, the next page is read too (up to
`MAX_LISTING_PAGES`), so a wave of letters posted between two checks is not cut off; on a
source's first fetch only the first page is read (that is the baseline).

The listing shows the newest letters; older ones roll off it. This kind is a listing
(monitor.sources.LISTING_KINDS), so a letter leaving the listing is never a removal.

Failing loudly: an answer that is not this JSON shape (no `data` list, rows that are not cell
lists, a row without a warning-letter link, an empty table while `recordsFiltered` says there
are letters) fails the whole fetch with the reason and records nothing. A letter page that fails
(HTTP error, network error, selector matching nothing) fails the fetch too, naming the letter,
after the other letters are recorded; the failed one is not stored, so the next check tries it
again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urljoin, urlsplit

from cssselect import SelectorError
from parsel import Selector
from scrapy import Request
from scrapy.http import TextResponse

from monitor.items import BLOCKED, FAILED, OK, Observation, SourceFetch, canonical_url
from spiders.api import query_param, with_param
from spiders.base import (
    HANDLED_STATUSES,
    MAX_ERROR_CHARS,
    WatchSpider,
    describe_failure,
    header,
    latency_ms,
)
from spiders.blocks import Blocked, Evidence
from spiders.page import not_html_problem, page_tree

if TYPE_CHECKING:
    from scrapy.http import Response
    from twisted.python.failure import Failure

    from monitor.sources import SourceConfig

STATE = "fdawatch_letters"
LETTER = "fdawatch_letter"
#: Listing pages read in one fetch while every letter on them is new.
MAX_LISTING_PAGES = 10
#: The page whose table the endpoint serves (sent as Referer, as the page itself does).
LISTING_PAGE = (
    "https://www.fda.gov/inspections-compliance-enforcement-and-criminal-investigations/"
    "compliance-actions-and-activities/warning-letters"
)
LISTING_HEADERS = {
    "X-Requested-With": "XMLHttpRequest",
    "Accept": "application/json, text/javascript, */*; q=0.01",
    "Referer": LISTING_PAGE,
}
#: Columns of a listing row: posted, issued, company (link), office, subject, …
MIN_CELLS = 5
LETTER_PATH = "/warning-letters/"
MAX_TITLE_CHARS = 200


@dataclass(frozen=True)
class ListedLetter:
    """One row of the listing."""

    key: str  # canonical URL of the letter
    url: str  # the URL to fetch (absolute)
    company: str
    posted: str
    issued: str
    office: str
    subject: str

    @property
    def title(self) -> str:
        title = f"Warning letter to {self.company}" + (f": {self.subject}" if self.subject else "")
        return title[:MAX_TITLE_CHARS]


@dataclass
class LetterRun:
    """One fetch of one source: the listing so far, the letters still to fetch, what came."""

    source: SourceConfig
    fetched_at: datetime
    url: str
    http_status: int
    etag: str | None
    last_modified: str | None
    known: frozenset[str]
    queue: list[ListedLetter] = field(default_factory=list)
    queued: set[str] = field(default_factory=set)
    observations: list[Observation] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    blocked: Evidence | None = None  # a letter page was refused by the CDN
    listing_pages: int = 0
    bytes: int = 0
    duration_ms: int = 0

    def count(self, response: Response) -> None:
        self.bytes += len(response.body)
        self.duration_ms += latency_ms(response)


class ListingShapeError(ValueError):
    """The listing answer is not the DataTables JSON this spider reads."""


class WarningLettersSpider(WatchSpider):
    name = "fda_warning_letters"
    kind: ClassVar[str] = "fda_warning_letters"
    max_listing_pages: ClassVar[int] = MAX_LISTING_PAGES

    def build_request(self, source: SourceConfig, validators: dict[str, Any]) -> Request:
        request = super().build_request(source, validators)
        request.headers.update(LISTING_HEADERS)
        return request

    def known_keys(self, source: SourceConfig) -> frozenset[str]:
        """The letter keys already stored for `source` (monitor.runtime.scrapy_addon)."""
        raw = self.settings.getdict("FDAWATCH_KNOWN_DOCUMENTS")
        return frozenset(raw.get(source.id) or ())

    # --- the listing -----------------------------------------------------------------------------

    def parse_ok(
        self, source: SourceConfig, response: Response, fetched_at: datetime
    ) -> Iterator[Observation | SourceFetch | Request]:
        run: LetterRun | None = response.meta.get(STATE)
        if run is None:
            run = LetterRun(
                source=source,
                fetched_at=fetched_at,
                url=response.url,
                http_status=response.status,
                etag=header(response, "etag"),
                last_modified=header(response, "last-modified"),
                known=self.known_keys(source),
            )
        run.count(response)
        run.listing_pages += 1
        letters, filtered = listing_letters(response)
        seen = run.known | run.queued
        fresh = [letter for letter in letters if letter.key not in seen]
        run.queue.extend(fresh)
        run.queued.update(letter.key for letter in fresh)
        start = int(query_param(response.url, "start") or 0)
        more = start + len(letters) < filtered
        if run.known and letters and len(fresh) == len(letters) and more:
            if run.listing_pages < self.max_listing_pages:
                next_url = with_param(response.url, "start", start + len(letters))
                yield self.listing_request(run, next_url)
                return
            run.problems.append(
                f"every letter on the first {run.listing_pages} listing pages is new: older new "
                "letters may be missed; check the source more often"
            )
        yield from self.next_letter(run)

    def listing_request(self, run: LetterRun, url: str) -> Request:
        return Request(
            url,
            callback=self.parse,
            errback=self.on_error,
            headers=LISTING_HEADERS,
            dont_filter=True,
            meta={
                "source_id": run.source.id,
                "handle_httpstatus_list": HANDLED_STATUSES,
                "fdawatch_started": time.monotonic(),
                STATE: run,
            },
        )

    # --- the letters -----------------------------------------------------------------------------

    def next_letter(self, run: LetterRun) -> Iterator[Observation | SourceFetch | Request]:
        """The request of the next new letter, or (none left) the fetch's items."""
        if run.queue:
            letter = run.queue.pop(0)
            yield Request(
                letter.url,
                callback=self.parse_letter,
                errback=self.letter_failed,
                dont_filter=True,
                meta={
                    "source_id": run.source.id,
                    "handle_httpstatus_list": HANDLED_STATUSES,
                    STATE: run,
                    LETTER: letter,
                },
            )
            return
        yield from run.observations
        if run.blocked is not None:  # a refusal is a block, not a failure (see spiders/blocks.py)
            evidence = run.blocked
            record = self.run_record(run, BLOCKED, error=evidence.describe()[:MAX_ERROR_CHARS])
            yield replace(record, http_status=evidence.status, server=evidence.server)
        elif run.problems:
            error = "; ".join(run.problems)[:MAX_ERROR_CHARS]
            self.logger.warning("%s: %s", run.source.id, error)
            yield self.run_record(run, FAILED, error=error)
        else:
            yield self.run_record(run, OK, etag=run.etag, last_modified=run.last_modified)

    def parse_letter(
        self, response: Response, **kwargs: Any
    ) -> Iterator[Observation | SourceFetch | Request]:
        run: LetterRun = response.meta[STATE]
        letter: ListedLetter = response.meta[LETTER]
        run.count(response)
        try:
            observation, problem = self.letter_observation(run, letter, response)
        except Exception as error:  # a parser crash must still end in the fetch record
            self.logger.exception("%s: could not parse %s", run.source.id, response.url)
            observation, problem = None, f"parse error: {type(error).__name__}: {error}"
        if observation is not None:
            run.observations.append(observation)
        if problem:
            run.problems.append(f"letter {letter.url}: {problem}")
        yield from self.next_letter(run)

    def letter_observation(
        self, run: LetterRun, letter: ListedLetter, response: Response
    ) -> tuple[Observation | None, str | None]:
        """The letter's watched region as a document, or why it could not be read."""
        if not 200 <= response.status < 300:
            return None, f"HTTP {response.status}"
        problem = not_html_problem(response)
        if problem:
            return None, problem
        assert isinstance(response, TextResponse)
        try:
            region = page_tree(response).css(run.source.selector)
        except (SelectorError, ValueError) as error:
            return None, f"invalid CSS selector {run.source.selector!r}: {error}"
        if not region:
            return None, f"selector {run.source.selector!r} matched nothing (layout drift?)"
        observation = self.observation(
            run.source,
            response,
            run.fetched_at,
            key=letter.key,
            url=response.url,
            title=letter.title,
            content="\n".join(region.getall()),
            content_type="html",
            published=letter.posted or None,
        )
        return observation, None

    def letter_failed(self, failure: Failure) -> Iterator[Observation | SourceFetch | Request]:
        """A letter that could not be downloaded: noted, and the other letters go on."""
        request: Request = failure.request  # type: ignore[attr-defined]
        run: LetterRun = request.meta[STATE]
        letter: ListedLetter = request.meta[LETTER]
        if isinstance(failure.value, Blocked):
            run.blocked = failure.value.evidence
            run.queue.clear()  # the host refuses us: the other new letters wait for the next check
        run.problems.append(f"letter {letter.url}: {describe_failure(failure)}")
        yield from self.next_letter(run)

    def run_record(self, run: LetterRun, outcome: str, **fields: Any) -> SourceFetch:
        return SourceFetch(
            source_id=run.source.id,
            url=run.url,
            outcome=outcome,
            fetched_at=run.fetched_at,
            http_status=run.http_status,
            documents=len(run.observations),
            document_keys=[o.key for o in run.observations],
            bytes=run.bytes,
            duration_ms=run.duration_ms,
            **fields,
        )


# --- reading the listing -------------------------------------------------------------------------


def listing_letters(response: Response) -> tuple[list[ListedLetter], int]:
    """(the letters of one listing answer, `recordsFiltered`); ListingShapeError if unreadable.

    The messages leave the URL out: the fetch record carries it, and the error has 300 characters.
    """
    content_type = header(response, "content-type") or "no content-type"
    if not response.body.strip():
        raise ListingShapeError(f"empty body ({content_type}) instead of the listing's JSON")
    try:
        data = json.loads(response.body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ListingShapeError(
            f"expected the warning-letter listing's JSON, got {content_type}"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise ListingShapeError("the warning-letter listing has no 'data' list: its shape changed")
    filtered = whole_number(data.get("recordsFiltered"))
    if filtered is None:
        raise ListingShapeError("the warning-letter listing has no recordsFiltered count")
    rows: list[Any] = data["data"]
    if not rows and filtered > 0 and not int(query_param(response.url, "start") or 0):
        raise ListingShapeError(
            f"the warning-letter listing lists no rows but says recordsFiltered {filtered}: the "
            "request was not taken as the page's own (X-Requested-With header?) or the view "
            "changed"
        )
    return [row_letter(row, number, response.url) for number, row in enumerate(rows, 1)], filtered


def row_letter(row: Any, number: int, base: str) -> ListedLetter:
    if not isinstance(row, list) or len(row) < MIN_CELLS:
        raise ListingShapeError(
            f"warning-letter listing row {number} is not a list of {MIN_CELLS} or more cells "
            f"(got {type(row).__name__}): the listing's shape changed"
        )
    cells = [Selector(text=f"<div>{cell if isinstance(cell, str) else ''}</div>") for cell in row]
    href = (cells[2].css("a::attr(href)").get() or "").strip()
    if LETTER_PATH not in urlsplit(href).path:
        raise ListingShapeError(
            f"warning-letter listing row {number} has no link to a warning letter in its "
            f"company column (got {str(row[2])[:80]!r}): the listing's shape changed"
        )
    url = urljoin(base, href)
    return ListedLetter(
        key=canonical_url(url),
        url=url,
        company=cell_text(cells[2]),
        posted=cell_date(cells[0]),
        issued=cell_date(cells[1]),
        office=cell_text(cells[3]),
        subject=cell_text(cells[4]),
    )


def cell_text(cell: Selector) -> str:
    return " ".join(cell.xpath("string()").get("").split())


def cell_date(cell: Selector) -> str:
    """A date cell: its `<time datetime>` (the date part), else its text as shown."""
    stamp = cell.css("time::attr(datetime)").get()
    return stamp.strip()[:10] if stamp else cell_text(cell)


def whole_number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None
