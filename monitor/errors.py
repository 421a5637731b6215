"""Every error fdawatch reports to a person, in one family.

An `FdawatchError` is something the user can act on: its message names the bad input (the file,
the entry, the setting, the id) and says how to fix it. The command line prints it in one line
with exit code 2 and catches nothing else, so a bug (a `KeyError`, an `AttributeError`) still
shows its traceback instead of passing for a user error. Like Scrapy's `scrapy.exceptions`, the
whole family lives here; the errors of the fetch layer (refusals, truncated bodies) live with the
spiders, because they end as failed fetches, never as messages to a person.
"""

from __future__ import annotations


class FdawatchError(Exception):
    """A problem the user can fix; the message says which input and how."""


class ConfigError(FdawatchError, ValueError):
    """A bad setting (fdawatch.toml or the environment): names the key or variable."""


class SourcesError(FdawatchError, ValueError):
    """A bad sources.toml: the message names the entry and the field."""


class DatabaseError(FdawatchError):
    """The history database cannot be opened or written (no secret in the message)."""


class NotFound(FdawatchError, LookupError):
    """An id that names nothing (a change, a source): the message says where to find ids."""


class LabelError(FdawatchError, ValueError):
    """A body that is not a readable label: the message says what was expected."""


class RecordError(FdawatchError, ValueError):
    """A record that cannot be rendered: the message names the problem."""


class EvidenceError(NotFound):
    """The change or its stored data cannot make a bundle; the message says which and why."""


class CommandError(FdawatchError):
    """A command cannot do what was asked (a file it cannot write, a port in use): the message
    names it and what to pick instead."""


class LeaseHeld(FdawatchError):
    """Another process holds the scheduler lock: the message names it and says what to do."""


class DeliveryError(FdawatchError):
    """The message was not accepted; `temporary` says whether retrying later can help."""

    def __init__(self, reason: str, *, temporary: bool, connection: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.temporary = temporary
        self.connection = connection
