"""The daily watch report: `[report]` read from fdawatch.toml, queued once a day through the
outbox (never twice, across restarts and racing processes), and what it says.

The history is the alert tests' FDA ketamine alert page (tests/support/alert_history.py), plus a
MedWatch feed whose host blocks fdawatch. Every database-facing case runs on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from db.engine import make_engine
from db.models import Alert, Source
from monitor.config import load_settings
from monitor.config_report import ReportSettings
from monitor.delivery import alerts, daily_report, outbox
from monitor.errors import ConfigError
from monitor.review.records import acknowledge
from monitor.runtime.scheduler import Watcher, build_scheduler
from tests.support import alert_history as data
from tests.support.mailers import Capture, Refuses

MEDWATCH = data.source_config(
    "fda_medwatch_rss", "https://www.fda.gov/about-fda/contact-fda/rss-feeds/medwatch", "MedWatch"
)
SOURCES = {**data.SOURCES, MEDWATCH.id: MEDWATCH}
REPORT = ReportSettings(to=("compliance@clinic.example", "owner@clinic.example"), hour=7)
SETTINGS = data.settings(report=REPORT)
#: The change is found 2023-10-10 14:30 and alerted 14:35; the next morning's report is due 07:00.
MORNING = datetime(2023, 10, 11, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("", None),
        ('[report]\nto = ["a@clinic.example"]\n', ReportSettings(to=("a@clinic.example",))),
        (
            '[report]\ndaily_at = "18:45"\nto = ["a@clinic.example", "a@clinic.example"]\n',
            ReportSettings(to=("a@clinic.example",), hour=18, minute=45),
        ),
    ],
)
def test_report_settings_come_from_fdawatch_toml(
    tmp_path: Path, toml: str, expected: ReportSettings | None
) -> None:
    path = tmp_path / "fdawatch.toml"
    path.write_text(toml)
    assert load_settings({}, path).report == expected


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[report]\ndaily_at = "07:00"\n', "[report] 'to' must be a list of addresses"),
        ('[report]\nto = "a@clinic.example"\n', "[report] 'to' must be a list of addresses"),
        ('[report]\nto = ["not an address"]\n', "[report] 'to' has 'not an address'"),
        (
            '[report]\nto = ["a@clinic.example"]\ndaily_at = "7am"\n',
            "'daily_at' must be a 24-hour UTC time like \"07:00\", not '7am'",
        ),
        ('[report]\nto = ["a@clinic.example"]\ndaily_at = "24:00"\n', "not '24:00'"),
        ('[report]\nto = ["a@clinic.example"]\nat = "07:00"\n', "[report] unknown key 'at'"),
    ],
)
def test_a_bad_report_table_is_an_error_naming_the_key(
    tmp_path: Path, toml: str, message: str
) -> None:
    path = tmp_path / "fdawatch.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as error:
        load_settings({}, path)
    assert message in str(error.value)
    assert str(path) in str(error.value)


def build(engine: Engine) -> None:
    """The page's edit alerted to Alice at 14:35; MedWatch blocked since the morning."""
    data.queue_change(engine)
    sent = alerts.send_pending(engine, SETTINGS, SOURCES, data.NOW, Capture())
    assert sent.emails == 1
    with Session(engine) as session:
        session.add(
            Source(
                id=MEDWATCH.id,
                kind="feed",
                url=MEDWATCH.url,
                health="blocked",
                consecutive_failures=2,
                last_checked_at=datetime(2023, 10, 11, 6, 0, tzinfo=UTC),
                last_success_at=datetime(2023, 10, 10, 18, 0, tzinfo=UTC),
                last_error="HTTP 403 from AkamaiGHost",
            )
        )
        session.commit()


def report_rows(engine: Engine) -> list[tuple[str | None, str, str]]:
    with Session(engine) as session:
        rows = session.exec(select(Alert).where(Alert.kind == "report").order_by(col(Alert.id)))
        return [(row.dedup_key, row.status, row.severity) for row in rows]


