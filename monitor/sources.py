"""The watched sources, from `sources.toml`: one `[[source]]` table per watched thing.

A bad entry is rejected at load time with a message naming the entry and the field, before any
crawl starts and before anything is written to the history.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from monitor.config import unreadable_file
from monitor.core.terms import expand_terms
from monitor.cron import parse_cron
from monitor.errors import SourcesError

if TYPE_CHECKING:  # APScheduler loads only when a source has a cron (0.1 s off every command)
    pass

#: API kinds (one spider each, named after the kind): their fetch is a complete result set, so
#: a document missing from it has been removed (monitor.history.writer).
RESULT_SET_KINDS = (
    "openfda_label",
    "openfda_recalls",
    "openfda_shortages",
    "openfda_drugsfda",
    "dailymed_spl",
    "federal_register",
)
#: Listing kinds (one spider each): their fetch lists what is *current* (today's public-
#: inspection desk, the newest warning letters), so a document that drops out of the listing has
#: rolled off, like a feed item, and is never a removal.
LISTING_KINDS = ("federal_register_inspection", "fda_warning_letters")
#: Kinds whose spider needs the keys of the documents already stored (`FDAWATCH_KNOWN_DOCUMENTS`,
#: read by monitor.runtime.scrapy_addon): only a letter not yet stored is fetched.
KNOWN_KEYS_KINDS = ("fda_warning_letters",)
#: Kinds whose responses link documents `follow_documents` can fetch (spiders/documents.py): a
#: page's watched region, a Drugs@FDA submission's `application_docs`, a Federal Register
#: document's `pdf_url`.
FOLLOW_KINDS = ("page", "openfda_drugsfda", "federal_register")
#: Kinds that must have `terms`: without them every listed document would become one.
TERMS_REQUIRED_KINDS = ("federal_register_inspection",)
KINDS = ("page", "feed", *RESULT_SET_KINDS, *LISTING_KINDS)
TIERS = ("T1", "T2", "T3", "T4", "T5")
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_]{0,99}$")
INTERVAL_PATTERN = re.compile(r"^(\d+)\s*([smhd])$")
INTERVAL_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
#: Politeness: each check is a request to FDA's servers, a public service. Nothing FDA publishes
#: changes by the minute, so a shorter interval (`0s` is a typo away) only adds load.
MIN_INTERVAL_SECONDS = 60
#: Beyond a year is a typo too (and overflows the scheduler's date arithmetic).
MAX_INTERVAL_SECONDS = 365 * 86400
#: The two DailyMed URLs a `dailymed_spl` source may watch (spiders/dailymed.py).
DAILYMED_PATH = re.compile(r"/spls/[^/]+/history\.json$|/spls\.json$")

_FIELDS = {
    "id": "the source id: lower-case letters, digits and _ (also the spider argument)",
    "kind": f"one of {', '.join(KINDS)}",
    "url": (
        "the http(s) URL to fetch; API kinds: the full query URL (first page), "
        "dailymed_spl: .../spls/SETID/history.json or .../spls.json?drug_name=..., "
        "fda_warning_letters: the warning-letter listing's DataTables query"
    ),
    "title": "a human title used in alerts",
    "selector": (
        "CSS selector of the watched region (pages, and each letter of fda_warning_letters; "
        "default 'main'; fda.gov pages: '#main-content')"
    ),
    "interval": "how often to check, like '6h', '30m' or '1d'",
    "cron": "a cron expression instead of interval (minute hour day month weekday)",
    "terms": (
        "words a new document must contain to be kept (feeds, API and listing kinds); "
        "'@ketamine' is the built-in list"
    ),
    "tier": "severity of a change when no rule says otherwise: T1 … T5",
    "tags": "labels recipients can follow",
    "failure_threshold": "failures in a row before a 'source failing' alert",
    "confirm_removal": "404/410 answers (or absences from a complete result set) in a row "
    "before a document counts as removed (default 2)",
    "max_documents": "most documents one fetch may hold (feed items, API records; default "
    "10000): more is a failed fetch, never a partial record",
    "max_bytes": "largest response body in bytes (default: [crawl]'s 20 MB limit)",
    "follow_documents": (
        f"true to fetch, extract and diff the PDFs the source links ({', '.join(FOLLOW_KINDS)}; "
        "default false)"
    ),
    "max_document_bytes": "largest linked document in bytes (default 20 MB = 20971520)",
    "max_document_pages": "most pages of a linked PDF whose text is read (default 500)",
    "notes": "free text for people",
}
#: Defaults of the per-source limits.
CONFIRM_REMOVAL = 2
MAX_DOCUMENTS = 10_000
MAX_DOCUMENT_BYTES = 20 * 1024 * 1024
MAX_DOCUMENT_PAGES = 500


def host_key(url: str) -> str:
    """The host a URL's requests go to, as politeness and back-off count it (`host[:port]`)."""
    return urlsplit(url).netloc.lower().rpartition("@")[2]


