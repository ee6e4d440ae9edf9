"""Printed country names -> ISO 3166-1 alpha-2 codes.

`country_code("United States")`, `country_code("USA")` and
`country_code("United States of America")` are all "US", so the same
country agrees in reconciliation and groups in queries whatever a site
prints. The printed form is kept beside the code (`Location.country`).

Names are looked up in pycountry (ISO 3166-1 names, official and common
names, alpha-2/alpha-3 codes; then the withdrawn codes of ISO 3166-3, such as
"Netherlands Antilles" AN) after the spellings registries print that ISO
does not list are mapped: CT.gov's older names ("Turkey", "Macedonia, The
Former Yugoslav Republic of", "Former Serbia and Montenegro", ...) and
common short forms ("UK", "Russia"). No fuzzy matching: a name not found is
None, never a guess ("Kosovo" has no ISO code; it is given the code the EU
and CT.gov's own country list use, XK).
"""
from __future__ import annotations

import re
from functools import lru_cache

import pycountry

from .text import clean_text

__all__ = ["country_code"]

# Spellings seen in registries that pycountry does not resolve (or resolves
# to something else), keyed by their folded form.
_ALIASES = {
    "turkey": "TR",
    "turkey (türkiye)": "TR",
    "uk": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "great britain": "GB",
    "russia": "RU",
    "macedonia, the former yugoslav republic of": "MK",
    "macedonia": "MK",
    "former serbia and montenegro": "CS",
    "serbia and montenegro": "CS",
    "libyan arab jamahiriya": "LY",
    "virgin islands (u.s.)": "VI",
    "us virgin islands": "VI",
    "palestinian territory, occupied": "PS",
    "palestinian territories": "PS",
    "swaziland": "SZ",
    "burma": "MM",
    "cape verde": "CV",
    "korea": "KR",
    "south korea": "KR",
    "north korea": "KP",
    "mainland china": "CN",
    "people's republic of china": "CN",
    "kosovo": "XK",
    "holland": "NL",
    "the netherlands": "NL",
    "czech republic": "CZ",
    "ivory coast": "CI",
    "zaire": "CD",
    "east timor": "TL",
}


def _fold(name: str) -> str:
    return re.sub(r"\s+", " ", name).strip().casefold()


@lru_cache(maxsize=4096)
def _lookup(folded: str) -> str | None:
    code = _ALIASES.get(folded)
    if code:
        return code
    for db in (pycountry.countries, pycountry.historic_countries):
        try:
            return db.lookup(folded).alpha_2
        except LookupError:
            continue
    return None


def country_code(name: object) -> str | None:
    """ISO 3166-1 alpha-2 code of a printed country name, or None."""
    text = clean_text(name)
    if not text:
        return None
    return _lookup(_fold(text))
