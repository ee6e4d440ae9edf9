"""Study type -> CT.gov `StudyType` enum: INTERVENTIONAL, OBSERVATIONAL or
EXPANDED_ACCESS.

`normalize_study_type(text) -> str | None`

Accepts the enums ("INTERVENTIONAL", "EXPANDED_ACCESS"), CT.gov's words
("Interventional", "Expanded Access", "Observational"), and qualified forms
("Interventional (Clinical Trial)", "Observational [Patient Registry]",
"Observational (Patient Registry)", "Expanded Access program", "Study Type:
Interventional"). "Patient Registry" alone is OBSERVATIONAL (CT.gov
registers registries as observational studies). Anything else -> None.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, get_args

from items.records import StudyType

from .text import clean_text

__all__ = ["STUDY_TYPES", "normalize_study_type"]

# The vocabulary is the data contract's (items.records.StudyType): one definition.
STUDY_TYPES: tuple[str, ...] = get_args(StudyType)

_LABEL = re.compile(r"^\s*study\s+type\s*:?\s*", re.I)
_BRACKETS = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")
_NON_WORD = re.compile(r"[\W_]+")
_HEADS = (
    ("expanded access", "EXPANDED_ACCESS"),
    ("interventional", "INTERVENTIONAL"),
    ("observational", "OBSERVATIONAL"),
    ("patient registry", "OBSERVATIONAL"),
)
# Words that may follow the type without changing it.
_TAILS = frozenset({"", "study", "trial", "clinical trial", "program", "programme", "protocol",
                    "patient registry", "registry", "study patient registry"})


@lru_cache(maxsize=256)
def _lookup(text: str) -> str | None:
    s = _LABEL.sub("", text)
    s = _BRACKETS.sub(" ", s)
    key = _NON_WORD.sub(" ", s.lower()).strip()
    for head, kind in _HEADS:
        if key == head or (key.startswith(head + " ") and key[len(head) + 1:] in _TAILS):
            return kind
    return None


def normalize_study_type(text: Any) -> str | None:
    """Printed study type -> INTERVENTIONAL | OBSERVATIONAL | EXPANDED_ACCESS | None."""
    s = text if isinstance(text, str) else clean_text(text)
    if not s or len(s) > 200:
        return None
    return _lookup(s)
