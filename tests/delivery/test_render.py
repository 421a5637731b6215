"""What an alert looks like: golden files, and page content that tries to be markup or headers."""

from __future__ import annotations

import os
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from html.parser import HTMLParser
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from monitor.delivery import compose, render
from tests.support import alert_history as factory
from tests.support.alert_history import NOW, SOURCES
from tests.support.readback import parts

GOLDEN = Path(__file__).parent / "golden"
UPDATE_GOLDEN = os.environ.get("FDAWATCH_UPDATE_GOLDEN") == "1"
VOLATILE_HEADERS = ("Message-ID", "Date", "Content-Type")  # boundary and ids: normalized out
EVIL_TITLE = 'Ketamine <script>alert(1)</script> <img src=x onerror="alert(2)">'
EVIL_URL = "javascript:alert(1)"
EVIL_SENTENCE = (
    'Compounded ketamine <script>alert("x")</script> is <img src=x onerror=alert(3)> '
    '<a href="javascript:alert(4)">unsafe</a>.'
)


class Elements(HTMLParser):
    """The tags and attributes a browser would build from an HTML part."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    @classmethod
    def of(cls, html: str) -> Elements:
        parser = cls()
        parser.feed(html)
        parser.close()
        return parser

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    @property
    def attributes(self) -> list[tuple[str, str]]:
        return [(name, value or "") for _, attrs in self.tags for name, value in attrs]


def round_trip(message: EmailMessage) -> EmailMessage:
    """Serialize and parse back, as a mail client would see it."""
    parsed = message_from_bytes(message.as_bytes(), policy=default_policy)
    assert isinstance(parsed, EmailMessage)
    return parsed


def check_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if UPDATE_GOLDEN:
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"{path} is missing: run with FDAWATCH_UPDATE_GOLDEN=1 to create it"
    assert actual == path.read_text(encoding="utf-8"), (
        f"{name} differs from the golden file; if the change is intended, rerun with "
        "FDAWATCH_UPDATE_GOLDEN=1 and review the diff"
    )


def test_representative_alert_matches_the_golden_files(engine: Engine) -> None:
    with Session(engine) as session:
        change = factory.add_change(session)
        session.commit()
        assert change.id is not None
        view = render.change_view(session, change, factory.settings(), SOURCES)
    message = round_trip(
        render.alert_email(
            [view],
            [],
            settings=factory.settings(),
            recipients=[factory.ALICE.email],
            message_id="<fdawatch.0000000000000000@fdawatch>",
            now=NOW,
        )
    )
    text, html = parts(message)
    headers = "".join(
        f"{name}: {value}\n" for name, value in message.items() if name not in VOLATILE_HEADERS
    )
    check_golden("alert.txt", headers + "\n" + text)
    check_golden("alert.html", html)


def evil_change(session: Session) -> int:
    change = factory.add_change(
        session,
        url=EVIL_URL,
        source_title="Evil <b>source</b>",
        title=EVIL_TITLE,
        old_text=f"{factory.TITLE}\n{factory.OLD_SENTENCE}",
        new_text=f"{EVIL_TITLE}\n{EVIL_SENTENCE}",
    )
    # Beyond what the writer stores (it flattens line breaks and names terms from a fixed list):
    # rendering must stay inert even for a row that holds a header break or markup anywhere.
    change.summary = "Changed:\r\nBcc: victim@evil.example\r\n\r\n<script>alert(5)</script>"
    change.matched_terms = ["ketamine<script>"]
    change.severity_reasons = ['<img src=x onerror="alert(6)">']
    session.add(change)
    session.commit()
    assert change.id is not None
    return change.id


def test_page_content_cannot_inject_markup_links_or_headers(engine: Engine) -> None:
    sources = {
        factory.SOURCE_ID: factory.source_config(url=EVIL_URL, title="Evil\r\nX-Injected: yes <b>")
    }
    settings = factory.settings(site_url="javascript:alert(7)")
    with Session(engine) as session:
        change_id = evil_change(session)
        message = round_trip(compose.preview(session, change_id, settings, sources, NOW))

    text, html = parts(message)
    elements = Elements.of(html)
    assert not {"script", "img", "b"} & {tag for tag, _ in elements.tags}
    assert [value for name, value in elements.attributes if name.startswith("on")] == []
    assert [value for name, value in elements.attributes if name in ("href", "src")] == []
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # shown, as text
    assert "javascript:alert(1)" in html  # the URL is shown, but not as a link
    assert "/changes/" not in html  # the bad site_url gives no evidence link
    assert "<script>alert(1)</script>" in text  # the text part is plain text: shown verbatim
    assert message["Bcc"] is None and message["X-Injected"] is None
    assert "\n" not in message["Subject"] and "\r" not in message["Subject"]
    # T1: the edit names ketamine with "compounded", which the writer raises one tier
    # the subject quotes what the page added (the stored summary's header break never reaches it)
    assert message["Subject"] == (
        "[fdawatch] T1 Evil X-Injected: yes <b>: Added “Ketamine <script>alert(1)</script> <img…”"
    )
    assert message["To"] == factory.ALICE.email


@pytest.mark.parametrize(
    ("url", "link"),
    [
        ("https://www.fda.gov/drugs", "https://www.fda.gov/drugs"),
        ("http://www.fda.gov/a?b=1&c=2", "http://www.fda.gov/a?b=1&c=2"),
        ("HTTPS://WWW.FDA.GOV/", "HTTPS://WWW.FDA.GOV/"),
        ("javascript:alert(1)", None),
        ("JavaScript:alert(1)", None),
        (" javascript:alert(1)", None),
        ("data:text/html,<script>alert(1)</script>", None),
        ("vbscript:msgbox(1)", None),
        ("//evil.example/x", None),
        ("https://", None),
        ("https://fda.gov/\nx", None),
        ("", None),
        (None, None),
    ],
)
def test_only_http_urls_become_links(url: str | None, link: str | None) -> None:
    assert render.link_url(url) == link


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("plain", "plain"),
        ("a\r\nBcc: x@y", "a Bcc: x@y"),
        ("a\nb\rc\td", "a b c d"),
        ("a\x00b\x1bc\x7fd", "a b c d"),
        ("line\u2028sep\u2029para\x85nel", "line sep para nel"),
        ("  spaced   out  ", "spaced out"),
        ("x" * 300, "x" * 199 + "…"),
    ],
)
def test_header_text_strips_line_breaks_and_controls(raw: str, clean: str) -> None:
    assert render.header_text(raw) == clean


def test_html_templates_autoescape_and_text_templates_do_not() -> None:
    env = render.environment()
    value = {"notice": "<b>&</b>"}
    html = env.from_string("{{ notice }}").render(value)  # strings default to escaping
    assert html == "&lt;b&gt;&amp;&lt;/b&gt;"
    for name, escaped in [
        ("alert.html.j2", True),
        ("_change.html.j2", True),
        ("health.html.j2", True),
        ("alert.txt.j2", False),
        ("_change.txt.j2", False),
        ("health.txt.j2", False),
    ]:
        assert env.select_template([name]).environment.autoescape(name) is escaped, name


def test_health_notice_renders_inert(engine: Engine) -> None:
    with Session(engine) as session:
        factory.add_source(session, url=EVIL_URL)
        view = render.notice_view(
            session,
            kind="layout_drift",
            source_id=factory.SOURCE_ID,
            notice="selector 'main' matched nothing <script>alert(1)</script>",
            created_at=NOW,
            sources={},
        )
    message = render.health_email(
        [view],
        settings=factory.settings(),
        recipients=[factory.ALICE.email],
        message_id="<fdawatch.1@fdawatch>",
        now=NOW,
    )
    text, html = parts(round_trip(message))
    assert "changed its layout" in message["Subject"]
    assert "<script" not in html and "&lt;script&gt;" in html
    assert "<script>alert(1)</script>" in text
    assert 'href="javascript:' not in html


@pytest.mark.parametrize(
    ("zone", "seen", "before"),
    [
        ("UTC", "2023-10-10 14:30 UTC", "2023-10-03 14:00 UTC"),
        ("America/New_York", "2023-10-10 10:30 EDT", "2023-10-03 10:00 EDT"),
        ("Asia/Kolkata", "2023-10-10 20:00 IST", "2023-10-03 19:30 IST"),
    ],
)
def test_times_are_shown_in_the_readers_timezone(
    engine: Engine, zone: str, seen: str, before: str
) -> None:
    settings = factory.settings(timezone=zone)
    with Session(engine) as session:
        change = factory.add_change(session)
        session.commit()
        assert change.id is not None
        message = compose.preview(session, change.id, settings, SOURCES, NOW)

    text, html = parts(message)
    assert f"Seen:     {seen}\n" in text.replace("\r\n", "\n")
    assert f"Before:   {before}\n" in text.replace("\r\n", "\n")
    assert f">{seen}</td>" in html
