"""Reading a TOML configuration file, with one-line errors that say how to fix it."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from monitor.errors import ConfigError


def read_toml(path: Path, point_instead: str) -> dict[str, Any]:
    """The parsed file; bad syntax or an unreadable file is a `ConfigError` naming it."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML ({error}); fix the syntax") from None
    except (UnicodeDecodeError, OSError) as error:
        raise ConfigError(unreadable_file(path, error, point_instead)) from None


def unreadable_file(path: Path, error: UnicodeDecodeError | OSError, point_instead: str) -> str:
    """Why a configuration file cannot be read, as a one-line error; `point_instead` is the fix
    for a folder given where a file belongs."""
    if isinstance(error, UnicodeDecodeError):
        line = error.object[: error.start].count(b"\n") + 1
        return (
            f"{path}: not UTF-8 text (line {line} has the byte {error.object[error.start]:#04x}); "
            "save it as UTF-8"
        )
    if isinstance(error, IsADirectoryError):
        return f"{path}: is a folder, not a file; {point_instead}"
    return f"{path}: cannot be read ({error.strerror or error}); check the path and its permissions"
