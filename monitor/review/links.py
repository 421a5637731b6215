"""Signed review links: one per alert email recipient and change, expiring.

The link carries the change id (path), the recipient (`to`) and `sig`, an HMAC-SHA256
(itsdangerous' `TimestampSigner`, keyed with FDAWATCH_SECRET_KEY) over both plus the time it was
made. Another change id, another recipient, an altered signature or an old link fails
verification, so a link is good for nothing but reviewing its own change as its own recipient.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from urllib.parse import quote

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner

from monitor.config import Settings
from monitor.config_review import ReviewSettings

SALT = "fdawatch.review-link.v1"


class LinkRefused(Exception):
    """The link does not verify; `reason` says why in words a reviewer understands."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Signer(TimestampSigner):
    """A signer whose clock is the caller's `now` (history never reads the real time)."""

    def __init__(self, secret: str, now: datetime) -> None:
        super().__init__(secret, salt=SALT, digest_method=hashlib.sha256)
        self._now = int(now.timestamp())

    def get_timestamp(self) -> int:
        return self._now


def _message(change_id: int, recipient: str) -> str:
    return f"{change_id}:{recipient.strip().lower()}"


def sign(settings: ReviewSettings, change_id: int, recipient: str, now: datetime) -> str:
    """The `sig` of the link for `recipient` to review `change_id`, made at `now`."""
    if not settings.secret_key:
        raise LinkRefused("review links are off: FDAWATCH_SECRET_KEY is not set")
    message = _message(change_id, recipient)
    signed = _Signer(settings.secret_key, now).sign(message).decode()
    return signed[len(message) + 1 :]  # "<timestamp>.<signature>"


def review_link(settings: ReviewSettings, change_id: int, recipient: str, now: datetime) -> str:
    """The whole URL, on the review app's public address (`[review] url`)."""
    sig = sign(settings, change_id, recipient, now)
    return f"{settings.url}/review/{change_id}?to={quote(recipient, safe='@')}&sig={sig}"


def review_links(
    settings: Settings, change_ids: Sequence[int], recipient: str, now: datetime
) -> dict[int, str]:
    """Each change's link for `recipient` in one alert email; none while links are off."""
    if not settings.review.links:
        return {}
    return {
        change_id: review_link(settings.review, change_id, recipient, now)
        for change_id in change_ids
    }


def verify(
    settings: ReviewSettings, change_id: int, recipient: str, sig: str, now: datetime
) -> None:
    """Nothing when the link is good; `LinkRefused` saying why when it is not."""
    if not settings.secret_key:
        raise LinkRefused("reviews by link are off here: FDAWATCH_SECRET_KEY is not set")
    if not recipient or not sig:
        raise LinkRefused("the link is incomplete: open it from the alert email again")
    signer = _Signer(settings.secret_key, now)
    max_age = settings.link_days * 86400
    try:
        signer.unsign(f"{_message(change_id, recipient)}.{sig}", max_age=max_age)
    except SignatureExpired:
        raise LinkRefused(
            f"the link has expired (links work for {settings.link_days} days): review with "
            "`fdawatch ack` or ask for a new alert"
        ) from None
    except BadSignature:
        raise LinkRefused(
            "the link is not valid for this change and recipient: open it from your own alert email"
        ) from None
