"""Sex eligible -> CT.gov `Sex` enum: ALL, FEMALE or MALE.

`normalize_sex(text) -> str | None`

"All", "ALL", "Both", "All genders", "Both sexes", "Male and female",
"gender not restricted" -> ALL; "Female", "Women", "Female only" -> FEMALE;
"Male", "Men" -> MALE. A leading label ("Sex:", "Gender:", "Sexes Eligible
for Study:") is ignored. Anything else (including "N/A", unknown words) ->
None: the caller keeps the printed value and notes it.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, get_args

from items.records import Sex

from .text import clean_text

__all__ = ["SEXES", "normalize_sex"]

# The vocabulary is the data contract's (items.records.Sex): one definition.
SEXES: tuple[str, ...] = get_args(Sex)

_FEMALE = frozenset({"female", "females", "woman", "women", "girl", "girls", "f"})
_MALE = frozenset({"male", "males", "man", "men", "boy", "boys", "m"})
_ALL = frozenset({"all", "both", "any", "either", "unrestricted"})
# Words that may accompany the above without changing the meaning.
_FILLER = frozenset({
    "and", "or", "only", "genders", "gender", "sexes", "sex", "participants",
    "patients", "subjects", "volunteers", "people", "persons", "the", "of",
    "eligible", "accepted", "are", "is", "included",
})
_NOT_RESTRICTED = re.compile(r"\b(?:not|no)\s+(?:restricted|restriction|limited|limit)\b|\bunrestricted\b")
_LABEL = re.compile(r"^\s*(?:sex(?:es)?|genders?)(?:\s+eligible(?:\s+for\s+study)?)?\s*:\s*", re.I)
_WORD = re.compile(r"[a-z]+")


@lru_cache(maxsize=512)
def _lookup(text: str) -> str | None:
    s = _LABEL.sub("", text).lower()
    if _NOT_RESTRICTED.search(s):
        return "ALL"
    words = _WORD.findall(s.replace("_", " "))
    if not words:
        return None
    female = male = every = False
    for w in words:
        if w in _FEMALE:
            female = True
        elif w in _MALE:
            male = True
        elif w in _ALL:
            every = True
        elif w not in _FILLER:
            return None  # a word we do not know: do not guess
    if female and male:
        return "ALL"
    if female:  # "Female", "Women only", "All female"
        return "FEMALE"
    if male:
        return "MALE"
    return "ALL" if every else None


def normalize_sex(text: Any) -> str | None:
    """Printed sex/gender eligibility -> ALL | FEMALE | MALE | None."""
    s = text if isinstance(text, str) else clean_text(text)
    if not s:
        return None
    s = s.strip()
    if len(s) > 200:  # prose, not a field value
        return None
    return _lookup(s)
