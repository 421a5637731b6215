"""A loopback site of fda.gov-like pages and RSS feeds with planted changes, for the benchmark.

Deterministic from a seed. Version 1 is the baseline; at version 2 a fraction of pages get a real
edit (a sentence edited, a paragraph added or removed), a further fraction get an edit that must
*not* count (only the "Content current as of" date, or only the navigation), and half the feeds
get 1–3 new items. `truth()` says exactly what changed, so the bench scores missed and spurious
changes against what it planted itself. Pages carry ETag / Last-Modified and answer 304.

Faults (fractions of first requests per path and version, so a retry in the same run succeeds):
HTTP 500, 429 with Retry-After, a truncated body, a slow answer. `noise` adds invisible
per-request tokens inside the watched region (a hidden form field, a script nonce) and drops the
validators, as a Drupal page with a form does.

Binds to 127.0.0.1 only. Stdlib only, so it runs in any virtualenv.
"""

from __future__ import annotations

import hashlib
import json
import random
import secrets
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z; version v is dated T0 + (v - 1) days
DAY = 86_400
_TEXT = (
    "ketamine esketamine compounded product patient provider risk sedation dissociation blood "
    "pressure respiratory depression monitoring telemedicine pharmacy outsourcing facility "
    "label REMS nasal spray oral lozenge tablet adverse event report MedWatch psychiatric "
    "disorder treatment depression approval indication dose administration home clinic "
    "health care professional warning letter inspection recall statement the of and to in "
    "for with by from as is are was be has this that which may will should not all any"
)
WORDS = _TEXT.split()
REAL_EDITS = ("edit", "add", "remove")
DECOYS = ("date", "nav")


def _rng(*parts: object) -> random.Random:
    return random.Random(hashlib.blake2b(repr(parts).encode(), digest_size=8).digest())


def _sentence(rng: random.Random, lo: int = 8, hi: int = 22) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(lo, hi))]
    return " ".join(words).capitalize() + "."


def _paragraph(rng: random.Random) -> str:
    return " ".join(_sentence(rng) for _ in range(rng.randint(2, 5)))


def httpdate(ts: float) -> str:
    return formatdate(ts, usegmt=True)


