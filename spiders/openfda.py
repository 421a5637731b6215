"""The openFDA spiders: drug labels, recalls, shortages and Drugs@FDA approvals (catalog 2C–2D, 3).

Each source's `url` is a full openFDA query (`https://api.fda.gov/drug/label.json?search=…`).
Paging: `skip`/`limit` up to openFDA's skip limit of 25000, and the `Link: rel="next"` header
(`search_after`) whenever openFDA sends one. A 404 whose body says `error.code: NOT_FOUND` is
openFDA's "no match": an OK fetch with zero documents, not an outage.

One document per:

* `openfda_label` — label `set_id` (openFDA keeps only the current version of each set id);
* `openfda_recalls` — `recall_number`;
* `openfda_shortages` — `package_ndc`, or `generic_name|company_name|presentation` for a record
  without a package NDC (a shortage is listed per presentation);
* `openfda_drugsfda` — submission: `application_number submission_type submission_number`
  (e.g. `NDA211243 SUPPL 19`), so a new supplement is a new document.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from monitor.items import LABEL_OPENFDA, RECORD, Observation
from spiders.api import (
    ApiSpider,
    Page,
    ResultSet,
    base_url,
    link_next,
    query_param,
    strip_api_key,
    with_param,
)

if TYPE_CHECKING:
    from scrapy.http import Response

    from monitor.sources import SourceConfig

#: openFDA refuses `skip` beyond this; larger sets page with search_after (the Link header).
SKIP_LIMIT = 25000


class OpenfdaSpider(ApiSpider):
    """Paging and errors of every openFDA endpoint; subclasses turn results into documents."""

    uses_api_key: ClassVar[bool] = True

    def is_empty_result(self, response: Response) -> bool:
        try:
            error = json.loads(response.body).get("error") or {}
        except (ValueError, AttributeError):
            return False
        return isinstance(error, dict) and error.get("code") == "NOT_FOUND"

    def parse_page(
        self, source: SourceConfig, response: Response, state: ResultSet, stage: str
    ) -> Page:
        data = self.json_body(response)
        if not isinstance(data, dict) or not isinstance(data.get("results"), list):
            raise ValueError(f"openFDA answer without a results list from {response.url}")
        results = data["results"]
        observations = [
            observation
            for result in results
            if isinstance(result, dict)
            for observation in self.documents(state, response, result)
        ]
        next_url, incomplete = next_page(response, data, len(results))
        return Page(observations, next_url=next_url, incomplete=incomplete)

    def documents(
        self, state: ResultSet, response: Response, result: dict[str, Any]
    ) -> Iterator[Observation]:
        raise NotImplementedError

    def record(
        self,
        state: ResultSet,
        response: Response,
        key: str,
        title: str,
        record: dict[str, Any],
        url: str | None = None,
    ) -> Observation:
        """A record document; its link searches the endpoint for it by `key_field`."""
        search = f'{base_url(state.source.url)}?search={self.key_field}:"{key}"'
        return self.document(
            state,
            response,
            key=key,
            url=url or search,
            title=title,
            content=json.dumps(record, sort_keys=True, ensure_ascii=False),
            content_type=RECORD,
        )

    #: The field a per-document link searches by.
    key_field: ClassVar[str] = ""


def next_page(
    response: Response, data: dict[str, Any], count: int
) -> tuple[str | None, str | None]:
    """(next page URL, why the set cannot be completed): Link header first, else `skip`."""
    link = link_next(response)
    if link:
        return link, None
    if query_param(response.url, "search_after") is not None:
        return None, None  # search_after paging ends where openFDA stops sending a Link
    meta = (data.get("meta") or {}).get("results") or {}
    total, skip = int(meta.get("total") or 0), int(meta.get("skip") or 0)
    limit = int(meta.get("limit") or count or 1)
    if count == 0 or skip + count >= total:
        return None, None
    if skip + limit > SKIP_LIMIT:
        return None, (
            f"openFDA has {total} results but allows skip only up to {SKIP_LIMIT} and sent no "
            'Link: rel="next" header; narrow the search in the source\'s url'
        )
    return with_param(strip_api_key(response.url), "skip", skip + limit), None


def first(value: Any) -> str:
    """The first string of an openFDA list field (or the scalar itself)."""
    if isinstance(value, list):
        return str(value[0]) if value else ""
    return str(value or "")


class OpenfdaLabelSpider(OpenfdaSpider):
    """`drug/label`: one label document per set id, diffed section by section."""

    name = "openfda_label"
    kind: ClassVar[str] = "openfda_label"

    def documents(
        self, state: ResultSet, response: Response, result: dict[str, Any]
    ) -> Iterator[Observation]:
        set_id = str(result.get("set_id") or "")
        if not set_id:
            self.logger.warning("%s: skipped a label without set_id", state.source.id)
            return
        openfda = result.get("openfda") or {}
        names = [first(openfda.get("brand_name")), first(openfda.get("generic_name"))]
        yield self.document(
            state,
            response,
            key=set_id,
            url=f'{base_url(state.source.url)}?search=set_id:"{set_id}"',
            title=" / ".join(name for name in names if name) or f"label {set_id}",
            content=json.dumps(result, sort_keys=True, ensure_ascii=False),
            content_type=LABEL_OPENFDA,
        )


class OpenfdaRecallsSpider(OpenfdaSpider):
    """`drug/enforcement`: one record per recall number."""

    name = "openfda_recalls"
    kind: ClassVar[str] = "openfda_recalls"
    key_field: ClassVar[str] = "recall_number"

    def documents(
        self, state: ResultSet, response: Response, result: dict[str, Any]
    ) -> Iterator[Observation]:
        number = str(result.get("recall_number") or "")
        if not number:
            self.logger.warning("%s: skipped a recall without recall_number", state.source.id)
            return
        product = " ".join(str(result.get("product_description") or "").split())
        title = f"{result.get('classification') or 'Unclassified'} recall {number}: {product}"
        yield self.record(state, response, number, title[:200], result)


class OpenfdaShortagesSpider(OpenfdaSpider):
    """`drug/shortages`: one record per package NDC (or generic name, company, presentation)."""

    name = "openfda_shortages"
    kind: ClassVar[str] = "openfda_shortages"
    key_field: ClassVar[str] = "package_ndc"

    def documents(
        self, state: ResultSet, response: Response, result: dict[str, Any]
    ) -> Iterator[Observation]:
        ndc = first(result.get("package_ndc"))
        parts = [first(result.get(f)) for f in ("generic_name", "company_name", "presentation")]
        key = ndc or "|".join(parts)
        if not key.strip("|"):
            self.logger.warning("%s: skipped a shortage without any key field", state.source.id)
            return
        title = f"Shortage: {parts[0]} {parts[2]} ({result.get('status') or 'no status'})"
        url = None if ndc else state.source.url
        yield self.record(state, response, key, " ".join(title.split()), result, url)


class OpenfdaDrugsfdaSpider(OpenfdaSpider):
    """`drug/drugsfda`: one record per submission of each application."""

    name = "openfda_drugsfda"
    kind: ClassVar[str] = "openfda_drugsfda"
    key_field: ClassVar[str] = "application_number"

    def documents(
        self, state: ResultSet, response: Response, result: dict[str, Any]
    ) -> Iterator[Observation]:
        application = str(result.get("application_number") or "")
        brands = sorted(
            {str(p.get("brand_name")) for p in result.get("products") or [] if p.get("brand_name")}
        )
        search = f'{base_url(state.source.url)}?search=application_number:"{application}"'
        for submission in result.get("submissions") or []:
            record = submission_record(result, submission, brands)
            key = f"{application} {record['submission_type']} {record['submission_number']}"
            what = submission.get("submission_class_code_description") or "submission"
            title = f"{', '.join(brands) or application}: {key} ({what})"
            for doc in submission.get("application_docs") or []:
                name = " ".join(str(doc.get(f) or "") for f in ("type", "date")).strip()
                state.link(doc.get("url"), f"{', '.join(brands) or application}: {name or key}")
            yield self.record(state, response, key, title, record, url=search)


def submission_record(
    application: dict[str, Any], submission: dict[str, Any], brands: list[str]
) -> dict[str, Any]:
    """One submission with its application's identity; its documents as `type date url`."""
    record = {k: v for k, v in submission.items() if k != "application_docs"}
    record["application_number"] = application.get("application_number")
    record["sponsor_name"] = application.get("sponsor_name")
    record["brand_name"] = brands
    record.setdefault("submission_type", "")
    record.setdefault("submission_number", "")
    record["application_docs"] = [
        " ".join(str(doc.get(f) or "") for f in ("type", "date", "url")).strip()
        for doc in submission.get("application_docs") or []
    ]
    return record
