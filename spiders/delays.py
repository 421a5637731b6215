"""`RequestDelayMiddleware`: a request marked with a delay waits that long before it is sent.

The second look at a suspicious change (monitor.runtime.pipeline) is the same URL fetched again a
little later: a server that was mid-deploy, or a CDN edge serving a broken copy, has then had a
moment to recover. The wait runs on the reactor, so other sources keep downloading meanwhile.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

from spiders.middlewares import reactor_sleep

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler

#: Request meta key: seconds to wait before sending (set by `WatchSpider.second_look_request`).
DELAY = "fdawatch_delay"


class RequestDelayMiddleware:
    """Waits `request.meta["fdawatch_delay"]` seconds before the request goes out (priority 50)."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls()

    async def process_request(self, request: Request) -> None:
        delay = float(request.meta.pop(DELAY, 0) or 0)
        if delay > 0:
            await reactor_sleep(delay)
