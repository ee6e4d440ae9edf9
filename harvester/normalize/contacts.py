"""Printed contacts and officials -> CT.gov's contact fields.

`normalize_official_role("Principal Investigator")` -> "PRINCIPAL_INVESTIGATOR"
(CT.gov OfficialRole, API v2), so an official a site prints agrees with the
CT.gov record's in reconciliation (officials compare by name and role).
`is_withheld_name("[investigator name withheld]")` is True: a bracketed
stand-in for a name is no name.
"""
from __future__ import annotations

import re
from typing import Any

from .text import clean_text

__all__ = ["OFFICIAL_ROLES", "is_withheld_name", "normalize_official_role"]

#: CT.gov's OfficialRole
OFFICIAL_ROLES = ("STUDY_CHAIR", "STUDY_DIRECTOR", "PRINCIPAL_INVESTIGATOR", "SUB_INVESTIGATOR")
_ROLES = {
    "principal investigator": "PRINCIPAL_INVESTIGATOR",
    "study principal investigator": "PRINCIPAL_INVESTIGATOR",
    "study director": "STUDY_DIRECTOR",
    "study chair": "STUDY_CHAIR",
    "sub investigator": "SUB_INVESTIGATOR",
    "subinvestigator": "SUB_INVESTIGATOR",
    **{r.lower().replace("_", " "): r for r in OFFICIAL_ROLES},
}
_WITHHELD = re.compile(r"^\[[^\]]*\b(?:withheld|redacted|hidden|removed)\b[^\]]*\]$", re.I)


def _key(text: str) -> str:
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.lower()).split())


def normalize_official_role(text: Any) -> str | None:
    """A printed official's role -> CT.gov OfficialRole, or None when not one."""
    s = clean_text(text)
    return _ROLES.get(_key(s)) if s else None


def is_withheld_name(text: Any) -> bool:
    """"[contact name withheld]": a stand-in printed where a name was."""
    s = clean_text(text)
    return bool(s and _WITHHELD.match(s))