@dataclass
class Site:
    """The content of every page and feed at every version, and the ground truth between them."""

    pages: int = 1000
    feeds: int = 50
    seed: int = 1
    change_frac: float = 0.2
    decoy_frac: float = 0.1
    feed_change_frac: float = 0.5
    min_kb: int = 20
    max_kb: int = 150
    _cache: dict[tuple[str, int, int], bytes] = field(default_factory=dict, repr=False)

    def plan(self, i: int) -> str:
        """What happens to page i at version 2: a real edit, a decoy, or nothing."""
        rng = _rng(self.seed, "plan", i)
        draw = rng.random()
        if draw < self.change_frac:
            return rng.choice(REAL_EDITS)
        if draw < self.change_frac + self.decoy_frac:
            return rng.choice(DECOYS)
        return "none"

    def new_items(self, f: int, version: int) -> int:
        if version < 2 or _rng(self.seed, "feedplan", f).random() >= self.feed_change_frac:
            return 0
        return 1 + _rng(self.seed, "feednew", f).randrange(3)

    def page_url(self, base: str, i: int) -> str:
        return f"{base}/drugs/human-drug-compounding/alert-{i:05d}"

    def feed_url(self, base: str, f: int) -> str:
        return f"{base}/about-fda/rss/feed-{f:04d}.xml"

    def item_url(self, base: str, f: int, k: int) -> str:
        return f"{base}/news-events/feed-{f:04d}/item-{k:03d}"

    # --- pages -------------------------------------------------------------------------------

    def page_date(self, i: int, version: int) -> int:
        return T0 + DAY * (1 if version >= 2 and self.plan(i) != "none" else 0)

    def page(self, i: int, version: int, base: str) -> bytes:
        key = ("page", i, version)
        if key not in self._cache:
            self._cache[key] = self._render_page(i, version, base).encode()
        return self._cache[key]

    def _blocks(self, i: int, version: int) -> list[str]:
        rng = _rng(self.seed, "page", i)
        blocks: list[str] = [f"<p>[01/01/2026] {_paragraph(rng)}</p>"]
        for section in range(rng.randint(2, 5)):
            blocks.append(f'<h2 id="s{section}">{_sentence(rng, 3, 7)[:-1]}</h2>')
            for _ in range(rng.randint(2, 4)):
                blocks.append(f"<p>{_paragraph(rng)}</p>")
            if rng.random() < 0.5:
                count = rng.randint(3, 6)
                items = "".join(f"<li>{_sentence(rng, 5, 12)}</li>" for _ in range(count))
                blocks.append(f"<ul>{items}</ul>")
            if rng.random() < 0.25:
                rows = "".join(
                    f"<tr><td>{rng.randint(1, 12)}/{rng.randint(1, 28)}/2025</td>"
                    f"<td>{_sentence(rng, 3, 6)}</td></tr>"
                    for _ in range(rng.randint(2, 5))
                )
                blocks.append(f"<table><tr><th>Date</th><th>Product</th></tr>{rows}</table>")
        op = self.plan(i) if version >= 2 else "none"
        edit = _rng(self.seed, "edit", i)
        paragraphs = [n for n, block in enumerate(blocks) if block.startswith("<p>")]
        if op == "edit":
            n = edit.choice(paragraphs)
            sentences = blocks[n][3:-4].split(". ")
            k = edit.randrange(len(sentences))
            sentences[k] = f"{sentences[k]} (updated: {edit.choice(WORDS)} {edit.choice(WORDS)})"
            blocks[n] = "<p>" + ". ".join(sentences) + "</p>"
        elif op == "add":
            blocks.insert(edit.randrange(1, len(blocks) + 1), f"<p>{_paragraph(edit)}</p>")
        elif op == "remove":
            blocks.pop(edit.choice(paragraphs[1:] or paragraphs))
        return blocks

    def _render_page(self, i: int, version: int, base: str) -> str:
        rng = _rng(self.seed, "title", i)
        title = f"FDA alert {i}: " + _sentence(rng, 6, 12)[:-1]
        nav_version = 2 if version >= 2 and self.plan(i) == "nav" else 1
        menu = "".join(
            f'<li><a href="/{word}">{word.capitalize()}</a></li>'
            for word in WORDS[: 8 + (3 if nav_version == 2 else 0)]
        )
        stamp = self.page_date(i, version)
        date_iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))
        date_us = time.strftime("%m/%d/%Y", time.gmtime(stamp))
        crumb_extra = '<li><a href="/drugs/new-section">New section</a></li>' * (nav_version - 1)
        main = (
            '<main role="main" id="main-content" class="main-content">'
            '<nav aria-label="Breadcrumb" class="lcds-breadcrumb"><ol><li><a href="/">Home</a></li>'
            f'<li><a href="/drugs">Drugs</a></li>{crumb_extra}<li>{title}</li></ol></nav>'
            '<article class="main-content-col" role="article">'
            f'<header class="row content-header"><h1 class="content-title">{title}</h1></header>'
            '<div class="social-share"><ul class="share-links"><li><a href="#">Share</a></li>'
            '<li><a href="javascript:window.print();" class="print-link">Print</a></li></ul></div>'
            '<div class="inset-column" role="main">\n'
            + "\n".join(self._blocks(i, version))
            + '\n<p class="back-to-top"><a href="#main-content">Back to Top</a></p></div>'
            '<div class="col-md-8 col-md-push-2" role="complementary">'
            '<div class="lcds-description-list--grid"><ul class="list-unstyled">'
            '<li class="node-current-date"><div class="lcds-description-list__item">'
            '<h2 class="lcds-description-list__item-heading">Content current as of:</h2>'
            f'<p class="lcds-description-list__item-text"><time datetime="{date_iso}">{date_us}'
            "</time></p></div></li>"
            '<li><div class="lcds-description-list__item">'
            '<h2 class="lcds-description-list__item-heading">Regulated Product(s)</h2>'
            '<ul class="lcds-metadata-list" role="menu"><li role="menuitem">Drugs</li></ul>'
            "</div></li></ul></div></div>"
            "<!--NOISE--></article></main>\n"
        )
        head = (
            f'<!DOCTYPE html>\n<html lang="en" dir="ltr"><head><meta charset="utf-8">'
            f"<title>{title} | FDA</title>"
            f'<link rel="canonical" href="{self.page_url(base, i)}">'
            "<script>window.dataLayer = window.dataLayer || [];</script></head>\n"
            '<body class="path-node page-node-type-article">'
            '<a href="#main-content" class="skip-link visually-hidden focusable">Skip to main '
            'content</a><header role="banner" class="lcds-header">'
            '<section class="usa-banner"><p>An official website of the United States government'
            '</p></section><div class="lcds-header__logo"><a href="/">U.S. Food and Drug '
            'Administration</a></div><form class="lcds-search" action="/search"><input '
            'name="s" type="search"><button type="submit">Search</button></form>'
            f'<nav class="lcds-main-menu" aria-label="Main menu"><ul class="menu">{menu}</ul>'
            "</nav></header>\n"
        )
        footer = (
            '<footer class="lcds-footer" role="contentinfo"><nav aria-label="Footer"><ul>'
            '<li><a href="/about-fda">About FDA</a></li><li><a href="/accessibility">'
            f"Accessibility</a></li>{'<li>Archive</li>' * (nav_version - 1)}</ul></nav>"
            '<p><a href="/about-fda/contact-fda">Contact FDA</a></p></footer>\n'
            '<script src="/core/assets/vendor/jquery/jquery.min.js"></script></body></html>\n'
        )
        target = _rng(self.seed, "size", i).randint(self.min_kb, self.max_kb) * 1024
        room = target - len(head) - len(main) - len(footer)
        pad = _rng(self.seed, "aside", i)
        related: list[str] = []
        while room > 0:
            line = (
                f'<li class="related"><a href="/news-events/{pad.choice(WORDS)}-'
                f'{pad.randrange(9999)}">'
                f"{_sentence(pad, 5, 10)}</a></li>"
            )
            related.append(line)
            room -= len(line)
        aside = f'<aside class="sidebar"><h2>Related</h2><ul>{"".join(related)}</ul></aside>\n'
        return head + main + aside + footer

    # --- feeds -------------------------------------------------------------------------------

    def feed_size(self, f: int) -> int:
        return _rng(self.seed, "feedsize", f).randint(20, 50)

    def feed_items(self, f: int, version: int) -> range:
        """Item numbers shown at `version`: the newest `feed_size` (new ones push old ones out)."""
        total = self.feed_size(f) + self.new_items(f, version)
        return range(total - 1, total - 1 - self.feed_size(f), -1)

    def feed_date(self, f: int, version: int) -> int:
        return T0 + DAY * (1 if self.new_items(f, version) else 0)

    def feed(self, f: int, version: int, base: str) -> bytes:
        key = ("feed", f, version)
        if key not in self._cache:
            items = []
            for k in self.feed_items(f, version):
                rng = _rng(self.seed, "item", f, k)
                title = _sentence(rng, 5, 11)[:-1]
                items.append(
                    f"<item><title>{title}</title><link>{self.item_url(base, f, k)}</link>"
                    f'<guid isPermaLink="false">fixture-{f:04d}-{k:03d}</guid>'
                    f"<pubDate>{httpdate(T0 - (60 - k) * 3600)}</pubDate>"
                    f"<description>&lt;p&gt;{_paragraph(rng)}&lt;/p&gt;</description></item>"
                )
            xml = (
                '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
                f"<title>FDA feed {f}</title><link>{base}/about-fda/rss</link>"
                f"<description>Fixture feed {f}</description>"
                f"<lastBuildDate>{httpdate(self.feed_date(f, version))}</lastBuildDate>"
                + "".join(items)
                + "</channel></rss>\n"
            )
            self._cache[key] = xml.encode()
        return self._cache[key]

    # --- ground truth ------------------------------------------------------------------------

    def truth(self, base: str) -> dict[str, object]:
        """What changed from version 1 to 2: real page edits, decoys, new feed item URLs."""
        plans = {i: self.plan(i) for i in range(self.pages)}
        new_items = [
            self.item_url(base, f, k)
            for f in range(self.feeds)
            for k in self.feed_items(f, 2)
            if k not in self.feed_items(f, 1)
        ]
        return {
            "changed_pages": sorted(
                self.page_url(base, i) for i, op in plans.items() if op in REAL_EDITS
            ),
            "decoy_pages": sorted(
                self.page_url(base, i) for i, op in plans.items() if op in DECOYS
            ),
            "edits": {op: list(plans.values()).count(op) for op in (*REAL_EDITS, *DECOYS)},
            "new_feed_items": sorted(new_items),
            "changed_feeds": sum(1 for f in range(self.feeds) if self.new_items(f, 2)),
        }

    def forget(self, version: int) -> None:
        """Drop the rendered bodies of other versions (memory of the fixture, not of the tool)."""
        for key in [key for key in self._cache if key[2] != version]:
            del self._cache[key]


