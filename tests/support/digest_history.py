"""SYNTHETIC history for the digest and site tests: a week of five sources, through the writer.

SYNTHETIC: every page text below is written for these tests in the style of the FDA pages
fdawatch watches (the Spravato REMS page, the compounded-ketamine alert, a recall feed); none is a
verbatim copy. One source is deliberately hostile: its title, text and URL carry markup and a
`javascript:` link, which every rendering must show as inert text.

All changes fall in ISO week 2026-W48 (Mon 23 – Sun 29 November 2026); `NOW` is the Monday after.
`build` records what each source served (baselines a month earlier, one edit each in the week, a
source failing with HTTP 503, a source whose layout drifted, the last crawl six hours before
`NOW`) with `tests.support.history.HistoryBuilder`, so every row is the history writer's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session

from monitor.items import DRIFT
from monitor.site.build import SiteReport
from monitor.sources import SourceConfig
from tests.support.history import HistoryBuilder, raw_page

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
WEEK_START = datetime(2026, 11, 23, tzinfo=UTC)
SYNTHETIC_HEADERS = {"Content-Type": "text/html; charset=utf-8", "X-Fixture": "SYNTHETIC"}
FEED_HEADERS = {"Content-Type": "application/rss+xml", "X-Fixture": "SYNTHETIC"}

REMS = SourceConfig(
    id="fda_spravato_rems",
    kind="page",
    url="https://www.accessdata.fda.gov/scripts/cder/rems/index.cfm?event=RemsDetails.page&REMS=386",
    title="REMS@FDA: Spravato (esketamine) REMS (SYNTHETIC)",
    tier="T1",
    tags=("spravato", "rems"),
)
KETAMINE = SourceConfig(
    id="fda_ketamine_oral_alert",
    kind="page",
    url="https://www.fda.gov/drugs/human-drug-compounding/fda-warns-patients-and-health-care-providers-about-potential-risks-associated-compounded-ketamine",
    title="FDA alert: compounded ketamine, incl. oral formulations (SYNTHETIC)",
    tier="T2",
    tags=("ketamine", "compounding"),
)
RECALLS = SourceConfig(
    id="fda_drug_recalls_rss",
    kind="feed",
    url="https://www.fda.gov/about-fda/contact-fda/stay-informed/rss-feeds/drug-recalls/rss.xml",
    title="FDA drug recalls RSS feed (SYNTHETIC)",
    tier="T3",
    tags=("recalls",),
)
RISK_ALERTS = SourceConfig(
    id="fda_compounding_risk_alerts",
    kind="page",
    url="https://www.fda.gov/drugs/human-drug-compounding/compounding-risk-alerts",
    title="FDA Compounding Risk Alerts index (SYNTHETIC)",
    tier="T2",
    tags=("ketamine", "compounding"),
)
HOSTILE = SourceConfig(
    id="hostile_fixture",
    kind="page",
    url="javascript:alert(document.cookie)",
    title='Hostile <script>alert("title")</script> source (SYNTHETIC)',
    tier="T4",
    tags=("hostile",),
)
SOURCES = {s.id: s for s in (REMS, KETAMINE, RECALLS, RISK_ALERTS, HOSTILE)}

REMS_OLD = "\n".join(
    [
        "SPRAVATO (esketamine) Risk Evaluation and Mitigation Strategy (REMS)",
        "Healthcare settings must be certified in the SPRAVATO REMS before dispensing.",
        "Patients must be monitored by a healthcare provider for at least 2 hours after "
        "administration.",
        "Healthcare settings must report serious adverse events to the REMS.",
    ]
)
REMS_NEW = "\n".join(
    [
        "SPRAVATO (esketamine) Risk Evaluation and Mitigation Strategy (REMS)",
        "Healthcare settings must be certified in the SPRAVATO REMS before dispensing.",
        "Patients must be monitored by a healthcare provider for at least 2 hours after "
        "administration.",
        "Outpatient healthcare settings must have a healthcare provider on site and a pulse "
        "oximeter available to monitor patients.",
        "Healthcare settings must report serious adverse events to the REMS.",
    ]
)
REMS_ADDED = (
    "Outpatient healthcare settings must have a healthcare provider on site and a pulse "
    "oximeter available to monitor patients."
)
KETAMINE_OLD = "\n".join(
    [
        "FDA warns patients and health care providers about potential risks associated with "
        "compounded ketamine products",
        "Patients who receive compounded ketamine through telemedicine platforms may not be told "
        "of these risks.",
        "Patients should be aware of the risks.",
        "Report adverse events to FDA's MedWatch program.",
    ]
)
#: The edited line names no watched term, so the writer keeps the change at the page's T2.
KETAMINE_NEW = KETAMINE_OLD.replace(
    "should be aware of the risks.",
    "should be aware of the risks and be monitored by a health care provider after each dose.",
)
RECALL_TEXT = (
    "SYNTHETIC Pharma Recalls Ketamine Hydrochloride Injection Due to Particulate Matter\n"
    "SYNTHETIC Pharma is voluntarily recalling one lot of ketamine hydrochloride injection, "
    "50 mg/mL, to the user level."
)
HOSTILE_OLD = "Hostile page (SYNTHETIC)\nNothing to see."
HOSTILE_NEW = (
    "Hostile page (SYNTHETIC)\nNothing to see <script>alert('text')</script> "
    '<img src=x onerror="alert(1)"> <a href="javascript:alert(2)">click</a>.'
)
HOSTILE_TITLE = "<script>alert('change title')</script><img src=x onerror=alert(3)>"


@dataclass(frozen=True)
class History:
    """Ids of what `build` inserted."""

    rems: int  # T1: Spravato REMS gained the pulse-oximeter requirement
    ketamine: int  # T2: one sentence of the compounded ketamine alert edited
    recall: int  # T3: a new ketamine recall feed item
    hostile: int  # T4: markup everywhere
    bodies: dict[int, bytes]  # snapshot id → raw body as "fetched"


@dataclass(frozen=True)
class BuiltSite:
    """The history and the static site built from it once (the `site` fixture of tests/site/)."""

    engine: Engine
    history: History
    report: SiteReport

    @property
    def root(self) -> Path:
        return self.report.out


RECALL_KEY = (
    "https://www.fda.gov/safety/recalls-market-withdrawals-safety-alerts/synthetic-pharma-ketamine"
)
RISK_ALERTS_TEXT = "Compounding Risk Alerts (SYNTHETIC)\nFDA posts alerts on this page."
FAILING = "HTTP 503 Service Unavailable from www.fda.gov"
DRIFTED = "selector 'main' matched nothing <script>alert('error')</script>"


def build(engine: Engine) -> History:
    """Record the whole SYNTHETIC history into `engine` (committed) and return the ids."""
    bodies: dict[int, bytes] = {}
    earlier = WEEK_START - timedelta(days=30)
    last_crawl = NOW - timedelta(hours=6)
    with Session(engine) as session:
        history = HistoryBuilder(session, SOURCES.values())

        def version(
            config: SourceConfig, text: str, at: datetime, key: str | None = None, title: str = ""
        ) -> int | None:
            """One fetch of `config` that served `text`; the change's id, if it made one."""
            feed = config.kind == "feed"
            body = raw_page(title or config.title, text)
            headers = FEED_HEADERS if feed else SYNTHETIC_HEADERS
            change = history.version(
                config, text, at, key=key, title=title, body=body, headers=headers
            )
            document = history.document(config, key)
            assert document is not None and document.current_snapshot_id is not None
            bodies.setdefault(document.current_snapshot_id, body)
            return None if change is None else change.id

        # A month before the week: every source's first fetch (the feed held no item yet).
        version(REMS, REMS_OLD, earlier)
        version(KETAMINE, KETAMINE_OLD, earlier)
        history.fetched(RECALLS, earlier)
        version(HOSTILE, HOSTILE_OLD, earlier)
        version(RISK_ALERTS, RISK_ALERTS_TEXT, WEEK_START)

        # The week: one edit per source (ids 1-4 in this order).
        rems = version(REMS, REMS_NEW, datetime(2026, 11, 27, 14, 5, tzinfo=UTC))
        ketamine = version(KETAMINE, KETAMINE_NEW, datetime(2026, 11, 26, 8, 30, tzinfo=UTC))
        recall_at = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)
        recall = version(RECALLS, RECALL_TEXT, recall_at, key=RECALL_KEY)
        hostile_at = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
        hostile = version(HOSTILE, HOSTILE_NEW, hostile_at, title=HOSTILE_TITLE)

        # Source health: the risk-alerts index fails from Sunday on, the hostile page drifts.
        for hours in (24, 18, 12, 6):
            history.failed(RISK_ALERTS, NOW - timedelta(hours=hours), FAILING, http_status=503)
        history.failed(
            HOSTILE, NOW - timedelta(hours=18), "<img src=x onerror=alert(4)>", outcome=DRIFT,
            http_status=200,
        )  # fmt: skip
        for hours in (12, 6):
            history.failed(
                HOSTILE, NOW - timedelta(hours=hours), DRIFTED, outcome=DRIFT, http_status=200
            )
        # The last crawl: the healthy sources served what they served before.
        version(REMS, REMS_NEW, last_crawl)
        version(KETAMINE, KETAMINE_NEW, last_crawl)
        version(RECALLS, RECALL_TEXT, last_crawl, key=RECALL_KEY)
        session.commit()
    assert rems and ketamine and recall and hostile, "each edit of the week makes one change"
    return History(rems, ketamine, recall, hostile, bodies)
