"""The watched sources, from `sources.toml`: one `[[source]]` table per watched thing.

A bad entry is rejected at load time with a message naming the entry and the field, before any
crawl starts and before anything is written to the history.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import asdict, dataclass
from datetime import UTC
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from apscheduler.triggers.cron import CronTrigger

from monitor.terms import expand_terms

#: API kinds (one spider each, named after the kind): their fetch is a complete result set, so
#: a document missing from it has been removed (monitor.history).
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
#: read by monitor.scrapy_addon): only a letter not yet stored is fetched.
KNOWN_KEYS_KINDS = ("fda_warning_letters",)
#: Kinds that must have `terms`: without them every listed document would become one.
TERMS_REQUIRED_KINDS = ("federal_register_inspection",)
KINDS = ("page", "feed", *RESULT_SET_KINDS, *LISTING_KINDS)
TIERS = ("T1", "T2", "T3", "T4", "T5")
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_]{0,99}$")
INTERVAL_PATTERN = re.compile(r"^(\d+)\s*([smhd])$")
INTERVAL_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
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
    "notes": "free text for people",
}


CRONTAB_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


class SourcesError(ValueError):
    """A bad sources.toml: the message names the entry and the field."""


def crontab_weekdays(field: str) -> str:
    """Crontab day-of-week numbers (0 and 7 = Sunday) as names.

    APScheduler 3 numbers days from Monday = 0, so `from_crontab("0 6 * * 1")` would run on
    Tuesdays; names mean the same to both.
    """
    days: set[int] = set()
    for part in field.split(","):
        if re.search(r"[a-z]", part, re.IGNORECASE):
            return field  # names already: APScheduler reads them as cron does
        base, _, step = part.partition("/")
        if base == "*":
            first, last = 0, 6
        elif "-" in base:
            first, last = (int(n) for n in base.split("-", 1))
        else:
            first = int(base)
            last = 6 if step else first
        if not 0 <= first <= 7 or not 0 <= last <= 7 or first > last:
            raise ValueError(f"day of week {part!r} is outside 0-7")
        days.update(day % 7 for day in range(first, last + 1, int(step or 1)))
    if days == set(range(7)):
        return "*"
    return ",".join(CRONTAB_DAYS[day] for day in sorted(days))


def parse_cron(cron: str) -> CronTrigger:
    """A 5-field crontab (minute hour day month weekday, UTC) as a trigger; ValueError if bad.

    Checked when sources.toml is loaded, so `fdawatch sources` and `crawl` reject a cron the
    daemon could never schedule, before anything is written.
    """
    fields = cron.split()
    if len(fields) != 5:
        raise ValueError(f"it has {len(fields)} fields, not 5")
    fields[4] = crontab_weekdays(fields[4])
    return CronTrigger.from_crontab(" ".join(fields), timezone=UTC)


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
    notes: str = ""

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
    if not INTERVAL_PATTERN.match(interval):
        raise SourcesError(
            f"{where}: field 'interval' = {interval!r} is invalid ({_FIELDS['interval']})"
        )
    cron = raw.get("cron")
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
    if threshold is not None and (
        not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 1
    ):
        raise SourcesError(f"{where}: field 'failure_threshold' must be a whole number ≥ 1")
    selector = raw.get("selector", "main")
    if not selector.strip():
        raise SourcesError(f"{where}: field 'selector' is empty ({_FIELDS['selector']})")
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
        notes=raw.get("notes", ""),
    )


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
