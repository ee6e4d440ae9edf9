"""Overall status -> CT.gov `Status` enum (API v2 OpenAPI, `Status`).

`normalize_status(text) -> (enum | None, recognised)`:

- no value (None, empty, only punctuation) -> `(None, True)`: nothing to map;
- a known printed form -> `(ENUM, True)`;
- anything else -> `("UNKNOWN", False)`: the caller should record the printed
  word (it is a vocabulary the table does not know yet), never crash.

Known printed forms: the enum names themselves (MedPath prints "UNKNOWN",
"RECRUITING"...), CT.gov's words ("Recruiting", "Active, not recruiting",
"Unknown status", "Available" on expanded-access records...), Veeva's words
("Enrolling" = RECRUITING, "Not yet enrolling" = NOT_YET_RECRUITING,
"Unknown"...), ClinConnect's ("Recruiting", "Not yet recruiting"...).
Case, punctuation, underscores and a leading "Status:" label are ignored.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, get_args

from items.records import Status

from .text import clean_text

__all__ = ["STATUSES", "normalize_status"]

# The vocabulary is the data contract's (items.records.Status): one definition.
STATUSES: tuple[str, ...] = get_args(Status)

# Keys are lower-case words separated by single spaces (see _key).
_WORDS: dict[str, str] = {s.lower().replace("_", " "): s for s in STATUSES}
_WORDS.update({
    # CT.gov (classic and modern site)
    "unknown status": "UNKNOWN",
    "status unknown": "UNKNOWN",
    "not yet recruiting": "NOT_YET_RECRUITING",
    "active not recruiting": "ACTIVE_NOT_RECRUITING",
    "enrolling by invitation": "ENROLLING_BY_INVITATION",
    "no longer available": "NO_LONGER_AVAILABLE",
    "temporarily not available": "TEMPORARILY_NOT_AVAILABLE",
    "approved for marketing": "APPROVED_FOR_MARKETING",
    # ClinicalTrials.Veeva
    "enrolling": "RECRUITING",
    "not yet enrolling": "NOT_YET_RECRUITING",
    "active not enrolling": "ACTIVE_NOT_RECRUITING",
    "enrolling by invitation only": "ENROLLING_BY_INVITATION",
    # spellings seen on re-publishers
    "active but not recruiting": "ACTIVE_NOT_RECRUITING",
    "complete": "COMPLETED",
    "terminated early": "TERMINATED",
    "withdrawn before enrollment": "WITHDRAWN",
    "temporarily unavailable": "TEMPORARILY_NOT_AVAILABLE",
})

_NON_WORD = re.compile(r"[\W_]+")
# "Status:", "Overall status:", "Recruitment status :", "Expanded Access Status :"
_LABEL = re.compile(r"^\s*(?:[a-z]+\s+){0,2}status\s*:\s*", re.I)


def _key(text: str) -> str:
    text = _LABEL.sub("", text)
    return _NON_WORD.sub(" ", text.lower()).strip()


@lru_cache(maxsize=1024)
def _lookup(text: str) -> tuple[str | None, bool]:
    key = _key(text)
    if not key:
        return None, True
    status = _WORDS.get(key)
    if status is None:
        return "UNKNOWN", False
    return status, True


def normalize_status(text: Any) -> tuple[str | None, bool]:
    """Printed status -> (CT.gov Status enum, recognised?). See module doc."""
    if text is None:
        return None, True
    if not isinstance(text, str):
        if isinstance(text, bytes):
            text = clean_text(text) or ""
        else:
            return "UNKNOWN", False  # a number, a list...: not a printed status
    return _lookup(text)
