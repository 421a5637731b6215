"""Fewer garbage collections for a process that runs once and exits (a crawl, a CLI command).

CPython collects its youngest generation every 700 new container objects. A crawl allocates
millions (lxml proxies, SQLAlchemy rows, Scrapy requests and items) that reference counting
frees on its own, so a first crawl of 1,050 sources spent 0.4–0.5 s (~5 % of its CPU) in ~600
collections, its unchanged pass ~0.4 s of 2.6–3.6 s, most of it at start-up among the imports.
At 10,000 the same passes collect ~25 times, in ~0.1 s, for ~1 MB more peak memory
(bench/README.md, seventh round). The daemon (`fdawatch run`) keeps CPython's own thresholds:
its memory over hours was measured with them. A page server (`digest --serve`, `review`) runs
for one reader's session with the higher threshold: at most ~10,000 young objects wait longer.
"""

from __future__ import annotations

import gc

#: New container objects between two collections of the youngest generation (CPython: 700).
YOUNG_THRESHOLD = 10_000
CPYTHON_THRESHOLDS = (700, 10, 10)


def collect_less() -> None:
    """Raise the youngest generation's threshold; the older ones keep theirs."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


def collect_as_usual() -> None:
    """CPython's default thresholds, for a process that runs for weeks."""
    gc.set_threshold(*CPYTHON_THRESHOLDS)
