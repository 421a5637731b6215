"""The feed spider on real FDA RSS captures and on the ways a feed goes wrong."""

from __future__ import annotations

import time

import pytest
from scrapy.http import HtmlResponse, Response, TextResponse, XmlResponse

from monitor.items import FAILED, NOT_MODIFIED, OK
from monitor.sources import SourceConfig
from spiders.feed import (
    ENTITY_REFUSAL,
    STAT_DUPLICATE_KEY,
    STAT_WITHOUT_KEY,
    FeedSpider,
    declares_entities,
)
from tests.support.paths import RSS

FOOD_RECALLS = RSS / "fda-food-safety-recalls-history" / "001_20241114T1258Z_d2a4a52c.xml"
DRUG_RECALLS_2019 = RSS / "fda-drug-recalls-2019-05-03-reformatted.xml"
RSS_TYPE = {"Content-Type": "application/rss+xml; charset=utf-8"}
ALERTS = "https://www.fda.gov/safety/recalls-market-withdrawals-safety-alerts/"


def rss(items: str, encoding: str = "utf-8") -> bytes:
    return (
        f'<?xml version="1.0" encoding="{encoding}"?>\n'
        '<rss version="2.0" xml:base="https://www.fda.gov/"><channel><title>Drug Recalls</title>'
        f"<link>https://www.fda.gov/</link>{items}</channel></rss>"
    ).encode(encoding)


@pytest.fixture
def feed_spider(make_spider, feed_source: SourceConfig) -> FeedSpider:
    return make_spider(FeedSpider, source=feed_source.id)


# --- real FDA captures -----------------------------------------------------------------------


def test_real_food_safety_recalls_feed_gives_20_keyed_items(
    feed_spider, respond, drain, feed_source
) -> None:
    body = FOOD_RECALLS.read_bytes()
    response = respond(feed_source, body, headers=RSS_TYPE, response_cls=XmlResponse)

    observations, fetch = drain(feed_spider.parse(response))

    assert len(observations) == 20
    keys = [o.key for o in observations]
    assert len(set(keys)) == 20
    assert all(key.startswith(ALERTS) for key in keys)  # http:// in the feed, https:// as a key
    first = observations[0]
    slug = "gilster-mary-lee-corp-issues-recall-undeclared-egg-allergen-bowl-basket-onion-soup-mix"
    assert first.key == ALERTS + slug
    assert first.url == "http://www.fda.gov/safety/recalls-market-withdrawals-safety-alerts/" + slug
    assert first.title == (
        "Gilster - Mary Lee Corp. Issues a Recall for Undeclared Egg Allergen in "
        "Bowl & Basket Onion Soup Mix"
    )
    assert first.content.startswith("Gilster-Mary Lee, 520 Old St. Mary’s Road")
    assert first.published == "Tue, 12 Nov 2024 00:00:00 EST"
    assert first.content_type == "feed_item"
    assert all(o.body == body for o in observations)  # the evidence, stored once by hash
    assert all(o.fetched_at == fetch.fetched_at for o in observations)
    assert (fetch.outcome, fetch.documents, fetch.document_keys) == (OK, 20, keys)
    assert fetch.bytes == len(body)


def test_real_2019_drug_recalls_feed_with_drupal_time_dates(
    feed_spider, respond, drain, feed_source
) -> None:
    response = respond(
        feed_source, DRUG_RECALLS_2019.read_bytes(), headers=RSS_TYPE, response_cls=XmlResponse
    )

    observations, fetch = drain(feed_spider.parse(response))

    assert len(observations) == 20 and fetch.documents == 20
    assert len({o.key for o in observations}) == 20
    top = observations[0]
    assert top.key == (
        ALERTS + "vivimed-life-sciences-pvt-ltd-issues-voluntary-nationwide-recall-losartan"
        "-potassium-25-mg-50-mg-and"
    )  # the pretty-printer's whitespace around the link is gone
    assert top.published == "Fri, 05/03/2019 - 15:21"  # the text inside <pubDate><time …>
    assert top.title.startswith("Vivimed Life Sciences Pvt Ltd Issues Voluntary Nationwide")
    assert "N-Nitroso-N-methyl-4-aminobutyric acid" in top.content


# --- statuses and unreadable bodies ----------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(304, NOT_MODIFIED), (404, FAILED), (410, FAILED), (500, FAILED), (429, FAILED)],
)
def test_feed_status_gives_only_a_fetch_record(
    feed_spider, respond, drain, feed_source, status: int, outcome: str
) -> None:
    observations, fetch = drain(feed_spider.parse(respond(feed_source, b"", status=status)))

    assert observations == []
    assert (fetch.outcome, fetch.http_status) == (outcome, status)


