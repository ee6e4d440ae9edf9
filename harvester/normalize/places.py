"""Printed places -> location fields.

`split_place("Suzhou, Jiangsu, China")` -> `{"city": "Suzhou", "state":
"Jiangsu", "country": "China"}`, each part as printed (no gazetteer: a
place is only split, never looked up or corrected).
"""
from __future__ import annotations

from .text import clean_texts

__all__ = ["split_place"]


def split_place(text: str | None) -> dict[str, str | None]:
    """"Suzhou, Jiangsu, China" -> city, state, country (as printed);
    two parts are city and country, one part a country."""
    parts = clean_texts((text or "").split(","))
    if not parts:
        return {"city": None, "state": None, "country": None}
    if len(parts) == 1:
        return {"city": None, "state": None, "country": parts[0]}
    return {"city": parts[0], "state": ", ".join(parts[1:-1]) or None, "country": parts[-1]}


def place_fields(text: str | None) -> dict[str, str | None]:
    """`split_place` plus the country's ISO 3166-1 alpha-2 code
    (`harvester.normalize.countries`), the printed country kept beside it:
    the location fields an HTML site's printed place gives. The code is None
    when the last part is not a country name ISO knows (a line with no
    country, "Taiyuan, Shanxi"): the caller notes it."""
    from .countries import country_code

    fields = split_place(text)
    return {**fields, "country_code": country_code(fields["country"]) if fields["country"] else None}
