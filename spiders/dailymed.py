"""`dailymed_spl`: DailyMed SPL labels and label listings (catalog 2C C1–C3, section 4).

A source's `url` is either

* a set id's version history, `…/services/v2/spls/{SETID}/history.json`: when it answers 200
  (it is fetched conditionally, so an unchanged history costs one 304), the current label
  `…/services/v2/spls/{SETID}.xml` is fetched and observed as one `label_spl` document keyed by
  the set id, diffed section by section (LOINC codes); or
* a search, `…/services/v2/spls.json?drug_name=ketamine&pagesize=100`: one record per set id
  (`setid`, `title`, `spl_version`, `published_date`), paged with `page=` until `total_pages`,
  so a new labeler's set id is a new document and a new version a changed one.

The next search page is built from our own URL (`page=N+1`), never from DailyMed's
`next_page_url`, which is known to drop the search parameters.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urljoin, urlsplit

from scrapy.http import TextResponse

from monitor.core import spl
from monitor.items import LABEL_SPL, RECORD
from spiders.api import ApiSpider, Page, ResultSet, strip_api_key, with_param

if TYPE_CHECKING:
    from scrapy.http import Response

    from monitor.sources import SourceConfig

HISTORY_SUFFIX = "/history.json"
SEARCH_SUFFIX = "/spls.json"
NO_PAGE = (None, "", "null")


def dailymed_mode(url: str) -> str | None:
    """ "history", "search", or None for a URL this spider cannot read."""
    path = urlsplit(url).path
    if path.endswith(HISTORY_SUFFIX):
        return "history"
    if path.endswith(SEARCH_SUFFIX):
        return "search"
    return None


class DailymedSplSpider(ApiSpider):
    name = "dailymed_spl"
    kind: ClassVar[str] = "dailymed_spl"

    def parse_page(
        self, source: SourceConfig, response: Response, state: ResultSet, stage: str
    ) -> Page:
        if stage == "spl":
            return self.label_page(response, state)
        mode = dailymed_mode(source.url)
        if mode == "history":
            return self.history_page(response, state)
        if mode == "search":
            return self.search_page(response, state)
        raise ValueError(
            f"source url {source.url} is neither …/spls/SETID/history.json nor …/spls.json"
        )

    def history_page(self, response: Response, state: ResultSet) -> Page:
        """The newest version of the set id; the label itself comes next."""
        versions = spl.parse_dailymed_versions(self.json_body(response))
        if not versions:
            raise ValueError(f"DailyMed history at {response.url} lists no versions")
        newest = max(versions, key=lambda version: version.spl_version)
        state.extra.update(setid=newest.setid, title=newest.title, version=newest.spl_version)
        path = urlsplit(response.url).path.removesuffix(HISTORY_SUFFIX) + ".xml"
        return Page([], next_url=urljoin(response.url, path), next_stage="spl")

    def label_page(self, response: Response, state: ResultSet) -> Page:
        """The SPL XML as one section-diffed document."""
        content = (
            response.text
            if isinstance(response, TextResponse)
            else response.body.decode("utf-8", "replace")
        )
        label = spl.parse_spl(content)
        if not label.sections:
            raise ValueError(f"the SPL at {response.url} has no sections")
        set_id = str(state.extra.get("setid") or label.set_id)
        observation = self.document(
            state,
            response,
            key=set_id,
            url=response.url,
            title=str(state.extra.get("title") or label.title),
            content=content,
            content_type=LABEL_SPL,
        )
        return Page([observation])

    def search_page(self, response: Response, state: ResultSet) -> Page:
        """One record per set id; the next page while `current_page < total_pages`."""
        data = self.json_body(response)
        if not isinstance(data.get("data"), list):
            raise ValueError(f"DailyMed answer without a data list from {response.url}")
        observations = [
            self.document(
                state,
                response,
                key=version.setid,
                url=urljoin(state.source.url, f"spls/{version.setid}.xml"),
                title=version.title or version.setid,
                content=json.dumps(asdict(version), sort_keys=True, ensure_ascii=False),
                content_type=RECORD,
            )
            for version in spl.parse_dailymed_versions(data)
        ]
        return Page(observations, next_url=next_search_page(response.url, data))


def next_search_page(url: str, data: dict[str, Any]) -> str | None:
    meta = data.get("metadata") or {}
    try:
        current, total = int(meta.get("current_page") or 1), int(meta.get("total_pages") or 1)
    except (TypeError, ValueError):
        current, total = 1, 1
    if current >= total and meta.get("next_page_url") in NO_PAGE:
        return None
    return with_param(strip_api_key(url), "page", current + 1)
