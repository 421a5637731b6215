"""The real pipeline: `fdawatch crawl --all` in child processes against the loopback fixture server.

Three passes over `tests/fixtures/demo/`: v1 (baseline: nothing raised), v2 (the recorded next
versions: exactly the planted changes), v2 again (the server answers 304: nothing stored).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import zipfile
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from db.engine import open_database
from db.models import Snapshot
from tests.support.feeds import independent_items
from tests.support.loopback import LoopbackServer
from tests.support.paths import DEMO, RECALLS_HISTORY, ROOT

pytestmark = pytest.mark.slow


def fdawatch(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def changes(env: dict[str, str]) -> list[dict[str, object]]:
    result = fdawatch(env, "changes", "--json")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_three_passes_find_exactly_the_planted_changes(tmp_path: Path) -> None:
    with LoopbackServer(DEMO) as server:
        port = server.url.rsplit(":", 1)[1]
        sources = tmp_path / "sources.toml"
        sources.write_text(
            (DEMO / "sources.toml").read_text(encoding="utf-8").replace("{port}", port),
            encoding="utf-8",
        )
        database = f"sqlite:///{tmp_path / 'history.db'}"
        env = {
            "PATH": "/usr/bin:/bin",
            "FDAWATCH_SOURCES": str(sources),
            "FDAWATCH_DATABASE_URL": database,
            "FDAWATCH_CONFIG": "",
            "FDAWATCH_VAR_DIR": str(tmp_path / "var"),
            "FDAWATCH_CRAWL_DELAY": "0",
            "FDAWATCH_CRAWL_CONCURRENCY_PER_HOST": "8",
        }
        server.set_version(1)
        first = fdawatch(env, "crawl", "--all")
        assert first.returncode == 0, first.stdout + first.stderr
        assert "changed 0, failed 0" in first.stdout
        assert changes(env) == []

        server.set_version(2)
        second = fdawatch(env, "crawl", "--all")
        assert second.returncode == 0, second.stdout + second.stderr
        found = changes(env)
        by_source: dict[object, list[dict[str, object]]] = {}
        for change in found:
            by_source.setdefault(change["source"], []).append(change)
        new_links = set(independent_items(next(RECALLS_HISTORY.glob("002_*.xml")))) - set(
            independent_items(next(RECALLS_HISTORY.glob("001_*.xml")))
        )
        assert len(by_source.pop("fda_food_safety_recalls")) == len(new_links)
        assert {source: [c["kind"] for c in items] for source, items in by_source.items()} == {
            "fda_ketamine_oral_alert": ["changed"],
            "fda_compounding_risk_alerts": ["changed"],
            "fda_spravato_rems": ["changed"],
        }  # and nothing for fda_date_only_demo, whose only edit is its date
        engine = open_database(database)
        with Session(engine) as session:
            stored = session.exec(select(func.count()).select_from(Snapshot)).one()
        requests_before = len(server.hits)

        third = fdawatch(env, "crawl", "--all")
        assert third.returncode == 0, third.stdout + third.stderr
        assert "changed 0, failed 0" in third.stdout
        with Session(engine) as session:
            assert session.exec(select(func.count()).select_from(Snapshot)).one() == stored
        engine.dispose()
        third_requests = server.hits[requests_before:]
    pages = [r for r in third_requests if not r[1].startswith("/robots.txt")]
    assert pages and all(r[2] == 304 for r in pages)  # conditional GET answered "not modified"
    assert all("fdawatch" in str(r[3].get("User-Agent", "")) for r in third_requests)
    assert len(changes(env)) == len(found)


def test_demo_leaves_alert_emails_and_reports_where(tmp_path: Path) -> None:
    from tests.support.demo import run_demo

    lines: list[str] = []
    count = run_demo(tmp_path / "demo", say=lines.append)
    output = "\n".join(lines)
    emails = sorted((tmp_path / "demo" / "outbox").glob("*.eml"))
    # The three planted page edits and the one new recall item; nothing for date-only.html.
    assert count == 4, output
    # One email per recipient (the demo configures two), each path reported.
    recipients = sorted(
        BytesParser(policy=policy.default).parsebytes(path.read_bytes())["To"] for path in emails
    )
    assert recipients == ["compliance@clinic.example", "owner@clinic.example"], output
    assert all(str(path) in output for path in emails)
    assert "history database:" in output
    [suggested] = [line.removeprefix("try: ") for line in lines if line.startswith("try: ")]
    program, *args = shlex.split(suggested)
    assert program == ".venv/bin/fdawatch" and "--config" in args
    tried = fdawatch({"PATH": "/usr/bin:/bin"}, *args)
    assert tried.returncode == 0 and tried.stderr == "", tried.stderr
    assert len(tried.stdout.splitlines()) == count + 1  # a header, then one line per change


def test_the_compliance_officers_demo_email_leads_with_the_rems_change(tmp_path: Path) -> None:
    """What `make demo` sends the compliance officer: the REMS edit first, FDA's own date shown."""
    from email import message_from_bytes
    from email.policy import default

    from tests.support.demo import run_demo

    run_demo(tmp_path / "demo", say=lambda _: None)
    messages = [
        message_from_bytes(path.read_bytes(), policy=default)
        for path in sorted((tmp_path / "demo" / "outbox").glob("*.eml"))
    ]
    [officer] = [m for m in messages if m["To"] == "compliance@clinic.example"]
    text = str(officer.get_body(("plain",)).get_content()).replace("\r\n", "\n")  # type: ignore[union-attr]

    assert officer["Subject"] == "[fdawatch] T1 Spravato REMS: REMS Requirements changed (+3 more)"
    overview = text[text.index("In this email:") : text.index("=====")]
    assert overview.splitlines()[1].startswith(
        "  1. T1 critical · REMS@FDA: Spravato (esketamine) REMS (SYNTHETIC fixture) · "
        "Healthcare Settings: added “Outpatient healthcare settings must have a prescriber on site"
    )
    assert "  [REMS Requirements › Healthcare Settings]\n" in text
    assert (
        "    Removed:   REMS last update: 06/25/2019\n    Added:     REMS last update: 12/31/2024\n"
        in text
    )
    assert "FDA date: Content current as of 2025-02-11\n" in text
    assert "View change & evidence: http://127.0.0.1:8000/changes/" in text
    assert "@@" not in text and "fdawatch show" not in text
    manifests = [
        json.loads(zipfile.ZipFile(bundle).read("manifest.json"))
        for bundle in sorted((tmp_path / "demo" / "site" / "evidence").glob("*.zip"))
    ]
    dates = {m["after"]["url"].rsplit("/", 1)[1]: m["after"]["content_date"] for m in manifests}
    assert dates["ketamine-oral-alert.html"] == "2025-02-11"
