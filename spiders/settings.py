"""Scrapy project settings: polite, honest defaults for crawling fda.gov.

`monitor.runtime.scrapy_addon.FdawatchAddon` overrides the politeness values from fdawatch.toml and
the environment and fills FDAWATCH_SOURCES / FDAWATCH_VALIDATORS; the values here are the defaults.
"""

from __future__ import annotations

from scrapy.settings import default_settings

BOT_NAME = "fdawatch"
SPIDER_MODULES = ["spiders"]
NEWSPIDER_MODULE = "spiders"

ADDONS = {"monitor.runtime.scrapy_addon.FdawatchAddon": 0}
# `scrapy crawl` checks `-a source=` and the configuration first: one line and exit 2, not a
# traceback and exit 0.
COMMANDS_MODULE = "monitor.runtime.scrapy_commands"

USER_AGENT = "fdawatch/0.1 (+https://github.com/fdawatch/fdawatch; regulatory change monitor)"
ROBOTSTXT_OBEY = True

# One request at a time per host, a second apart: fda.gov is a public service, not a benchmark.
DOWNLOAD_DELAY = 1.0
CONCURRENT_REQUESTS_PER_DOMAIN = 1
AUTOTHROTTLE_ENABLED = False

RETRY_ENABLED = True
RETRY_TIMES = 2
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408, 429]
# 429 / 503 with Retry-After: wait as asked, up to this many seconds, then retry (within
# RETRY_TIMES); a longer wait gives up for this run. Without the header RetryMiddleware retries.
RETRY_AFTER_MAX_DELAY = 120
# A redirect back to an already visited URL, or to another site, fails at once, with the reason.
REDIRECT_MAX_TIMES = 10
# Scrapy calls process_response from the highest number down (the downloader's side first), and
# process_request from the lowest up.
DOWNLOADER_MIDDLEWARES = {
    "scrapy.downloadermiddlewares.httpauth.HttpAuthMiddleware": None,
    "scrapy.downloadermiddlewares.stats.DownloaderStats": None,
    "spiders.delays.RequestDelayMiddleware": 50,  # the second look waits before it is sent
    "spiders.middlewares.RetryAfterMiddleware": 560,  # before RetryMiddleware (550) sees it
    # A redirect to a CDN's apology page is a block, seen before any redirect is followed:
    "spiders.blocks.BlockedRedirectMiddleware": 615,
    "spiders.middlewares.RedirectLoopMiddleware": 610,  # before RedirectMiddleware (600)
    # The compressed stream must be whole, checked before HttpCompressionMiddleware (590):
    "spiders.transfer.CompressedStreamMiddleware": 595,
    # After decompression: a connection-delimited body must visibly end; refusals and challenge
    # pages are blocks (and a refused host is not asked again); then the charset fallback.
    "spiders.transfer.CutShortMiddleware": 588,
    "spiders.blocks.BlockedResponseMiddleware": 587,
    "spiders.middlewares.LegacyCharsetMiddleware": 585,
    # next to the download handler, so it sees the cancelled download first:
    "spiders.middlewares.DownloadSizeMiddleware": 950,
}

# Components that do nothing for fdawatch still cost every request a call (or an async-generator
# layer over every item): no HTTP auth, no depth limit, no URL-length filter (which would drop a
# long API query silently), no Referer (our requests are not links a reader followed), and no
# byte counts in the stats.
SPIDER_MIDDLEWARES = {
    "scrapy.spidermiddlewares.referer.RefererMiddleware": None,
    "scrapy.spidermiddlewares.urllength.UrlLengthMiddleware": None,
    "scrapy.spidermiddlewares.depth.DepthMiddleware": None,
    "scrapy.spidermiddlewares.metacopy.MetaCopyDetectionMiddleware": None,  # a debugging aid
}

DOWNLOAD_TIMEOUT = 30
DOWNLOAD_MAXSIZE = 20 * 1024 * 1024
# Headers are bounded too (spiders/http_limits.py): past 100 header lines or 64 KiB of headers the
# fetch fails at once, instead of buffering a server's endless headers until memory runs out.
DOWNLOAD_HANDLERS = {
    "http": "spiders.http_limits.BoundedHeadersDownloadHandler",
    "https": "spiders.http_limits.BoundedHeadersDownloadHandler",
}
FDAWATCH_MAX_RESPONSE_HEADERS = 100
FDAWATCH_MAX_RESPONSE_HEADER_BYTES = 64 * 1024
DOWNLOAD_WARNSIZE = 5 * 1024 * 1024
# A truncated body must be a failed fetch, never a "change" that removed half the page.
DOWNLOAD_FAIL_ON_DATALOSS = True

COOKIES_ENABLED = False
# No consoles into a process that runs unattended: neither telnet nor Scrapy 2.19's HTTP
# remote-control server (which executes posted Python code) should ever listen.
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False
# ...and their classes are never even imported: the remote control imports aiohttp's web server
# (0.3 s of every crawl's start-up) before it reads REMOTE_CONTROL_ENABLED, and naming a class in
# EXTENSIONS (even as None) imports it, so they are left out of the base list itself.
EXTENSIONS_BASE = {
    name: order
    for name, order in default_settings.EXTENSIONS_BASE.items()
    if name.rsplit(".", 1)[-1] not in {"TelnetConsole", "RemoteControl"}
}

LOG_LEVEL = "INFO"
FEED_EXPORT_ENCODING = "utf-8"
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
