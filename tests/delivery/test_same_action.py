"""One FDA action seen in several sources is shown once in an alert email: "seen in N sources".

The Federal Register records are the SYNTHETIC fixtures built on the API's real structure
(tests/fixtures/federal_register/PROVENANCE.md): document 2025-24123 is both on today's public
inspection desk and in the published-documents search, two sources of sources.toml.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from db.models import Change, Snapshot
from monitor.delivery import alerts, outbox
from monitor.delivery.same_action import action_keys, group_same_action
from monitor.history.writer import HistoryWriter
from monitor.items import LABEL_SPL, RECORD
from monitor.sources import SourceConfig
from tests.support import alert_history as data
from tests.support.api_history import crawl
from tests.support.mailers import Capture

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "federal_register"
SEARCH = SourceConfig(
    id="federal_register_ketamine",
    kind="federal_register",
    url="https://www.federalregister.gov/api/v1/documents.json?conditions[term]=ketamine",
    title="Federal Register: ketamine",
    tier="T2",
)
DESK = SourceConfig(
    id="federal_register_inspection",
    kind="federal_register_inspection",
    url="https://www.federalregister.gov/api/v1/public-inspection-documents/current.json",
    title="Federal Register public inspection desk",
    tier="T2",
)
SOURCES = {SEARCH.id: SEARCH, DESK.id: DESK}
AT = datetime(2025, 12, 30, 14, 0, tzinfo=UTC)


def records(name: str) -> dict[str, str]:
    """The fixture's results as the spider stores them: document number → record JSON."""
    results = json.loads((FIXTURES / name).read_text(encoding="utf-8"))["results"]
    return {
        r["document_number"]: json.dumps(
            {k: v for k, v in r.items() if k != "page_views"}, sort_keys=True
        )
        for r in results
    }


SEARCH_RECORDS = records("SYNTHETIC-documents-ketamine-page1.json")  # 2025-24123, 2025-01099
DESK_RECORDS = records("SYNTHETIC-public-inspection-current.json")  # 2025-24123, -24150, -24161


def pick(documents: dict[str, str], *numbers: str) -> dict[str, str]:
    return {number: documents[number] for number in numbers}


def record_changes(engine: Engine, desk_delay: timedelta) -> list[int]:
    """Both sources' baselines, then 2025-24123 new in each (and 2025-24161 on the desk)."""
    with Session(engine) as session:
        HistoryWriter([SEARCH, DESK]).sync_sources(session)
        crawl(session, SEARCH, pick(SEARCH_RECORDS, "2025-01099"), RECORD, AT - timedelta(days=1))
        crawl(session, DESK, pick(DESK_RECORDS, "2025-24150"), RECORD, AT - timedelta(days=1))
        found = crawl(session, DESK, DESK_RECORDS, RECORD, AT)
        found += crawl(session, SEARCH, SEARCH_RECORDS, RECORD, AT + desk_delay)
        for change in found:
            outbox.enqueue(session, change, [data.ALICE], now=change.detected_at)
        session.commit()
        return [change.id for change in found if change.id is not None]


def email(engine: Engine, when: datetime) -> EmailMessage:
    mailer = Capture()
    alerts.send_pending(engine, data.settings(), SOURCES, when, mailer)
    (message,) = mailer.messages
    return message


def test_a_document_on_the_desk_and_in_the_search_is_shown_once(engine: Engine) -> None:
    ids = record_changes(engine, timedelta(hours=3))
    message = email(engine, AT + timedelta(hours=3, minutes=5))
    text = message.get_body(("plain",)).get_content()
    desk_24123, desk_24161, search_24123 = ids
    # the DEA rule (T1) first, with its second sighting; the T3 notice after it
    assert message["X-Fdawatch-Changes"] == f"{desk_24123} {search_24123} {desk_24161}"
    assert message["Subject"].endswith("desk: new: 2025-24123 (+1 more)")
    assert text.count("=" * 78) == 3  # two entries (the action seen twice, 2025-24161), legend
    seen = text[text.index("Seen in") :].split("\n\n")[0].splitlines()
    assert seen == [
        "Seen in 2 sources (one FDA action, shown once):",
        f"  - Federal Register public inspection desk: T1 new, change {desk_24123}, "
        "2025-12-30 14:00 UTC",
        "    https://www.federalregister.gov/public-inspection/2025-24123/synthetic",
        f"  - Federal Register: ketamine: T1 new, change {search_24123}, 2025-12-30 17:00 UTC",
        "    https://www.federalregister.gov/documents/2025/12/31/2025-24123/x",
    ]
    assert f"Change id: {search_24123} " not in text  # listed, not shown a second time
    html = message.get_body(("html",)).get_content()
    assert "<strong>Seen in 2 sources</strong>" in html
    assert '<a href="https://www.federalregister.gov/documents/2025/12/31/2025-24123/x">' in html
    assert text.count("Seen in") == 1


