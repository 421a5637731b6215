"""`federal_register`: Federal Register documents (catalog 2G G1): one record per document number.

A source's `url` is a `documents.json` query (conditions[term], conditions[agencies][], …;
brackets URL-encoded). Pages follow the API's `next_page_url`. The API serves a limited result
window (about 2,000 documents per query): a query whose `count` is larger than what the pages
gave is reported as an incomplete set (FAILED, documents kept), asking for a narrower query.
No API key is needed.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, ClassVar

from monitor.items import RECORD
from spiders.api import ApiSpider, Page, ResultSet

if TYPE_CHECKING:
    from scrapy.http import Response

    from monitor.sources import SourceConfig


class FederalRegisterSpider(ApiSpider):
    name = "federal_register"
    kind: ClassVar[str] = "federal_register"

    def parse_page(
        self, source: SourceConfig, response: Response, state: ResultSet, stage: str
    ) -> Page:
        data = self.json_body(response)
        if not isinstance(data, dict) or "count" not in data:
            raise ValueError(f"Federal Register answer without a count from {response.url}")
        results = [r for r in data.get("results") or [] if isinstance(r, dict)]
        observations = [
            self.document(
                state,
                response,
                key=str(result["document_number"]),
                url=str(result.get("html_url") or source.url),
                title=" ".join(str(result.get("title") or result["document_number"]).split()),
                content=json.dumps(result, sort_keys=True, ensure_ascii=False),
                content_type=RECORD,
            )
            for result in results
            if result.get("document_number")
        ]
        next_url = data.get("next_page_url") or None
        seen, count = state.received + len(results), int(data.get("count") or 0)
        incomplete = None
        if not next_url and seen < count:
            incomplete = (
                f"the Federal Register gave {seen} of {count} documents (its result window is "
                "limited); narrow the query, e.g. with conditions[publication_date][gte]"
            )
        return Page(observations, next_url=next_url, incomplete=incomplete)
