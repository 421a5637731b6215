"""The soak's loopback site: fda.gov-shaped pages and RSS feeds that change on a timetable.

Unlike `bench.fixture` (two fixed versions), this site lives in wall-clock time: the soak driver
calls `plant()` to edit a page (one sentence of `#main-content` replaced by "Revision NNNN: …",
the "Content current as of" date moved) or to add an item to a feed (the oldest rolls off), and
every planted edit carries a unique token so the report can tell which change found it. Some
pages also carry *noise*: a build notice outside `#main-content` that changes every few minutes,
so the page gets a new ETag and a full 200, and must never count as a change.

Faults: each request has a `fault_rate` chance of an HTTP 500 or a TCP reset (SO_LINGER 0), half
each; a share of faults also start a burst in which every request to that path fails for a few
seconds, so that Scrapy's retries fail too. Every answer is logged (time, path, status, fault)
for the report. ETag / Last-Modified on every page and feed, 304 on a match. Binds to 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import random
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from bench.fixture import _Handler as FixtureHandler
from bench.fixture import _paragraph, _rng, _sentence, httpdate

PARAGRAPHS = 30
FEED_ITEMS = 20
TOKEN = "Revision {:04d}"  # what a planted edit adds; the report looks for it in new snapshots


@dataclass(frozen=True)
class Edit:
    """One planted edit: the ground truth the report scores against."""

    number: int
    at: float  # time.time() when the site started serving it
    source_id: str
    path: str
    kind: str  # "page" (a sentence replaced) or "feed" (a new item)
    token: str
    item_url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "at": round(self.at, 3),
            "source_id": self.source_id,
            "path": self.path,
            "kind": self.kind,
            "token": self.token,
            "item_url": self.item_url,
        }


@dataclass
class SoakSite:
    """Pages and feeds with their edits so far; renders the body a path has right now."""

    pages: int
    feeds: int
    seed: int = 1
    noise_frac: float = 0.25
    noise_every: float = 120.0
    born: float = field(default_factory=time.time)
    base: str = ""
    _page_edits: dict[int, list[tuple[int, float]]] = field(default_factory=dict, repr=False)
    _feed_edits: dict[int, list[tuple[int, float]]] = field(default_factory=dict, repr=False)

    # --- names ---------------------------------------------------------------------------------

    def page_id(self, i: int) -> str:
        return f"soak_page_{i:02d}"

    def feed_id(self, f: int) -> str:
        return f"soak_feed_{f:02d}"

    def page_path(self, i: int) -> str:
        return f"/drugs/human-drug-compounding/soak-alert-{i:03d}"

    def feed_path(self, f: int) -> str:
        return f"/about-fda/contact-fda/rss/soak-feed-{f:02d}.xml"

    def item_url(self, f: int, n: int) -> str:
        return f"{self.base}/news-events/press-announcements/soak-{f:02d}-item-{n:04d}"

    def noisy(self, i: int) -> bool:
        """The last `noise_frac` of the pages carry the changing build notice."""
        return i >= self.pages - round(self.pages * self.noise_frac)

    def sources(self) -> list[dict[str, str]]:
        """id, kind, url of every source, pages first."""
        pages = [
            {"id": self.page_id(i), "kind": "page", "url": self.base + self.page_path(i)}
            for i in range(self.pages)
        ]
        feeds = [
            {"id": self.feed_id(f), "kind": "feed", "url": self.base + self.feed_path(f)}
            for f in range(self.feeds)
        ]
        return pages + feeds

    # --- edits ---------------------------------------------------------------------------------

    def plant(self, number: int, kind: str, index: int, now: float) -> Edit:
        """Apply edit `number` to page or feed `index` from `now` on; return its ground truth."""
        token = TOKEN.format(number)
        if kind == "page":
            self._page_edits.setdefault(index, []).append((number, now))
            return Edit(number, now, self.page_id(index), self.page_path(index), kind, token)
        self._feed_edits.setdefault(index, []).append((number, now))
        item = self.item_url(index, FEED_ITEMS + len(self._feed_edits[index]) - 1)
        return Edit(number, now, self.feed_id(index), self.feed_path(index), kind, token, item)

    # --- bodies --------------------------------------------------------------------------------

    def resolve(self, path: str) -> tuple[str, int] | None:
        for i in range(self.pages):
            if path == self.page_path(i):
                return "page", i
        for f in range(self.feeds):
            if path == self.feed_path(f):
                return "feed", f
        return None

    def body(self, kind: str, index: int, now: float) -> tuple[bytes, float]:
        """The body served now and when it last changed (for Last-Modified)."""
        if kind == "page":
            edits = self._page_edits.get(index, [])
            epoch = int((now - self.born) // self.noise_every) if self.noisy(index) else 0
            changed = max([self.born - 86_400, *(at for _, at in edits)])
            if epoch:
                changed = max(changed, self.born + epoch * self.noise_every)
            return self._page(index, edits, epoch).encode(), changed
        edits = self._feed_edits.get(index, [])
        changed = max([self.born - 86_400, *(at for _, at in edits)])
        return self._feed(index, edits).encode(), changed

    def _page(self, i: int, edits: list[tuple[int, float]], epoch: int) -> str:
        rng = _rng(self.seed, "soak-page", i)
        title = f"Compounded ketamine notice {i}: " + _sentence(rng, 5, 10)[:-1]
        paragraphs = [_paragraph(rng) for _ in range(PARAGRAPHS)]
        for number, _ in edits:  # a later edit of the same paragraph overwrites an earlier one
            slot = _rng(self.seed, "slot", i, number).randrange(PARAGRAPHS)
            rest = paragraphs[slot].split(". ", 1)[-1]
            sentence = _sentence(_rng(self.seed, "edit", number), 8, 16)
            paragraphs[slot] = f"{TOKEN.format(number)}: {sentence} {rest}"
        stamp = edits[-1][1] if edits else self.born - 86_400
        date_us = time.strftime("%m/%d/%Y", time.gmtime(stamp))
        date_iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))
        notice = ""
        if self.noisy(i):
            notice = (
                '<div class="lcds-site-alert" role="status">Site notice: scheduled maintenance '
                f"window, build {epoch:05d}</div>"
            )
        body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
        return (
            '<!DOCTYPE html>\n<html lang="en" dir="ltr"><head><meta charset="utf-8">'
            f"<title>{title} | FDA</title></head>\n"
            '<body class="path-node page-node-type-article">'
            '<a href="#main-content" class="skip-link">Skip to main content</a>'
            '<header role="banner" class="lcds-header"><section class="usa-banner"><p>An official '
            "website of the United States government</p></section>"
            '<div class="lcds-header__logo"><a href="/">U.S. Food and Drug Administration</a>'
            f"</div>{notice}"
            '<nav class="lcds-main-menu" aria-label="Main menu"><ul class="menu">'
            '<li><a href="/drugs">Drugs</a></li><li><a href="/news-events">News &amp; Events'
            "</a></li></ul></nav></header>\n"
            '<nav aria-label="Breadcrumb" class="lcds-breadcrumb"><ol><li><a href="/">Home</a>'
            '</li><li><a href="/drugs">Drugs</a></li>'
            '<li><a href="/drugs/human-drug-compounding">Human Drug Compounding</a></li></ol>'
            "</nav>\n"
            '<div role="main" id="main-content" class="main-content">'
            f'<h1 class="content-title">{title}</h1>\n{body}\n'
            '<div class="lcds-description-list--grid"><h2>Content current as of:</h2>'
            f'<p><time datetime="{date_iso}">{date_us}</time></p></div></div>\n'
            '<footer class="lcds-footer" role="contentinfo"><nav aria-label="Footer"><ul>'
            '<li><a href="/about-fda">About FDA</a></li><li><a href="/accessibility">'
            "Accessibility</a></li></ul></nav></footer></body></html>\n"
        )

    def _feed(self, f: int, edits: list[tuple[int, float]]) -> str:
        items: list[str] = []
        for n in range(FEED_ITEMS):  # the original items, newest first after the planted ones
            rng = _rng(self.seed, "soak-item", f, n)
            at = self.born - 86_400 - (FEED_ITEMS - n) * 3_600
            items.append(self._item(f, n, _sentence(rng, 5, 10)[:-1], _paragraph(rng), at))
        for offset, (number, at) in enumerate(edits):
            rng = _rng(self.seed, "soak-new-item", number)
            title = f"{TOKEN.format(number)}: {_sentence(rng, 5, 10)[:-1]}"
            items.append(self._item(f, FEED_ITEMS + offset, title, _paragraph(rng), at))
        newest = list(reversed(items))[:FEED_ITEMS]
        built = edits[-1][1] if edits else self.born - 86_400
        return (
            '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
            f"<title>FDA soak feed {f}</title><link>{self.base}/about-fda/rss</link>"
            f"<description>Soak feed {f}</description><lastBuildDate>{httpdate(built)}"
            f"</lastBuildDate>{''.join(newest)}</channel></rss>\n"
        )

    def _item(self, f: int, n: int, title: str, text: str, at: float) -> str:
        return (
            f"<item><title>{title}</title><link>{self.item_url(f, n)}</link>"
            f'<guid isPermaLink="false">soak-{f:02d}-{n:04d}</guid>'
            f"<pubDate>{httpdate(at)}</pubDate>"
            f"<description>&lt;p&gt;{text}&lt;/p&gt;</description></item>"
        )


@dataclass
class Faults:
    """Per-request fault draw: `rate` of requests fail (500 or reset); `burst_share` of those
    also make every request to that path fail for `burst_s` seconds."""

    rate: float = 0.035
    burst_share: float = 0.15
    burst_s: float = 8.0
    seed: int = 1
    _rng: random.Random = field(init=False, repr=False)
    _bursts: dict[str, float] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def draw(self, path: str, now: float) -> tuple[str | None, bool]:
        """(the fault for this request or None, whether it starts a burst)."""
        kind = "500" if self._rng.random() < 0.5 else "reset"
        if self._bursts.get(path, 0.0) > now:
            return kind, False
        if self._rng.random() >= self.rate:
            return None, False
        if self._rng.random() < self.burst_share:
            self._bursts[path] = now + self.burst_s
            return kind, True
        return kind, False


class SoakServer(ThreadingHTTPServer):
    """The HTTP side of `SoakSite`: 200 / 304, faults, robots.txt, and a log of every answer."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, site: SoakSite, faults: Faults) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.site, self.faults = site, faults
        site.base = f"http://127.0.0.1:{self.server_address[1]}"
        self.lock = threading.Lock()
        self.log: list[dict[str, Any]] = []

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="soak-site", daemon=True)
        thread.start()
        return thread

    def plant(self, number: int, kind: str, index: int) -> Edit:
        with self.lock:
            return self.site.plant(number, kind, index, time.time())

    def count(self, status: str) -> None:
        """Called by the handler's `_send`; the log below holds what the report needs."""

    def record(
        self, at: float, path: str, status: int | str, fault: str | None, burst: bool
    ) -> None:
        """One answer; `at` is when its body was chosen (an edit planted later is not in it)."""
        with self.lock:
            self.log.append(
                {"t": round(at, 3), "path": path, "status": status, "fault": fault}
                | ({"burst": True} if burst else {})
            )