@dataclass
class Faults:
    err500: float = 0.0
    err429: float = 0.0
    truncate: float = 0.0
    slow: float = 0.0
    slow_ms: int = 1500
    retry_after: int = 1
    noise: bool = False

    def pick(self, draw: float) -> str | None:
        """The fault a draw in [0, 1) falls on, or None."""
        shares = (("500", self.err500), ("429", self.err429), ("truncated", self.truncate))
        for name, share in (*shares, ("slow", self.slow)):
            if draw < share:
                return name
            draw -= share
        return None


class FixtureServer(ThreadingHTTPServer):
    """The HTTP side: pages, feeds, 304s, faults, a version switch and the ground truth."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # the default backlog of 5 drops SYNs under 16 parallel requests

    def __init__(self, site: Site, faults: Faults | None = None, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.site = site
        self.faults = faults or Faults()
        self.version = 1
        self.lock = threading.Lock()
        self.attempts: dict[str, int] = {}
        self.stats: dict[str, int] = {}

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def set_version(self, version: int) -> None:
        """Switch every page and feed to `version` (and start counting attempts afresh)."""
        with self.lock:
            self.version = version
            self.attempts.clear()
            self.site.forget(version)

    def reset_stats(self) -> dict[str, int]:
        with self.lock:
            stats, self.stats = self.stats, {}
            self.attempts.clear()
        return stats

    def count(self, key: str) -> None:
        with self.lock:
            self.stats[key] = self.stats.get(key, 0) + 1

    def attempt(self, path: str) -> int:
        with self.lock:
            self.attempts[path] = self.attempts.get(path, 0) + 1
            return self.attempts[path]

    def index(self) -> dict[str, list[str]]:
        return {
            "pages": [self.site.page_url(self.base, i) for i in range(self.site.pages)],
            "feeds": [self.site.feed_url(self.base, f) for f in range(self.site.feeds)],
        }

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="bench-fixture", daemon=True)
        thread.start()
        return thread


class _Handler(BaseHTTPRequestHandler):
    server: FixtureServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet
        return

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        server, site = self.server, self.server.site
        if path == "/__index.json":
            return self._send(200, json.dumps(server.index()).encode(), "application/json")
        if path == "/robots.txt":
            return self._send(200, b"User-agent: *\nAllow: /\n", "text/plain")
        found = self._resolve(path)
        if found is None:
            return self._send(404, b"not found\n", "text/plain")
        kind, number = found
        version = server.version
        if kind == "page":
            body, stamp = site.page(number, version, server.base), site.page_date(number, version)
            ctype = "text/html; charset=utf-8"
        else:
            body, stamp = site.feed(number, version, server.base), site.feed_date(number, version)
            ctype = "application/rss+xml; charset=utf-8"
        if self._fault(path):
            return
        noise = server.faults.noise and kind == "page"
        if noise:
            token = (
                '<form class="node-form" action="/node"><input type="hidden" name="form_build_id" '
                f'value="form-{secrets.token_hex(16)}"></form>'
                f'<script nonce="{secrets.token_hex(8)}">window.__req="{secrets.token_hex(8)}";'
                "</script>"
            )
            body = body.replace(b"<!--NOISE-->", token.encode())
            return self._send(200, body, ctype)
        etag = '"' + hashlib.sha1(body).hexdigest()[:20] + '"'
        headers = {"ETag": etag, "Last-Modified": httpdate(stamp)}
        if self._not_modified(etag, stamp):
            return self._send(304, b"", ctype, headers)
        return self._send(200, body, ctype, headers)

    def _resolve(self, path: str) -> tuple[str, int] | None:
        site = self.server.site
        try:
            if path.startswith("/drugs/human-drug-compounding/alert-"):
                number = int(path.rsplit("-", 1)[1])
                return ("page", number) if number < site.pages else None
            if path.startswith("/about-fda/rss/feed-") and path.endswith(".xml"):
                number = int(path[len("/about-fda/rss/feed-") : -4])
                return ("feed", number) if number < site.feeds else None
        except ValueError:
            return None
        return None

    def _not_modified(self, etag: str, stamp: int) -> bool:
        match = self.headers.get("If-None-Match")
        if match is not None:
            return etag in [part.strip() for part in match.split(",")]
        since = self.headers.get("If-Modified-Since")
        if since:
            try:
                return parsedate_to_datetime(since).timestamp() >= stamp
            except (TypeError, ValueError):
                return False
        return False

    def _fault(self, path: str) -> bool:
        """Inject this path's planned fault on its first request of the version; True if sent."""
        server, faults = self.server, self.server.faults
        if server.attempt(path) != 1:
            return False
        name = faults.pick(_rng(server.site.seed, "fault", path, server.version).random())
        if name is None:
            return False
        server.count(f"fault_{name}")
        if name == "500":
            self._send(500, b"internal error\n", "text/plain")
        elif name == "429":
            headers = {"Retry-After": str(faults.retry_after)}
            self._send(429, b"slow down\n", "text/plain", headers)
        elif name == "truncated":
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", "50000")
            self.end_headers()
            self.wfile.write(b"<!DOCTYPE html><html><body><main>cut")
            self.wfile.flush()
            self.close_connection = True
        else:
            time.sleep(faults.slow_ms / 1000)
            return False  # slow, then the normal answer
        return True

    def _send(
        self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None
    ) -> None:
        self.server.count(str(status))
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if body:
            self.wfile.write(body)
