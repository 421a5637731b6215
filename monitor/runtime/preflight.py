"""`fdawatch sources --check`: one polite request per source, a verdict each, nothing recorded.

A new operator runs it on the production host before the first real crawl, because what FDA's
CDN answers depends on where the request comes from. It crawls with the real spiders and
middlewares (so a block, a drift or a move is recognised exactly as a crawl would), but through
`CheckPipeline`, which only keeps each source's `SourceFetch`: no database is opened, no validator
is sent, nothing is written.

Usage (the child form, for a process that has already crawled once):
    python -m monitor.runtime.preflight SOURCE_ID [SOURCE_ID …]   # JSON lines on stdout
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Self

from monitor.config import Settings, child_environment, load_settings
from monitor.items import BLOCKED, DRIFT, FAILED, GONE, NOT_MODIFIED, OK, SourceFetch
from monitor.sources import SourceConfig, load_sources, select

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

#: A failure whose message starts like this means the URL serves the wrong kind of document.
WRONG_TYPE = ("expected an HTML page", "not an RSS or Atom feed", "expected JSON", "not a readable")


@dataclass(frozen=True)
class CheckResult:
    """One source's verdict: ok, blocked, drift, wrong type, not found, moved, or error."""

    source_id: str
    verdict: str
    detail: str
    http_status: int | None = None

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Collected(dict[str, SourceFetch]):
    """The fetch record of each source, shared (not copied) through Scrapy's settings."""

    def __deepcopy__(self, memo: dict[int, Any]) -> Collected:
        return self


class CheckPipeline:
    """Keeps each source's SourceFetch; records nothing anywhere."""

    def __init__(self, collected: Collected) -> None:
        self.collected = collected

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler.settings["FDAWATCH_CHECK"])

    def process_item(self, item: Any) -> Any:
        if isinstance(item, SourceFetch):
            self.collected[item.source_id] = item
        return item


def verdict(source: SourceConfig, fetch: SourceFetch | None) -> CheckResult:
    """What a fetch says about a source's URL, in the words `sources --check` prints."""
    if fetch is None:
        return CheckResult(source.id, "error", "no answer before the check timed out")
    status = fetch.http_status
    error = fetch.error or ""
    if fetch.outcome in (OK, NOT_MODIFIED):
        if fetch.moved_to:
            return CheckResult(
                source.id, f"moved → {fetch.moved_to}",
                "a permanent redirect: set the source's url to the new address", status,
            )  # fmt: skip
        return CheckResult(source.id, "ok", f"{fetch.documents} document(s)", status)
    if fetch.outcome == BLOCKED:
        return CheckResult(source.id, "blocked", error, status)
    if fetch.outcome == DRIFT:
        return CheckResult(source.id, "drift", error, status)
    if fetch.outcome == GONE or (fetch.outcome == FAILED and status in (404, 410)):
        return CheckResult(source.id, "not found", error or f"HTTP {status}", status)
    if fetch.outcome == FAILED and error.startswith(WRONG_TYPE):
        return CheckResult(source.id, "wrong type", error, status)
    return CheckResult(source.id, "error", error or fetch.outcome, status)


def check_here(
    settings: Settings, sources: Sequence[SourceConfig], timeout: float
) -> list[CheckResult]:
    """The check in this process (which must not have crawled before: no reactor restart)."""
    from monitor.runtime.crawl_process import crawl_sources

    collected = Collected()
    crawl_sources(settings, sources, run_id=0, timeout=timeout, check=collected)
    return [verdict(source, collected.get(source.id)) for source in sources]


def check_in_child(
    settings: Settings, sources: Sequence[SourceConfig], timeout: float
) -> list[CheckResult]:
    """The check in a fresh child process (for callers whose reactor already ran)."""
    command = [sys.executable, "-m", "monitor.runtime.preflight", *[s.id for s in sources]]
    child = subprocess.run(
        command,
        env=child_environment(settings),
        capture_output=True,
        text=True,
        timeout=timeout + 30,
        check=False,
    )
    found = {}
    for line in child.stdout.splitlines():
        data = json.loads(line)
        found[data["source_id"]] = CheckResult(**data)
    detail = " ".join(child.stderr.strip().splitlines()[-1:]) or f"exit {child.returncode}"
    return [found.get(s.id) or CheckResult(s.id, "error", detail) for s in sources]


def main(argv: list[str] | None = None) -> int:
    ids = list(sys.argv[1:] if argv is None else argv)
    settings = load_settings()
    chosen = select(load_sources(settings.sources_path), ids)
    for result in check_here(settings, chosen, timeout=settings.crawl_timeout * 4 + 60):
        print(json.dumps(result.to_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