@dataclass(frozen=True)
class SourceConfig:
    id: str
    kind: str
    url: str
    title: str = ""
    selector: str = "main"
    interval: str = "6h"
    cron: str | None = None
    terms: tuple[str, ...] = ()
    tier: str = "T3"
    tags: tuple[str, ...] = ()
    failure_threshold: int | None = None
    confirm_removal: int = CONFIRM_REMOVAL
    max_documents: int = MAX_DOCUMENTS
    max_bytes: int | None = None
    notes: str = ""
    follow_documents: bool = False
    max_document_bytes: int = MAX_DOCUMENT_BYTES
    max_document_pages: int = MAX_DOCUMENT_PAGES

    @property
    def interval_seconds(self) -> int:
        match = INTERVAL_PATTERN.match(self.interval)
        assert match, self.interval  # validated at load time
        return int(match.group(1)) * INTERVAL_SECONDS[match.group(2)]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SourceConfig:
        """The inverse of `to_dict` (as carried in Scrapy settings, lists instead of tuples)."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    @classmethod
    def coerce(cls, value: SourceConfig | dict[str, Any]) -> SourceConfig:
        """A source from Scrapy settings: as loaded (`SourceTable`), or a dict (`-s`, tests)."""
        return value if isinstance(value, SourceConfig) else cls.from_dict(value)


class SourceTable(dict[str, SourceConfig]):
    """Sources as carried in Scrapy settings, shared instead of copied.

    Scrapy deep-copies its settings for every crawler; the sources are frozen dataclasses, so
    a copy of a thousand of them (and their conversion to dicts and back) is pure waste.
    """

    def __deepcopy__(self, memo: dict[int, Any]) -> SourceTable:
        return self


def _entry(raw: Any, index: int, path: Path) -> SourceConfig:
    name = raw.get("id") if isinstance(raw, dict) else None
    where = f"{path}: [[source]] #{index + 1}" + (f" ({name!r})" if isinstance(name, str) else "")
    if not isinstance(raw, dict):
        raise SourcesError(f"{where}: must be a table")
    for key in raw:
        if key not in _FIELDS:
            raise SourcesError(
                f"{where}: unknown field {key!r}; known fields: {', '.join(_FIELDS)}"
            )
    for key in ("id", "kind", "url"):
        if key not in raw:
            raise SourcesError(f"{where}: field {key!r} is missing ({_FIELDS[key]})")
    for key in ("id", "kind", "url", "title", "selector", "interval", "cron", "tier", "notes"):
        if key in raw and not isinstance(raw[key], str):
            raise SourcesError(f"{where}: field {key!r} must be a string ({_FIELDS[key]})")
    if not ID_PATTERN.match(raw["id"]):
        raise SourcesError(f"{where}: field 'id' = {raw['id']!r} is invalid ({_FIELDS['id']})")
    if raw["kind"] not in KINDS:
        raise SourcesError(
            f"{where}: field 'kind' = {raw['kind']!r} is invalid ({_FIELDS['kind']})"
        )
    url = urlsplit(raw["url"])
    if url.scheme not in ("http", "https") or not url.netloc:
        raise SourcesError(f"{where}: field 'url' = {raw['url']!r} is not an http(s) URL")
    if raw["kind"] == "dailymed_spl" and not DAILYMED_PATH.search(url.path):
        raise SourcesError(
            f"{where}: field 'url' = {raw['url']!r} is not a DailyMed history or search: use "
            ".../services/v2/spls/SETID/history.json or .../services/v2/spls.json?drug_name=..."
        )
    interval = raw.get("interval", "6h")
    _check_interval(interval, where)
    cron = raw.get("cron")
    if cron is not None and "interval" in raw:
        raise SourcesError(
            f"{where}: has both 'interval' = {interval!r} and 'cron' = {cron!r}; keep one: "
            "remove 'interval' to keep the schedule the daemon followed (cron), or remove 'cron'"
        )
    if cron is not None:
        try:
            parse_cron(cron)
        except ValueError as error:
            raise SourcesError(
                f"{where}: field 'cron' = {cron!r} is invalid ({error}; {_FIELDS['cron']}, "
                "in UTC, e.g. '0 6 * * 1-5')"
            ) from None
    tier = raw.get("tier", "T3")
    if tier not in TIERS:
        raise SourcesError(f"{where}: field 'tier' = {tier!r} is invalid ({_FIELDS['tier']})")
    lists: dict[str, tuple[str, ...]] = {}
    for key in ("terms", "tags"):
        value = raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise SourcesError(f"{where}: field {key!r} must be a list of non-empty strings")
        lists[key] = tuple(value)
    try:
        expand_terms(lists["terms"])
    except ValueError as error:
        raise SourcesError(f"{where}: field 'terms' is invalid ({error})") from None
    if raw["kind"] in TERMS_REQUIRED_KINDS and not lists["terms"]:
        raise SourcesError(
            f"{where}: field 'terms' is missing: a {raw['kind']} source lists every filing of "
            'the day, so name the words to keep, e.g. terms = ["@ketamine", "telemedicine"]'
        )
    threshold = raw.get("failure_threshold")
    if threshold is not None and not _whole(threshold):
        raise SourcesError(f"{where}: field 'failure_threshold' must be a whole number ≥ 1")
    follow = raw.get("follow_documents", False)
    if not isinstance(follow, bool):
        raise SourcesError(
            f"{where}: field 'follow_documents' must be true or false "
            f"({_FIELDS['follow_documents']})"
        )
    if follow and raw["kind"] not in FOLLOW_KINDS:
        raise SourcesError(
            f"{where}: field 'follow_documents' is for {', '.join(FOLLOW_KINDS)} sources, not "
            f"{raw['kind']!r}: remove it"
        )
    for key in (
        "confirm_removal", "max_documents", "max_bytes", "max_document_bytes", "max_document_pages"
    ):
        if key in raw and not _whole(raw[key]):
            raise SourcesError(
                f"{where}: field {key!r} must be a whole number ≥ 1 ({_FIELDS[key]})"
            )
    selector = raw.get("selector", "main")
    if not selector.strip():
        raise SourcesError(f"{where}: field 'selector' is empty ({_FIELDS['selector']})")
    problem = css_selector_problem(selector)
    if problem:
        raise SourcesError(
            f"{where}: field 'selector' = {selector!r} is not a CSS selector the page spider "
            f"can use ({problem}); e.g. 'main', 'div#content' or 'article.main-content'"
        )
    return SourceConfig(
        id=raw["id"],
        kind=raw["kind"],
        url=raw["url"],
        title=raw.get("title", "") or raw["id"],
        selector=selector,
        interval=interval,
        cron=cron,
        terms=lists["terms"],
        tier=tier,
        tags=lists["tags"],
        failure_threshold=threshold,
        confirm_removal=raw.get("confirm_removal", CONFIRM_REMOVAL),
        max_documents=raw.get("max_documents", MAX_DOCUMENTS),
        max_bytes=raw.get("max_bytes"),
        notes=raw.get("notes", ""),
        follow_documents=follow,
        max_document_bytes=raw.get("max_document_bytes", MAX_DOCUMENT_BYTES),
        max_document_pages=raw.get("max_document_pages", MAX_DOCUMENT_PAGES),
    )


def _whole(value: Any) -> bool:
    """A whole number ≥ 1 (TOML booleans are not numbers here)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _check_interval(interval: str, where: str) -> None:
    match = INTERVAL_PATTERN.match(interval)
    if not match:
        raise SourcesError(
            f"{where}: field 'interval' = {interval!r} is invalid ({_FIELDS['interval']})"
        )
    seconds = int(match.group(1)) * INTERVAL_SECONDS[match.group(2)]
    if seconds < MIN_INTERVAL_SECONDS:
        raise SourcesError(
            f"{where}: field 'interval' = {interval!r} is too short: the minimum is 1m (each "
            "check is a request to FDA's servers, a public service); use e.g. '30m' or '6h'"
        )
    if seconds > MAX_INTERVAL_SECONDS:
        raise SourcesError(
            f"{where}: field 'interval' = {interval!r} is too long: the maximum is 365d; for a "
            "rare check use a cron such as '0 6 1 * *' (monthly)"
        )