def test_the_report_goes_out_once_a_day_across_restarts(shared_url: str) -> None:
    first = make_engine(shared_url)
    build(first)
    before = MORNING - timedelta(minutes=1)
    assert daily_report.queue_daily_report(first, SETTINGS, SOURCES, before) == []
    queued = daily_report.queue_daily_report(first, SETTINGS, SOURCES, MORNING)
    assert queued == [
        "report:2023-10-11:compliance@clinic.example",
        "report:2023-10-11:owner@clinic.example",
    ]
    mailer = Capture()
    assert alerts.send_pending(first, SETTINGS, SOURCES, MORNING, mailer).emails == 2
    first.dispose()
    # fdawatch restarts twice the same day: nothing more is queued or sent
    for hour, minute in ((7, 1), (23, 59)):
        again = make_engine(shared_url)
        now = MORNING.replace(hour=hour, minute=minute)
        assert daily_report.queue_daily_report(again, SETTINGS, SOURCES, now) == []
        assert alerts.send_pending(again, SETTINGS, SOURCES, now, mailer).nothing_due
        again.dispose()
    assert [m["To"] for m in mailer.messages] == [
        "compliance@clinic.example",
        "owner@clinic.example",
    ]
    # the next morning brings the next report
    final = make_engine(shared_url)
    next_day = daily_report.queue_daily_report(final, SETTINGS, SOURCES, MORNING + timedelta(1))
    assert next_day == [
        "report:2023-10-12:compliance@clinic.example",
        "report:2023-10-12:owner@clinic.example",
    ]
    assert [status for _, status, _ in report_rows(final)] == ["sent", "sent", "pending", "pending"]
    final.dispose()


