"""The Federal Register spiders: published documents, and the public-inspection desk.

`federal_register` (catalog 2G G1): a source's `url` is a `documents.json` query
(conditions[term], conditions[agencies][], …; brackets URL-encoded), one record per document
number. Pages follow the API's `next_page_url`. The API serves a limited result window (about
2,000 documents per query): a query whose `count` is larger than what the pages gave is reported
as an incomplete set (FAILED, documents kept), asking for a narrower query.

`federal_register_inspection` (catalog 2G G2): the documents on public inspection today,
`/api/v1/public-inspection-documents/current.json`, usually a day before they are published (the
Dec 30 2025 telemedicine extension was there first). That answer is one unpaginated list whose
`count` is its length, and it has no query filters, so the source's `terms` keep only the
filings that name them (monitor.history). Yesterday's filings leave the desk every day: the kind
is a listing (monitor.sources.LISTING_KINDS), so a filing that leaves is never a removal.

No API key is needed for either.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar

from monitor.items import RECORD
from spiders.api import ApiSpider, Page, ResultSet

if TYPE_CHECKING:
    from scrapy.http import Response

    from monitor.items import Observation
    from monitor.sources import SourceConfig

#: Public-inspection fields that change on every fetch without the document changing.
VOLATILE_FIELDS = frozenset({"page_views"})


class FederalRegisterSpider(ApiSpider):
    name = "federal_register"
    kind: ClassVar[str] = "federal_register"
    #: `follow_documents`: a document's `pdf_url` is its printed edition on govinfo, which never
    #: changes once published (a correction is a document of its own): read once, not re-asked.
    documents_immutable: ClassVar[bool] = True

    def parse_page(
        self, source: SourceConfig, response: Response, state: ResultSet, stage: str
    ) -> Page:
        data = self.json_body(response)
        if not isinstance(data, dict) or "count" not in data:
            raise ValueError(f"Federal Register answer without a count from {response.url}")
        results = [r for r in data.get("results") or [] if isinstance(r, dict)]
        observations = self.documents(state, response, results)
        next_url = data.get("next_page_url") or None
        seen, count = state.received + len(results), int(data.get("count") or 0)
        incomplete = None
        if not next_url and seen < count:
            incomplete = (
                f"the Federal Register gave {seen} of {count} documents (its result window is "
                "limited); narrow the query, e.g. with conditions[publication_date][gte]"
            )
        return Page(observations, next_url=next_url, incomplete=incomplete)

    def documents(
        self, state: ResultSet, response: Response, results: list[dict[str, Any]]
    ) -> list[Observation]:
        """One record per result with a document number (volatile counters left out)."""
        for result in results:
            if result.get("document_number"):
                title = " ".join(str(result.get("title") or result["document_number"]).split())
                state.link(result.get("pdf_url"), title)
        return [
            self.document(
                state,
                response,
                key=str(result["document_number"]),
                url=str(result.get("html_url") or state.source.url),
                title=" ".join(str(result.get("title") or result["document_number"]).split()),
                content=json.dumps(
                    {k: v for k, v in result.items() if k not in VOLATILE_FIELDS},
                    sort_keys=True,
                    ensure_ascii=False,
                ),
                content_type=RECORD,
            )
            for result in results
            if result.get("document_number")
        ]


class FederalRegisterInspectionSpider(FederalRegisterSpider):
    """`public-inspection-documents/current.json`: today's desk, one unpaginated list."""

    name = "federal_register_inspection"
    kind: ClassVar[str] = "federal_register_inspection"
    documents_immutable: ClassVar[bool] = False  # it follows none (monitor.sources.FOLLOW_KINDS)

    def parse_page(
        self, source: SourceConfig, response: Response, state: ResultSet, stage: str
    ) -> Page:
        data = self.json_body(response)
        count = data.get("count") if isinstance(data, dict) else None
        if not isinstance(count, int) or isinstance(count, bool):
            raise ValueError(
                f"Federal Register public-inspection answer without a count from {response.url}"
            )
        results = data.get("results")
        if results is None and count == 0:
            results = []
        if not isinstance(results, list) or len(results) != count:
            listed = len(results) if isinstance(results, list) else "no"
            raise ValueError(
                f"Federal Register public-inspection answer from {response.url} lists {listed} "
                f"results but says count {count}: the list is no longer the whole desk"
            )
        kept = [result for result in results if isinstance(result, dict)]
        return Page(self.documents(state, response, kept))
