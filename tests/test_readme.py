"""The README's examples are real: its fdawatch.toml and [[source]] examples load as written."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from monitor.config import load_settings
from monitor.sources import parse_sources
from tests.support.paths import ROOT

README = ROOT / "README.md"
TOML_BLOCKS = re.findall(r"```toml\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_readme_has_toml_examples() -> None:
    assert len(TOML_BLOCKS) >= 2


@pytest.mark.parametrize("block", TOML_BLOCKS)
def test_each_toml_example_loads(tmp_path: Path, block: str) -> None:
    data = tomllib.loads(block)
    if "source" in data:
        assert parse_sources(data, Path("README.md"))
        return
    path = tmp_path / "fdawatch.toml"
    path.write_text(block, encoding="utf-8")
    settings = load_settings({"FDAWATCH_CONFIG": str(path)})
    assert settings.recipients


def test_quick_start_is_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    quick_start = text.split("## Quick start", 1)[1].split("```", 2)[1]
    commands = [line.split("#")[0].strip() for line in quick_start.splitlines()[1:] if line.strip()]
    assert commands == ["make demo", "make test"]


def test_no_file_keeps_a_merge_conflict_marker() -> None:
    """A half-resolved merge once left `<<<<<<<` in CHANGELOG.md: no text file may keep one."""
    markers = re.compile(r"^(<{7} |>{7} |={7}$)", re.M)
    folders = ("monitor", "spiders", "db", "templates", "tests", "docs", "bench")
    texts = [ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "Makefile", ROOT / "sources.toml"]
    texts += [
        path
        for folder in folders
        for path in (ROOT / folder).rglob("*")
        if path.suffix in (".py", ".md", ".j2", ".toml", ".css") and "fixtures" not in path.parts
    ]
    assert [str(p) for p in texts if markers.search(p.read_text(encoding="utf-8"))] == []