def test_the_same_document_a_week_apart_is_two_entries(engine: Engine) -> None:
    record_changes(engine, timedelta(days=7))
    text = email(engine, AT + timedelta(days=7, minutes=5)).get_body(("plain",)).get_content()
    assert text.count("=" * 78) == 4  # three entries and the tier legend
    assert "Seen in" not in text


def snapshot(text: str, content_type: str | None, url: str) -> Snapshot:
    meta: dict[str, Any] = {"content_type": content_type} if content_type else {}
    return Snapshot(source_id="s", doc_key="k", url=url, text=text, sha256="0", meta=meta,
                    fetched_at=AT)  # fmt: skip


@pytest.mark.parametrize(
    ("doc_key", "text", "content_type", "url", "keys"),
    [
        (  # a page, or a feed item linking it: http/https and tracking parameters do not matter
            "http://www.FDA.gov/safety/ketamine-alert?utm_source=rss",
            "Ketamine alert",
            None,
            "https://www.fda.gov/safety/ketamine-alert",
            {"url:https://www.fda.gov/safety/ketamine-alert"},
        ),
        (  # a feed item stored under its guid: the link it carries still counts
            "tag:fda.gov,2026:alert-17",
            "Ketamine alert",
            None,
            "https://www.fda.gov/safety/ketamine-alert",
            {"url:https://www.fda.gov/safety/ketamine-alert"},
        ),
        (  # a record: its document number and its own pages, never the API search URL
            "2025-24123",
            "document_number: 2025-24123\ntitle: Telemedicine\n"
            "html_url: https://www.federalregister.gov/d/2025-24123\n"
            "pdf_url: https://www.govinfo.gov/2025-24123.pdf",
            RECORD,
            "https://www.federalregister.gov/api/v1/documents.json?conditions[term]=ketamine",
            {
                "document:2025-24123",
                "url:https://www.federalregister.gov/d/2025-24123",
                "url:https://www.govinfo.gov/2025-24123.pdf",
            },
        ),
        (  # a recall record has no document number and no page of its own
            "D-0123-2026",
            "recall_number: D-0123-2026\nproduct_description: Ketamine HCl injection",
            RECORD,
            "https://api.fda.gov/drug/enforcement.json?search=ketamine",
            set(),
        ),
        (  # labels are never grouped
            "https://dailymed.nlm.nih.gov/dailymed/lookup.cfm?setid=abc",
            "SPRAVATO label",
            LABEL_SPL,
            "https://dailymed.nlm.nih.gov/dailymed/lookup.cfm?setid=abc",
            set(),
        ),
    ],
)
def test_what_identifies_an_action(
    doc_key: str, text: str, content_type: str | None, url: str, keys: set[str]
) -> None:
    change = Change(source_id="s", doc_key=doc_key, kind="new", detected_at=AT)
    assert action_keys(change, snapshot(text, content_type, url)) == keys


@pytest.mark.parametrize(
    ("changes", "entries"),
    [
        # (source, key, hours after AT) per change → entries by change index
        ([("a", "x", 0), ("b", "x", 1)], [[0, 1]]),
        ([("a", "x", 0), ("b", "y", 1)], [[0], [1]]),
        ([("a", "x", 0), ("b", "x", 25)], [[0], [1]]),  # beyond the 24 h window
        ([("a", "x", 0), ("a", "x", 1)], [[0], [1]]),  # one source twice: not "N sources"
        ([("a", "x", 0), ("c", "z", 0), ("b", "x", 2), ("d", "z", 3)], [[0, 2], [1, 3]]),
    ],
)
def test_changes_group_by_shared_key_across_sources_within_a_day(
    engine: Engine, changes: list[tuple[str, str, int]], entries: list[list[int]]
) -> None:
    with Session(engine) as session:
        rows = []
        for source, key, hours in changes:
            data.add_source(session, source, f"https://www.fda.gov/{source}", source)
            row = Change(
                source_id=source,
                doc_key=f"https://www.fda.gov/documents/{key}.pdf",
                kind="new",
                detected_at=AT + timedelta(hours=hours),
            )
            session.add(row)
            rows.append(row)
        session.flush()
        grouped = group_same_action(session, rows)
        assert [[rows.index(change) for change in group] for group in grouped] == entries
