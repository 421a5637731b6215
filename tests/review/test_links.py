"""Signed review links: good only for their change and recipient, until they expire."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import Engine

from monitor.config import load_settings
from monitor.config_review import ReviewSettings
from monitor.errors import ConfigError
from monitor.review.links import LinkRefused, review_link, verify
from tests.support import alert_history as factory
from tests.support.alert_history import NOW, queue_change
from tests.support.review_history import (
    REVIEW_URL,
    SECRET,
    review_links_in,
    review_settings,
    send,
)

SETTINGS = ReviewSettings(url=REVIEW_URL, secret_key=SECRET, link_days=30)
ALICE = "alice@pharmacy.example"
WRONG = "the link is not valid for this change and recipient: open it from your own alert email"


def link_parts(link: str) -> tuple[int, str, str]:
    parts = urlsplit(link)
    query = parse_qs(parts.query)
    return int(parts.path.rsplit("/", 1)[1]), query["to"][0], query["sig"][0]


def tampered(sig: str) -> str:
    middle = len(sig) // 2
    return sig[:middle] + ("A" if sig[middle] != "A" else "B") + sig[middle + 1 :]


def test_a_link_verifies_for_its_change_and_recipient_until_it_expires() -> None:
    link = review_link(SETTINGS, 12, ALICE, NOW)
    change_id, to, sig = link_parts(link)
    assert link.startswith(f"{REVIEW_URL}/review/12?to={ALICE}&sig=")
    assert (change_id, to) == (12, ALICE)
    verify(SETTINGS, 12, ALICE, sig, NOW + timedelta(days=30))


@pytest.mark.parametrize(
    ("change_id", "recipient", "edit", "later", "reason"),
    [
        (13, ALICE, None, 0, WRONG),
        (12, "bob@pharmacy.example", None, 0, WRONG),
        (12, ALICE, tampered, 0, WRONG),
        (
            12,
            ALICE,
            None,
            31,
            "the link has expired (links work for 30 days): review with `fdawatch ack` or ask "
            "for a new alert",
        ),
    ],
    ids=["other change", "other recipient", "tampered", "expired"],
)
def test_a_link_is_refused_for_anything_else(
    change_id: int, recipient: str, edit: object, later: int, reason: str
) -> None:
    _, _, sig = link_parts(review_link(SETTINGS, 12, ALICE, NOW))
    if callable(edit):
        sig = edit(sig)
    with pytest.raises(LinkRefused) as refused:
        verify(SETTINGS, change_id, recipient, sig, NOW + timedelta(days=later))
    assert refused.value.reason == reason


def test_another_key_refuses_the_link() -> None:
    _, _, sig = link_parts(review_link(SETTINGS, 12, ALICE, NOW))
    other = ReviewSettings(url=REVIEW_URL, secret_key="f" * 64)
    with pytest.raises(LinkRefused, match="not valid"):
        verify(other, 12, ALICE, sig, NOW)


def test_each_recipient_gets_a_link_of_their_own_per_change(engine: Engine) -> None:
    first = queue_change(engine, [factory.ALICE, factory.BOB])
    _, mail = send(engine, review_settings(), NOW)

    links = {m["To"]: review_links_in(m) for m in mail.messages}
    assert sorted(links) == [factory.ALICE.email, factory.BOB.email]
    for recipient, (link,) in links.items():
        assert link_parts(link)[:2] == (first, recipient)
        verify(SETTINGS, first, recipient, link_parts(link)[2], NOW)
    assert "Review this change" in mail.messages[0].get_body(("html",)).get_content()


def test_without_a_key_alerts_carry_no_link(engine: Engine) -> None:
    queue_change(engine)
    _, mail = send(engine, factory.settings(), NOW)
    assert review_links_in(mail.messages[0]) == []
    assert "Review this change" not in mail.messages[0].get_body(("html",)).get_content()


@pytest.mark.parametrize(
    ("toml", "env", "message"),
    [
        ("[review]\nurl = 'fdawatch.example'\n", {}, "[review] url must be where recipients"),
        ("[review]\nlink_days = 0\n", {}, "[review] link_days must be a number of days"),
        ("", {"FDAWATCH_SECRET_KEY": "short"}, "FDAWATCH_SECRET_KEY has 5 characters"),
        ("[escalation]\nafter = 'soon'\n", {}, "[escalation] after must be a duration"),
        ("[escalation]\nto = ['qa']\n", {}, "[escalation] to must be a list of addresses"),
        ("[escalation]\nseverities = ['T5']\n", {}, "[escalation] severities must be a list"),
    ],
)
def test_bad_review_and_escalation_settings_name_the_key(
    tmp_path: Path, toml: str, env: dict[str, str], message: str
) -> None:
    config = tmp_path / "fdawatch.toml"
    config.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_settings(env, config)


def test_review_and_escalation_settings_are_read(tmp_path: Path) -> None:
    config = tmp_path / "fdawatch.toml"
    config.write_text(
        "[review]\nurl = 'https://fdawatch.clinic.example/'\nlink_days = 14\n"
        "[escalation]\nafter = '2d'\nto = ['qa@clinic.example']\nseverities = ['T1']\n",
        encoding="utf-8",
    )
    settings = load_settings({"FDAWATCH_SECRET_KEY": SECRET}, config)
    assert settings.review == ReviewSettings("https://fdawatch.clinic.example", SECRET, 14)
    assert settings.review.links
    assert SECRET not in repr(settings)
    assert (settings.escalation.after, settings.escalation.to, settings.escalation.severities) == (
        timedelta(days=2),
        ("qa@clinic.example",),
        ("T1",),
    )