@pytest.mark.parametrize(
    ("response_cls", "body", "content_type", "error_start"),
    [
        (TextResponse, b"Service temporarily unavailable", "text/plain", "not a readable feed"),
        (HtmlResponse, b"<html><body><h1>Page moved</h1></body></html>", "text/html", "not a "),
        (XmlResponse, b"<?xml version='1.0'?><note>hi</note>", "application/xml", "not an RSS"),
        (XmlResponse, b"<?xml version='1.0'?><rss><channel><item>", "application/xml", "not a "),
        (Response, b"", "application/rss+xml", "empty body (application/rss+xml)"),
    ],
)
def test_body_that_is_not_a_feed_fails_with_the_parsers_reason(
    feed_spider,
    respond,
    drain,
    feed_source,
    response_cls: type[Response],
    body: bytes,
    content_type: str,
    error_start: str,
) -> None:
    response = respond(
        feed_source, body, headers={"Content-Type": content_type}, response_cls=response_cls
    )

    observations, fetch = drain(feed_spider.parse(response))

    assert observations == []
    assert fetch.outcome == FAILED
    assert fetch.error is not None and fetch.error.startswith(error_start), fetch.error


def test_feed_with_no_items_is_ok_and_empty(feed_spider, respond, drain, feed_source) -> None:
    observations, fetch = drain(feed_spider.parse(respond(feed_source, rss(""), headers=RSS_TYPE)))

    assert observations == []
    assert (fetch.outcome, fetch.documents) == (OK, 0)


# --- keys --------------------------------------------------------------------------------------


def test_duplicate_keys_keep_the_first_item(feed_spider, respond, drain, feed_source) -> None:
    items = (
        "<item><title>Ketamine troches recall</title><link>http://www.fda.gov/a</link></item>"
        "<item><title>Older copy</title><link>https://www.fda.gov/a</link></item>"
        "<item><title>Other</title><link>https://www.fda.gov/b</link></item>"
    )

    observations, fetch = drain(feed_spider.parse(respond(feed_source, rss(items))))

    assert [(o.key, o.title) for o in observations] == [
        ("https://www.fda.gov/a", "Ketamine troches recall"),
        ("https://www.fda.gov/b", "Other"),
    ]
    assert fetch.documents == 2
    assert feed_spider.crawler.stats.get_value(STAT_DUPLICATE_KEY) == 1


def test_items_without_link_or_guid_are_skipped_and_counted(
    feed_spider, respond, drain, feed_source
) -> None:
    items = (
        "<item><title>No key</title><description>lost</description></item>"
        '<item><title>Guid only</title><guid isPermaLink="false">fda-2024-117</guid></item>'
    )

    observations, fetch = drain(feed_spider.parse(respond(feed_source, rss(items))))

    assert [(o.key, o.url) for o in observations] == [("fda-2024-117", feed_source.url)]
    assert fetch.document_keys == ["fda-2024-117"]
    assert feed_spider.crawler.stats.get_value(STAT_WITHOUT_KEY) == 1


def test_relative_links_become_absolute_against_xml_base(
    feed_spider, respond, drain, feed_source
) -> None:
    items = "<item><title>Esketamine</title><link>/drugs/spravato-update</link></item>"

    observations, _ = drain(feed_spider.parse(respond(feed_source, rss(items))))

    assert observations[0].url == "https://www.fda.gov/drugs/spravato-update"
    assert observations[0].key == "https://www.fda.gov/drugs/spravato-update"


def test_declared_encoding_is_honoured(feed_spider, respond, drain, feed_source) -> None:
    items = "<item><title>Kétamine composée</title><link>https://www.fda.gov/k</link></item>"
    headers = {"Content-Type": "application/rss+xml; charset=iso-8859-1"}

    observations, _ = drain(
        feed_spider.parse(respond(feed_source, rss(items, "iso-8859-1"), headers=headers))
    )

    assert observations[0].title == "Kétamine composée"


def test_description_html_is_kept_as_given(feed_spider, respond, drain, feed_source) -> None:
    items = (
        "<item><title>t</title><link>https://www.fda.gov/k</link>"
        '<description>&lt;p style="color:red"&gt;Do &lt;b&gt;not&lt;/b&gt; use&lt;/p&gt;'
        "</description></item>"
    )

    observations, _ = drain(feed_spider.parse(respond(feed_source, rss(items))))

    assert observations[0].content == '<p style="color:red">Do <b>not</b> use</p>'


def test_parser_crash_still_ends_in_a_failed_record(
    feed_spider, respond, drain, feed_source, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*args: object) -> None:
        raise RuntimeError("sax exploded")

    monkeypatch.setattr("spiders.feed.parse_feed", explode)

    observations, fetch = drain(feed_spider.parse(respond(feed_source, rss(""))))

    assert observations == []
    assert (fetch.outcome, fetch.error) == (FAILED, "parse error: RuntimeError: sax exploded")


