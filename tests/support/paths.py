"""Where the repository and its recorded fixtures are, for tests in any folder."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
PAGES = FIXTURES / "pages"
RSS = FIXTURES / "rss"
RECALLS_HISTORY = RSS / "fda-food-safety-recalls-history"
DAILYMED = FIXTURES / "dailymed"
OPENFDA = FIXTURES / "openfda"
FEDERAL_REGISTER = FIXTURES / "federal_register"
WARNING_LETTERS = FIXTURES / "warning_letters"
DEMO = FIXTURES / "demo"
HEALTH = FIXTURES / "health"
