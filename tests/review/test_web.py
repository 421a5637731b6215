"""The review app with Flask's test client, on SQLite and PostgreSQL: GET records nothing,
POST needs the link, the CSRF token and this site's origin; the queue lists open changes."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine
from sqlmodel import Session

from monitor.review.records import review_history
from monitor.review.web import create_app
from tests.support import alert_history as factory
from tests.support.alert_history import NOW, queue_change
from tests.support.review_history import review_links_in, review_settings, send

LATER = NOW + timedelta(hours=2)
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def client(engine: Engine) -> FlaskClient:
    app = create_app(review_settings(), lambda: engine, None, now=lambda: LATER)
    return app.test_client()


def alerted_link(engine: Engine) -> tuple[int, str]:
    """Change 1, alerted to Alice and Bob; Alice's link as a path on the app."""
    change_id = queue_change(engine, [factory.ALICE, factory.BOB])
    _, mail = send(engine, review_settings(), NOW)
    alice = next(m for m in mail.messages if m["To"] == factory.ALICE.email)
    (link,) = review_links_in(alice)
    parts = urlsplit(link)
    return change_id, f"{parts.path}?{parts.query}"


def form_of(client: FlaskClient, path: str) -> dict[str, str]:
    page = client.get(path)
    assert page.status_code == 200
    query = dict(p.split("=", 1) for p in path.split("?", 1)[1].split("&"))
    (csrf,) = _CSRF.findall(page.text)
    return {"to": query["to"], "sig": query["sig"], "csrf": csrf}


def test_opening_the_link_shows_the_change_and_a_form_and_records_nothing(
    engine: Engine, client: FlaskClient
) -> None:
    change_id, path = alerted_link(engine)
    for _ in range(3):  # a mail scanner, a preview pane, the reviewer
        page = client.get(path)
        assert page.status_code == 200
    assert "Reviewing as <strong>alice@pharmacy.example</strong>" in page.text
    assert '<form class="review-form panel" method="post" action="/review/1">' in page.text
    assert "alice@pharmacy.example: sent 2023-10-10 14:35 UTC" in page.text
    assert "bob@pharmacy.example: sent 2023-10-10 14:35 UTC" in page.text
    with Session(engine) as session:
        assert review_history(session, change_id) == []


def test_submitting_records_the_review_for_the_links_recipient(
    engine: Engine, client: FlaskClient
) -> None:
    change_id, path = alerted_link(engine)
    form = form_of(client, path)
    answer = client.post(
        f"/review/{change_id}",
        data={**form, "disposition": "action-needed", "note": "update leaflet, \"v4\""},
        headers={"Origin": "http://localhost"},
    )
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/change/1?reviewed=1"
    with Session(engine) as session:
        (review,) = review_history(session, change_id)
        assert (review.reviewer, review.disposition, review.note, review.via) == (
            "alice@pharmacy.example",
            "action-needed",
            'update leaflet, "v4"',
            "web",
        )
        assert review.reviewed_at == LATER
    page = client.get("/change/1?reviewed=1").text
    assert "Your review of change 1 is recorded." in page
    assert (
        "<strong>action-needed</strong> by alice@pharmacy.example on 2023-10-10 16:35 UTC: "
        "update leaflet, &#34;v4&#34; (current)"
    ) in page


@pytest.mark.parametrize(
    ("change", "edit", "headers", "status", "reason"),
    [
        ("2", {}, {}, 403, "the link is not valid for this change and recipient"),
        ("1", {"to": "bob@pharmacy.example"}, {}, 403, "not valid for this change and recipient"),
        ("1", {"csrf": "forged"}, {}, 403, "the form&#39;s security token does not match"),
        ("1", {}, {"Origin": "https://evil.example"}, 403, "sent from https://evil.example"),
        ("1", {"disposition": "later"}, {}, 400, "disposition &#39;later&#39; is unknown"),
    ],
    ids=["other change", "other recipient", "no csrf", "other origin", "bad disposition"],
)
def test_a_bad_submission_records_nothing(
    engine: Engine,
    client: FlaskClient,
    change: str,
    edit: dict[str, str],
    headers: dict[str, str],
    status: int,
    reason: str,
) -> None:
    change_id, path = alerted_link(engine)
    assert (change_id, queue_change(engine, [])) == (1, 2)  # change 2 for "other change"
    data = {**form_of(client, path), "disposition": "done", "note": "", **edit}
    answer = client.post(f"/review/{change}", data=data, headers=headers)
    assert answer.status_code == status
    assert reason in answer.text
    with Session(engine) as session:
        assert review_history(session, 1) == []
        assert review_history(session, 2) == []


def test_the_queue_lists_open_changes_oldest_first_with_who_was_told(
    engine: Engine, client: FlaskClient
) -> None:
    first = queue_change(engine, [factory.ALICE, factory.BOB])
    quiet = queue_change(engine, [], tier="T4")  # below T3: not in the queue
    _, _mail = send(engine, review_settings(), NOW)
    third = queue_change(engine, [factory.ALICE], detected_at=NOW + timedelta(minutes=1))
    page = client.get("/queue").text

    assert "2 waiting for a review" in page
    assert page.index(f'href="/change/{first}"') < page.index(f'href="/change/{third}"')
    assert f'href="/change/{quiet}"' not in page
    assert (
        "alice@pharmacy.example (2023-10-10 14:35 UTC)<br>bob@pharmacy.example "
        "(2023-10-10 14:35 UTC)"
    ) in page
    assert "alice@pharmacy.example (pending)" in page
