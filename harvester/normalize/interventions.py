"""Printed intervention -> CT.gov `InterventionType` and name.

`parse_intervention("Biological: CAR-T cells")` ->
`{"type": "BIOLOGICAL", "name": "CAR-T cells"}`.

CT.gov and the sites that republish it print an intervention as
"<Type>: <name>" with the type in words ("Dietary Supplement") or as the API
enum ("DIETARY_SUPPLEMENT"). The type is recognised case-insensitively, with
spaces, hyphens and underscores equivalent; CT.gov's older names
("Procedure/Surgery", "Biological/Vaccine", "Genetic" ...) map to today's
enum. A text without a recognised "<Type>:" prefix is a name of unknown type
(`type` None, the whole text as name): a colon inside a name ("Vitamin D:
1000 IU") is not mistaken for a type. Nothing left -> None.
"""
from __future__ import annotations

import re
from typing import Any

from .text import clean_text

__all__ = ["INTERVENTION_TYPES", "parse_intervention", "normalize_intervention_type"]

INTERVENTION_TYPES: tuple[str, ...] = (
    "DRUG",
    "DEVICE",
    "BIOLOGICAL",
    "PROCEDURE",
    "RADIATION",
    "BEHAVIORAL",
    "GENETIC",
    "DIETARY_SUPPLEMENT",
    "COMBINATION_PRODUCT",
    "DIAGNOSTIC_TEST",
    "OTHER",
)

# Keys: lower-case words separated by single spaces (see _key).
_TYPES: dict[str, str] = {t.lower().replace("_", " "): t for t in INTERVENTION_TYPES}
_TYPES.update({
    "procedure surgery": "PROCEDURE",
    "surgery": "PROCEDURE",
    "biological vaccine": "BIOLOGICAL",
    "biologic": "BIOLOGICAL",
    "behavioural": "BEHAVIORAL",
    "radiation therapy": "RADIATION",
    "dietary supplements": "DIETARY_SUPPLEMENT",
    "diagnostic": "DIAGNOSTIC_TEST",
})

_SEP = re.compile(r"[\s_\-/]+")
# "<Type>:" at the start: at most three words, so a sentence with a colon is
# not taken for a type.
_PREFIX = re.compile(r"^\s*([A-Za-z][A-Za-z_\-/ ]{0,40}?)\s*:\s*(.*)$", re.S)


def _key(text: str) -> str:
    return _SEP.sub(" ", text.lower()).strip()


def normalize_intervention_type(text: Any) -> str | None:
    """"Dietary Supplement" / "DIETARY_SUPPLEMENT" -> "DIETARY_SUPPLEMENT";
    anything else -> None."""
    text = clean_text(text)
    return _TYPES.get(_key(text)) if text else None


def parse_intervention(text: Any) -> dict | None:
    """"<Type>: <name>" -> {"type": enum | None, "name": name}; None when no
    name is printed."""
    text = clean_text(text)
    if not text:
        return None
    m = _PREFIX.match(text)
    if m:
        kind = _TYPES.get(_key(m.group(1)))
        if kind is not None:
            name = clean_text(m.group(2))
            return {"type": kind, "name": name} if name else None
    return {"type": None, "name": text}
