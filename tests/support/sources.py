"""A source configured in code: the compounded-ketamine alert page, with any field changed."""

from __future__ import annotations

from monitor.sources import SourceConfig


def make_source(**overrides: object) -> SourceConfig:
    values: dict[str, object] = {
        "id": "fda_ketamine_oral_alert",
        "kind": "page",
        "url": "https://www.fda.gov/drugs/human-drug-compounding/fda-warns-compounded-ketamine",
        "title": "FDA alert: compounded ketamine",
        "tier": "T2",
    }
    values.update(overrides)
    return SourceConfig(**values)  # type: ignore[arg-type]
