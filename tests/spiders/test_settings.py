"""The crawl's Scrapy components: everything it needs, and nothing that only costs start-up.

Every crawl is its own process (the daemon starts one per due source group), so an import that
serves nothing is paid again on every crawl.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: What the crawl loads the way Scrapy would: every downloader middleware and extension named by
#: the project settings (base lists included), then the modules that must not be among them.
PROBE = """
import sys
from scrapy.utils.conf import build_component_list
from scrapy.utils.misc import load_object
from scrapy.utils.project import get_project_settings
settings = get_project_settings()
names = []
for key in ("DOWNLOADER_MIDDLEWARES", "SPIDER_MIDDLEWARES", "EXTENSIONS"):
    for path in build_component_list(settings.getwithbase(key)):
        load_object(path)
        names.append(path.rsplit(".", 1)[-1])
print(" ".join(sorted(names)))
print(" ".join(sorted(m for m in ("tldextract", "requests", "aiohttp") if m in sys.modules)))
"""


def test_the_crawl_loads_no_cookie_auth_or_console_component_and_keeps_its_own() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded, heavy = result.stdout.splitlines()
    names = set(loaded.split())
    assert not names & {"CookiesMiddleware", "HttpAuthMiddleware", "DownloaderStats"}
    assert not names & {"TelnetConsole", "RemoteControl"}
    # what fdawatch relies on is still there
    assert {"RobotsTxtMiddleware", "RetryMiddleware", "RedirectMiddleware"} <= names
    assert {"HttpCompressionMiddleware", "BlockedResponseMiddleware", "CutShortMiddleware"} <= names
    assert heavy == "", f"the crawl's components import {heavy}: ~45 ms of every crawl"
