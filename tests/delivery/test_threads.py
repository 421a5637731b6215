"""Alerts about one document thread: In-Reply-To and References name the Message-ID of the first
alert that recipient was sent about it. Runs on SQLite and PostgreSQL.

The history is the alert tests' FDA ketamine alert page (tests/support/alert_history.py), edited
again and again; a second page (the nasal-spray alert) is another document.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from email.message import EmailMessage

import pytest
from sqlalchemy import Engine

from monitor.config import Settings
from monitor.delivery import alerts
from tests.support import alert_history as data
from tests.support.mailers import Capture, Refuses

NASAL = data.source_config(
    "fda_ketamine_nasal_alert",
    "https://www.fda.gov/drugs/human-drug-compounding/fda-alerts-health-care-professionals-"
    "potential-risks-associated-compounded-ketamine-nasal-spray",
    "FDA alert: compounded ketamine nasal spray",
)
SOURCES = {**data.SOURCES, NASAL.id: NASAL}
ALICE_ONLY = data.settings()
BOTH = data.settings(recipients=(data.ALICE, data.BOB))


def edit(engine: Engine, number: int, settings: Settings, source_id: str = data.SOURCE_ID) -> None:
    """Edit `number` of a page (1: its first), alerted to `settings.recipients`."""
    other = source_id == NASAL.id
    data.queue_change(
        engine,
        recipients=settings.recipients,
        source_id=source_id,
        url=NASAL.url if other else data.URL,
        source_title=NASAL.title if other else data.SOURCE_TITLE,
        detected_at=data.DETECTED_AT + timedelta(hours=number),
    )


def send(engine: Engine, number: int, settings: Settings) -> dict[str, EmailMessage]:
    """Send what is due after edit `number`; the messages by recipient."""
    mailer = Capture()
    now = data.DETECTED_AT + timedelta(hours=number, minutes=5)
    alerts.send_pending(engine, settings, SOURCES, now, mailer)
    return {str(message["To"]): message for message in mailer.messages}


def threading(message: EmailMessage) -> tuple[str | None, str | None]:
    return message["In-Reply-To"], message["References"]


def test_later_alerts_about_a_document_reply_to_the_first(engine: Engine) -> None:
    sent = []
    for number in (1, 2, 3):
        edit(engine, number, ALICE_ONLY)
        sent.append(send(engine, number, ALICE_ONLY)["alice@pharmacy.example"])
    first = sent[0]["Message-ID"]
    assert [threading(message) for message in sent] == [
        (None, None),
        (first, first),
        (first, first),
    ]
    assert len({message["Message-ID"] for message in sent}) == 3


def test_each_recipient_has_their_own_thread(engine: Engine) -> None:
    edit(engine, 1, ALICE_ONLY)
    alice_first = send(engine, 1, ALICE_ONLY)["alice@pharmacy.example"]["Message-ID"]
    edit(engine, 2, BOTH)  # Bob joins: his first alert about the page starts his thread
    second = send(engine, 2, BOTH)
    bob_first = second["bob@pharmacy.example"]["Message-ID"]
    edit(engine, 3, BOTH)
    third = send(engine, 3, BOTH)
    assert {who: [threading(second[who]), threading(third[who])] for who in sorted(second)} == {
        "alice@pharmacy.example": [(alice_first, alice_first), (alice_first, alice_first)],
        "bob@pharmacy.example": [(None, None), (bob_first, bob_first)],
    }


def test_another_document_starts_its_own_thread(engine: Engine) -> None:
    edit(engine, 1, ALICE_ONLY)
    send(engine, 1, ALICE_ONLY)
    edit(engine, 2, ALICE_ONLY, source_id=NASAL.id)
    assert threading(send(engine, 2, ALICE_ONLY)["alice@pharmacy.example"]) == (None, None)


def test_an_email_about_two_documents_follows_the_one_with_a_thread(engine: Engine) -> None:
    edit(engine, 1, ALICE_ONLY)
    first = send(engine, 1, ALICE_ONLY)["alice@pharmacy.example"]["Message-ID"]
    edit(engine, 2, ALICE_ONLY, source_id=NASAL.id)  # new document, listed first (earlier)...
    edit(engine, 3, ALICE_ONLY)  # ...and the page again, in the same email
    both = send(engine, 3, ALICE_ONLY)["alice@pharmacy.example"]
    assert threading(both) == (first, first)


def test_an_alert_never_delivered_starts_no_thread(engine: Engine) -> None:
    edit(engine, 1, ALICE_ONLY)
    now = data.DETECTED_AT + timedelta(hours=1, minutes=5)
    refused = alerts.send_pending(engine, ALICE_ONLY, SOURCES, now, Refuses(permanent=True))
    assert refused.failed_emails == 1
    edit(engine, 2, ALICE_ONLY)
    second = send(engine, 2, ALICE_ONLY)["alice@pharmacy.example"]
    edit(engine, 3, ALICE_ONLY)
    third = send(engine, 3, ALICE_ONLY)["alice@pharmacy.example"]
    assert threading(second) == (None, None)
    assert threading(third) == (second["Message-ID"], second["Message-ID"])


@pytest.mark.parametrize("cap", [1, 20])
def test_threading_does_not_depend_on_the_storm_cap(engine: Engine, cap: int) -> None:
    settings = replace(ALICE_ONLY, storm_cap=cap)
    edit(engine, 1, settings)
    first = send(engine, 1, settings)["alice@pharmacy.example"]["Message-ID"]
    edit(engine, 2, settings, source_id=NASAL.id)
    edit(engine, 3, settings)
    assert threading(send(engine, 3, settings)["alice@pharmacy.example"]) == (first, first)
