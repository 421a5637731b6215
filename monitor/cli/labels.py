"""`fdawatch label-sections FILE`: the sections fdawatch sees in a label, one JSON line each.

Shows what a label diff will be made of (which sections, under which code) before a source is
watched, for an SPL XML from DailyMed or an openFDA label JSON (a response or one result).
It needs no database and no configuration.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from monitor.core.labels import read_label_file
from monitor.errors import LabelError


@click.command("label-sections")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def label_sections(file: Path) -> None:
    """Print the sections of an SPL XML or openFDA label JSON FILE as JSON lines.

    Each line: code (LOINC code or openFDA field), title, characters, subsections.

    Example: fdawatch label-sections tests/fixtures/dailymed/spl-humira-adalimumab-2013-09-30.xml
    """
    try:
        label = read_label_file(file.read_bytes())
    except LabelError as error:
        raise LabelError(
            f"{file}: {error}. Pass a DailyMed SPL XML (…/spls/SETID.xml) or an openFDA "
            "drug/label JSON (a response with one result, or the result itself)."
        ) from None
    for section in label.sections:
        line = {
            "code": section.code,
            "title": section.title,
            "characters": section.characters,
            "subsections": section.subsections,
        }
        click.echo(json.dumps(line, ensure_ascii=False))