def css_selector_problem(selector: str) -> str | None:
    """Why the page spider (parsel) could not use `selector`, or None.

    cssselect parses it as parsel does; parsel's own pseudo-elements `::text` and
    `::attr(name)` are accepted, other pseudo-elements are not. (cssselect, not parsel, to keep
    every command's start-up light: parsel imports lxml.)
    """
    from cssselect import HTMLTranslator, SelectorError, parse
    from cssselect.parser import FunctionalPseudoElement

    try:
        for parsed in parse(selector):
            pseudo = parsed.pseudo_element
            if isinstance(pseudo, FunctionalPseudoElement):
                arguments = [token.type for token in pseudo.arguments]
                if pseudo.name != "attr" or arguments not in (["IDENT"], ["STRING"]):
                    return f"::{pseudo.name}() is not ::attr(name)"
            elif pseudo is not None and pseudo != "text":
                return f"unknown pseudo-element ::{pseudo}"
            HTMLTranslator().selector_to_xpath(parsed, translate_pseudo_elements=False)
    except SelectorError as error:
        return str(error)
    return None


def parse_sources(data: dict[str, Any], path: Path) -> dict[str, SourceConfig]:
    """Validated sources keyed by id, in file order."""
    unknown = set(data) - {"source"}
    if unknown:
        raise SourcesError(
            f"{path}: unknown top-level key {sorted(unknown)[0]!r}; write [[source]] tables"
        )
    entries = data.get("source", [])
    if not isinstance(entries, list):
        raise SourcesError(f"{path}: sources are written [[source]] (an array of tables)")
    sources: dict[str, SourceConfig] = {}
    for index, raw in enumerate(entries):
        source = _entry(raw, index, path)
        if source.id in sources:
            raise SourcesError(
                f"{path}: [[source]] #{index + 1}: field 'id' = {source.id!r} is used twice"
            )
        sources[source.id] = source
    return sources


def load_sources(path: Path) -> dict[str, SourceConfig]:
    """Read and validate `path`; raise SourcesError naming the entry and field on any problem."""
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise SourcesError(
            f"{path}: no such file; pass --sources PATH or set FDAWATCH_SOURCES"
        ) from None
    except tomllib.TOMLDecodeError as error:
        raise SourcesError(f"{path}: not valid TOML ({error})") from None
    except (UnicodeDecodeError, OSError) as error:
        hint = "pass --sources PATH/TO/sources.toml or set FDAWATCH_SOURCES to the file"
        raise SourcesError(unreadable_file(path, error, hint)) from None
    return parse_sources(data, path)


def select(sources: dict[str, SourceConfig], ids: list[str]) -> list[SourceConfig]:
    """The sources named by `ids` (all when empty); an unknown id is an error naming it."""
    if not ids:
        return list(sources.values())
    unknown = [i for i in ids if i not in sources]
    if unknown:
        raise SourcesError(
            f"unknown source id {unknown[0]!r}; `fdawatch sources` lists the ids "
            f"({', '.join(sources)})"
        )
    return [sources[i] for i in ids]