def test_racing_processes_queue_one_report_per_address(
    shared_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = make_engine(shared_url)
    build(setup)
    setup.dispose()
    monkeypatch.setattr(outbox, "is_queued", lambda engine, key: False)  # all pass the check
    engines = [make_engine(shared_url) for _ in range(3)]
    barrier = threading.Barrier(len(engines))
    results: list[list[str]] = []

    def run(engine: Engine) -> None:
        barrier.wait()
        results.append(daily_report.queue_daily_report(engine, SETTINGS, SOURCES, MORNING))

    threads = [threading.Thread(target=run, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(key for keys in results for key in keys) == [
        "report:2023-10-11:compliance@clinic.example",
        "report:2023-10-11:owner@clinic.example",
    ]
    assert len(report_rows(engines[0])) == 2
    for engine in engines:
        engine.dispose()


def test_a_failed_send_is_retried_later_with_the_report_as_queued(engine: Engine) -> None:
    build(engine)
    one = replace(SETTINGS, report=replace(REPORT, to=("compliance@clinic.example",)))
    daily_report.queue_daily_report(engine, one, SOURCES, MORNING)
    assert alerts.send_pending(engine, one, SOURCES, MORNING, Refuses()).retry_emails == 1
    with Session(engine) as session:  # meanwhile MedWatch works again
        source = session.get(Source, MEDWATCH.id)
        assert source is not None
        source.health, source.last_success_at = "ok", MORNING + timedelta(hours=1)
        session.commit()
    later = MORNING + timedelta(hours=2)
    mailer = Capture()
    assert alerts.send_pending(engine, one, SOURCES, later, mailer).emails == 1
    assert daily_report.queue_daily_report(engine, one, SOURCES, later) == []
    text = mailer.messages[0].get_body(("plain",)).get_content()
    assert "(as of 2023-10-11 07:00 UTC)" in text
    assert "  blocked  fda_medwatch_rss: last success 2023-10-10 18:00 UTC" in text


def test_the_report_lists_freshness_open_changes_and_the_days_alerts(engine: Engine) -> None:
    build(engine)
    daily_report.queue_daily_report(engine, SETTINGS, SOURCES, MORNING)
    mailer = Capture()
    alerts.send_pending(engine, SETTINGS, SOURCES, MORNING, mailer)
    message = mailer.messages[0]
    with Session(engine) as session:
        alerted = session.exec(select(Alert).where(Alert.kind == "change")).one()
    assert message["Subject"] == (
        "[fdawatch] Daily watch report 2023-10-11: 2 of 2 sources need attention "
        "(1 blocked, 1 stale); 1 open change"
    )
    text = message.get_body(("plain",)).get_content()
    assert text.splitlines() == [
        "fdawatch daily watch report, 2023-10-11 (as of 2023-10-11 07:00 UTC)",
        "2 of 2 sources need attention: changes there may be missed.",
        "",
        "== Sources (1 blocked, 1 stale)",
        "  blocked  fda_medwatch_rss: last success 2023-10-10 18:00 UTC; HTTP 403 from AkamaiGHost",
        "  stale    fda_ketamine_alert: last success 2023-10-10 14:30 UTC",
        "",
        "== Open changes (T1-T3 changes alerted and not yet reviewed): 1",
        f"  T2 #{alerted.change_id} changed · {data.SOURCE_TITLE}: {data.TITLE}",
        "      detected 2023-10-10 14:30 UTC; told alice@pharmacy.example at 2023-10-10 14:35 UTC",
        "",
        "== Alerts sent in the last day: 1",
        f"  2023-10-10 14:35 UTC alice@pharmacy.example: T2 change #{alerted.change_id} "
        f"(fda_ketamine_alert) {alerted.message_id}",
        "",
        "--",
        "Sent by fdawatch once a day ([report] in fdawatch.toml). `fdawatch status` shows the "
        "same freshness.",
    ]
    html = message.get_body(("html",)).get_content()
    assert "2 of 2 sources need attention</strong>" in html
    assert report_rows(engine)[0][2] == "T2"  # a report naming a problem is filed at T2


def test_a_reviewed_change_is_no_longer_open_in_the_next_report(engine: Engine) -> None:
    build(engine)
    with Session(engine) as session:
        alerted = session.exec(select(Alert).where(Alert.kind == "change")).one()
        assert alerted.change_id is not None
        acknowledge(
            session,
            [alerted.change_id],
            reviewer="bob@pharmacy.example",
            disposition="no-action",
            note="",
            now=MORNING,
        )
        session.commit()
    daily_report.queue_daily_report(engine, SETTINGS, SOURCES, MORNING)
    mailer = Capture()
    alerts.send_pending(engine, SETTINGS, SOURCES, MORNING, mailer)
    text = mailer.messages[0].get_body(("plain",)).get_content()
    assert "== Open changes (T1-T3 changes alerted and not yet reviewed): 0" in text.splitlines()
    assert mailer.messages[0]["Subject"].endswith("(1 blocked, 1 stale); 0 open changes")


@pytest.mark.parametrize("configured", [True, False])
def test_the_daemon_checks_every_minute_for_a_due_report_only_when_configured(
    engine: Engine, configured: bool
) -> None:
    build(engine)
    config = SETTINGS if configured else replace(SETTINGS, report=None)
    watcher = Watcher(engine, config, SOURCES, crawl=lambda batch: None, clock=lambda: MORNING)
    scheduler = build_scheduler(watcher, BackgroundScheduler(timezone=UTC), now=MORNING)
    scheduler.start(paused=True)
    try:
        job = scheduler.get_job("daily-report")
        if configured:
            assert job.trigger.interval == timedelta(minutes=1)
            assert job.next_run_time == MORNING  # a daemon started after 07:00 catches up
            job.func()
            job.func()
    finally:
        scheduler.shutdown(wait=False)
    assert (job is not None) == configured
    assert [key for key, _, _ in report_rows(engine)] == (
        [
            "report:2023-10-11:compliance@clinic.example",
            "report:2023-10-11:owner@clinic.example",
        ]
        if configured
        else []
    )
