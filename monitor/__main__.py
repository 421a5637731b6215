"""`python -m monitor` is `fdawatch`."""

from __future__ import annotations

from monitor.cli import main

main()
