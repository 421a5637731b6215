"""Is a new version too destructive to believe on one fetch? Pure rules, no I/O.

A transfer cut short, a CDN edge serving a broken copy, a mis-declared charset or an error page
served with 200 all look like "most of the text is gone" or "the text is now full of U+FFFD". Such
a change is held, the page is fetched once more a little later (the second look), and the change
is raised only if the second fetch agrees. An error page in the watched region is not a version
at all: it is recorded as a failed fetch.
"""

from __future__ import annotations

import re

#: A new version keeping less than this share of the old text's characters is held.
SHRINK_RATIO = 0.5
#: Texts shorter than this are too small for the share to mean anything.
MIN_OLD_CHARS = 200
REPLACEMENT = "\ufffd"
#: What error pages say; only tested against short texts (a real page may quote these words).
ERROR_PAGE = re.compile(
    r"\b(service (is )?(temporarily )?unavailable|temporarily unavailable|under maintenance"
    r"|scheduled maintenance|internal server error|bad gateway|gateway time-?out"
    r"|page (was )?not found|404 not found|access denied|too many requests"
    r"|please try again later)\b",
    re.IGNORECASE,
)
ERROR_PAGE_MAX_CHARS = 600


def suspicion(old_text: str, new_text: str) -> str | None:
    """Why `old_text` → `new_text` needs a second look, or None when it can be believed."""
    if len(old_text) >= MIN_OLD_CHARS and len(new_text) < SHRINK_RATIO * len(old_text):
        kept = round(100 * len(new_text) / len(old_text))
        sizes = f"{len(old_text)} → {len(new_text)} chars"
        return f"the text shrank to {kept} % of its length ({sizes})"
    added = new_text.count(REPLACEMENT) - old_text.count(REPLACEMENT)
    if added > 0:
        return f"the text gained {added} replacement characters (U+FFFD): a decoding problem?"
    return None


def error_page(text: str) -> str | None:
    """The error message when a short text reads like an error page, else None."""
    if len(text) > ERROR_PAGE_MAX_CHARS:
        return None
    match = ERROR_PAGE.search(text)
    return match.group(0) if match else None
