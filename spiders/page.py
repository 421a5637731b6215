"""`scrapy crawl page -a source=<id>`: one watched region of one HTML page per source.

With `follow_documents = true` the PDFs linked from the region are fetched too, each its own
document of the source (spiders/documents.py).

A page whose selector matches nothing is reported as DRIFT, never as an empty document: a
redesigned fda.gov template must fail loudly instead of looking like "the warning was removed".
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import ClassVar

from cssselect import SelectorError
from parsel import SelectorList
from scrapy import Request
from scrapy.http import HtmlResponse, Response, TextResponse
from scrapy.selector import Selector

from monitor.items import DRIFT, GONE, HTML, Observation, SourceFetch
from monitor.sources import SourceConfig
from spiders.base import WatchSpider, header
from spiders.documents import FollowsDocuments, document_links


class PageSpider(FollowsDocuments, WatchSpider):
    name = "page"
    kind: ClassVar[str] = "page"
    missing_outcome: ClassVar[str] = GONE

    def parse_ok(
        self, source: SourceConfig, response: Response, fetched_at: datetime
    ) -> Iterator[Observation | SourceFetch | Request]:
        problem = not_html_problem(response)
        if problem:
            yield self.failed(source, response, fetched_at, problem)
            return
        assert isinstance(response, TextResponse)
        document = page_tree(response)
        try:
            region = document.css(source.selector)
        except (SelectorError, ValueError) as error:
            message = f"invalid CSS selector {source.selector!r}: {error}"
            yield self.failed(source, response, fetched_at, message)
            return
        if not region:
            elements = len(document.xpath("//*"))
            error = (
                f"selector {source.selector!r} matched nothing on {response.url} "
                f"(the page has {elements} elements)"
            )
            self.logger.error("%s: %s", source.id, error)
            yield self.fetch_record(source, response, DRIFT, fetched_at, error=error)
            return
        observation = self.observation(
            source,
            response,
            fetched_at,
            key=source.url,
            url=response.url,
            title=page_title(document),
            content="\n".join(region.getall()),
            content_type=HTML,
        )
        if source.follow_documents:
            record = self.ok_record(source, response, fetched_at, [observation])
            links = document_links(region, response.url)
            yield from self.follow_documents(source, [observation], record, links)
            return
        yield from self.finish(source, response, fetched_at, [observation])


def not_html_problem(response: Response) -> str | None:
    """Why a 2xx response cannot be read as an HTML page, or None when it can."""
    content_type = header(response, "content-type") or "no content-type"
    if not response.body.strip():
        return f"empty body ({content_type}) from {response.url}"
    if isinstance(response, HtmlResponse) or (
        isinstance(response, TextResponse) and "html" in content_type.lower()
    ):
        return None
    return f"expected an HTML page, got {content_type} from {response.url}"


def page_tree(response: TextResponse) -> Selector:
    """The page parsed once, the way `response.css` would, but not cached on the response.

    `response.css` caches its Selector on the response, and the Selector points back at the
    response: a reference cycle that keeps the body, its decoded text and the whole libxml2 tree
    (~1 MB for an 80 KB page) alive until Python's full garbage collection, which a crawl runs
    rarely: hundreds of pages piled up between collections (the benchmark's first crawl of 1,000
    pages peaked at ~230 MB, ~120 MB without them). Uncached, a page goes as soon as the spider is
    done with it.
    """
    return Selector(response)


def page_title(document: Selector) -> str:
    """The page's first <h1> (what a reader sees), else its <title>, whitespace-collapsed."""
    for found in (document.css("h1"), document.css("title")):
        text = first_text(found)
        if text:
            return text
    return ""


def first_text(found: SelectorList[Selector]) -> str:
    for node in found:
        text = " ".join(node.xpath("string()").get("").split())
        if text:
            return text
    return ""
