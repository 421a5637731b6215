"""The layering rules of README "Layout", checked on the code itself.

Measured from the product's module-level imports (`ast`, no import side effects): no import
cycle, spiders import only the contract and the source configuration of `monitor`, `db/`
imports nothing of ours, and the history writer loads no email rendering when imported.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from monitor.cli.app import AppContext, FdawatchGroup

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("monitor", "spiders", "db")
#: What spiders may import from `monitor`: the contract, the sources, the pure label parsers.
SPIDER_MAY_IMPORT = {"monitor.items", "monitor.sources", "monitor.core.spl"}
MAX_LINES = 400


def product_modules() -> Iterator[tuple[str, Path]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            yield name, path


MODULES = dict(product_modules())


def module_imports(name: str, path: Path) -> set[str]:
    """Product modules `name` imports at module level (not inside functions, not for typing)."""
    found: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            submodules = [f"{node.module}.{alias.name}" for alias in node.names]
            targets = [m for m in submodules if m in MODULES] or [node.module]
        else:
            continue
        found.update(target for target in targets if target in MODULES and target != name)
    return found


GRAPH = {name: module_imports(name, path) for name, path in MODULES.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_among_product_modules() -> None:
    assert cycles(GRAPH) == []


def test_db_imports_nothing_of_ours() -> None:
    for name, imported in GRAPH.items():
        if name.startswith("db"):
            assert {m for m in imported if not m.startswith("db")} == set(), name


def test_spiders_import_only_the_contract_and_the_sources_of_monitor() -> None:
    for name, imported in GRAPH.items():
        if name.startswith("spiders"):
            outside = {m for m in imported if m.startswith("monitor")} - SPIDER_MAY_IMPORT
            assert outside == set(), name


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_product_module_is_over_400_lines(name: str) -> None:
    lines = MODULES[name].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{MODULES[name]} has {lines} lines: split it by job"


def test_importing_the_history_writer_loads_no_email_rendering_and_no_scrapy() -> None:
    probe = (
        "import sys, monitor.history.writer, monitor.runtime.pipeline\n"
        "print(sorted(m for m in ('jinja2', 'smtplib', 'css_inline') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_the_cli_reports_user_errors_in_one_line_but_keeps_a_bugs_traceback() -> None:
    @click.group(cls=FdawatchGroup)
    def group() -> None:
        """A group with two commands."""

    @group.command("bug")
    def bug() -> None:
        raise KeyError("a bug, not a user error")

    @group.command("bad-id")
    def bad_id() -> None:
        from monitor.errors import NotFound

        raise NotFound("no change 99; `fdawatch changes` lists them")

    runner = CliRunner()
    bug_result = runner.invoke(group, ["bug"], obj=AppContext(None, None))
    bad_result = runner.invoke(group, ["bad-id"], obj=AppContext(None, None))

    assert isinstance(bug_result.exception, KeyError)  # not swallowed as exit 2
    assert bad_result.exit_code == 2
    assert bad_result.stderr == "fdawatch: error: no change 99; `fdawatch changes` lists them\n"
