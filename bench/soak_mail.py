"""The soak's mail sink: a real SMTP server (aiosmtpd) on loopback that keeps every message.

Each message is stored as `NNNNNN.eml`, and one line of `received.jsonl` says when it arrived,
its Message-ID, recipients, subject and the change ids it carries (fdawatch's
`X-Fdawatch-Changes` header), which is what the report scores time-to-alert and duplicates on.
"""

from __future__ import annotations

import json
import threading
import time
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from typing import Any

from bench.run import MailSink as CountingSink


def parse_message(data: bytes, received: float, number: int) -> dict[str, Any]:
    """The facts of one stored message the report needs."""
    message = message_from_bytes(data, policy=default)
    changes = str(message.get("X-Fdawatch-Changes", "") or "")
    return {
        "n": number,
        "t": round(received, 3),
        "message_id": str(message.get("Message-ID", "") or ""),
        "to": str(message.get("To", "") or ""),
        "subject": str(message.get("Subject", "") or ""),
        "changes": [int(part) for part in changes.split() if part.isdigit()],
    }


class MailSink(CountingSink):
    """`bench.run`'s sink, storing each message in `folder` and logging its arrival."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.log = folder / "received.jsonl"
        self.log.touch()
        self.lock = threading.Lock()
        super().__init__()

    def received(self, data: bytes | str) -> None:
        raw = data.encode() if isinstance(data, str) else data
        now = time.time()
        with self.lock:
            self.count += 1
            (self.folder / f"{self.count:06d}.eml").write_bytes(raw)
            line = parse_message(raw, now, self.count)
            with self.log.open("a") as out:
                out.write(json.dumps(line) + "\n")