class _Handler(FixtureHandler):
    """`bench.fixture`'s handler (quiet, HTTP/1.1, `_send`, `_not_modified`), timetable bodies."""

    server: SoakServer

    def do_GET(self) -> None:
        server, path = self.server, urlsplit(self.path).path
        with server.lock:  # the body and the log time are taken under the lock `plant` takes
            now = time.time()
            fault, burst = server.faults.draw(path, now)
            found = server.site.resolve(path)
            body, changed = server.site.body(*found, now) if found else (b"", 0.0)
        if fault == "reset":  # RST instead of an answer: SO_LINGER 0, then close
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return server.record(now, path, "reset", fault, burst)
        if fault == "500":
            self._send(500, b"internal server error\n", "text/plain")
            return server.record(now, path, 500, fault, burst)
        if path == "/robots.txt":
            self._send(200, b"User-agent: *\nAllow: /\n", "text/plain")
            return server.record(now, path, 200, None, False)
        if found is None:
            self._send(404, b"not found\n", "text/plain")
            return server.record(now, path, 404, None, False)
        ctype = "text/html; charset=utf-8" if found[0] == "page" else "application/rss+xml"
        etag = '"' + hashlib.sha1(body).hexdigest()[:20] + '"'
        headers = {"ETag": etag, "Last-Modified": httpdate(changed)}
        status = 304 if self._not_modified(etag, int(changed)) else 200
        self._send(status, b"" if status == 304 else body, ctype, headers)
        server.record(now, path, status, None, False)