@pytest.mark.parametrize(
    ("dates", "published"),
    [
        ("<published>2024-11-12T09:00:00Z</published>", "2024-11-12T09:00:00Z"),
        ("<updated>2024-11-13T10:00:00Z</updated>", "2024-11-13T10:00:00Z"),
        ("", None),
    ],
)
def test_atom_entries_are_read_with_their_own_date(
    feed_spider, respond, drain, feed_source, dates: str, published: str | None
) -> None:
    atom = (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        "<title>FDA updates</title><id>urn:fda:updates</id>"
        "<entry><title>Spravato REMS modified</title><id>urn:fda:rems:1</id>"
        f'<link href="https://www.fda.gov/rems/spravato"/>{dates}'
        '<summary type="html">&lt;p&gt;REMS changed&lt;/p&gt;</summary></entry></feed>'
    ).encode()
    response = respond(feed_source, atom, headers={"Content-Type": "application/atom+xml"})

    (entry,), fetch = drain(feed_spider.parse(response))

    assert (entry.key, entry.title) == (
        "https://www.fda.gov/rems/spravato",
        "Spravato REMS modified",
    )
    assert entry.content == "<p>REMS changed</p>"
    assert entry.published == published
    assert fetch.outcome == OK


# --- entities: refused wherever and however they are written ------------------------------------

XXE_PROLOG = '<!DOCTYPE rss [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>\n'
XXE_ITEM = "<item><title>Secret &xxe;</title><link>https://www.fda.gov/xxe</link></item>"
PADDING = "<!-- " + "SYNTHETIC padding " * 4000 + "-->\n"  # ~70 KB before the DOCTYPE


def entity_feed(
    encoding: str, *, prolog: str = XXE_PROLOG, padding: str = "", item: str = XXE_ITEM
) -> bytes:
    """A SYNTHETIC feed that declares an external entity, written in `encoding`."""
    declaration = f'<?xml version="1.0" encoding="{encoding}"?>\n'
    text = (
        f"{declaration}{padding}{prolog}"
        '<rss version="2.0"><channel><title>Drug Recalls</title><link>https://www.fda.gov/</link>'
        f"{item}</channel></rss>"
    )
    return text.encode(encoding)


#: UTF-16 with neither a byte-order mark nor an XML declaration; it starts with a blank line.
BARE_UTF16LE = (
    "\n" + XXE_PROLOG + f'<rss version="2.0"><channel>{XXE_ITEM}</channel></rss>'
).encode("utf-16-le")


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (entity_feed("utf-8"), "application/rss+xml; charset=utf-8"),
        (entity_feed("utf-8", padding=PADDING), "application/rss+xml"),  # past the first 64 KiB
        (entity_feed("utf-16"), "application/rss+xml"),  # UTF-16 with its byte-order mark
        (entity_feed("utf-16-be"), "application/rss+xml"),  # no mark: XML's own first bytes
        (entity_feed("utf-16-le", padding=PADDING), "application/xml"),
        (entity_feed("utf-32"), "application/rss+xml"),
        (  # no mark and no XML declaration: the HTTP charset says how to read it
            BARE_UTF16LE,
            "application/rss+xml; charset=utf-16le",
        ),
    ],
    ids=["plain", "after_70kb_comment", "utf16_bom", "utf16be", "utf16le_padded", "utf32", "http"],
)
def test_a_feed_declaring_entities_is_refused_whatever_its_size_or_encoding(
    feed_spider, respond, drain, feed_source, body: bytes, content_type: str
) -> None:
    response = respond(feed_source, body, headers={"Content-Type": content_type})

    observations, fetch = drain(feed_spider.parse(response))

    assert observations == []
    assert fetch.outcome == FAILED
    assert fetch.error == ENTITY_REFUSAL


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "utf-16-be", "utf-32"])
def test_the_same_feed_without_entities_is_read_in_every_encoding(
    feed_spider, respond, drain, feed_source, encoding: str
) -> None:
    item = XXE_ITEM.replace("&xxe;", "(none)")
    body = entity_feed(encoding, prolog="", padding=PADDING, item=item)
    response = respond(feed_source, body, headers={"Content-Type": "application/rss+xml"})

    (entry,), fetch = drain(feed_spider.parse(response))

    assert (entry.key, entry.title, fetch.outcome) == (
        "https://www.fda.gov/xxe",
        "Secret (none)",
        OK,
    )


def test_the_entity_check_of_a_20_mb_utf16_body_does_not_decode_it_all() -> None:
    """Only the prolog is looked at: well under a second of CPU (decoding all 20 MB is more)."""
    body = entity_feed("utf-16", prolog="", padding=PADDING * 140)  # ~20 MB, no entity
    assert len(body) > 19_000_000
    started = time.process_time()
    assert not declares_entities(body, "application/rss+xml; charset=utf-16")
    assert time.process_time() - started < 2.0
