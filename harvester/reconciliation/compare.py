"""Comparison forms of field values, and when two pages disagree.

Conflicts
---------
Values are compared like with like after normalization, and a field is in
`conflicts` when two pages still disagree; `values` then lists every page's
value in precedence order, with site, URL and fetch time:

* text fields: casefolded, Unicode-normalized, whitespace collapsed;
* `lead_sponsor`: `same_sponsor` (equal `sponsor_key`: case, punctuation,
  legal suffixes, parenthesised places; or a spelling variant of a long
  name); `collaborators`: the set of `sponsor_key`s;
* `phases`, `conditions`, `interventions` (by name), `primary_outcomes` and
  `secondary_outcomes` (by measure): as sets;
* `locations`: the set of (city, country) pairs, since sites print facility
  names in many ways (or not at all);
* `enrollment`: only counts of the same type are compared. ACTUAL and
  ESTIMATED are different facts (no conflict); a page that does not say
  which compares with either, on the count;
* dates: at the precision both give. "2015-08" and "2015-08-01" agree (a
  partial date is the same fact printed with less detail), "2015-08" and
  "2015-09-01" do not;
* ages in years: equal within `HARVEST_AGE_TOLERANCE` (default 0.02 year,
  about a week: "1 Month" and "4 Weeks" agree);
* `inclusion`, `exclusion`, `criteria_text`: letters and digits only, so the
  same criteria split into items differently agree;
* `age_text` is the printed form of the ages and is not compared (the facts
  are `min_age_years` / `max_age_years`).

Parser notes carry through into `Trial.notes` with the page's site and URL;
every identifier of every page goes to `Trial.identifiers` (deduplicated by
id, kind, site and URL); every page to `Trial.sources` with its link.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any, Callable, Iterable, Optional

from harvester.normalize.sponsors import same_sponsor, sponsor_key

_NON_ALNUM = re.compile(r"[\W_]+")


def fold(text: Any) -> str:
    """Casefolded, NFKC, whitespace collapsed: the comparison form of a text."""
    if text is None:
        return ""
    s = str(text)
    if not s.isascii():
        s = unicodedata.normalize("NFKC", s)
    return " ".join(s.casefold().split())


def fold_words(text: Any) -> str:
    """`fold` with punctuation turned into spaces: the form titles are matched in."""
    return " ".join(_NON_ALNUM.sub(" ", fold(text)).split())


def alnum_key(text: Any) -> str:
    """Letters and digits only: the same text however it was split or punctuated."""
    return _NON_ALNUM.sub("", fold(text))


@lru_cache(maxsize=65536)
def _sponsor_key(name: str) -> str:
    return sponsor_key(name) or fold(name)


@lru_cache(maxsize=65536)
def _same_sponsor(a: str, b: str) -> bool:
    return a == b or _sponsor_key(a) == _sponsor_key(b) or same_sponsor(a, b)


def _set_key(values: Iterable[Any], key: Callable[[Any], Any]) -> frozenset:
    return frozenset(k for k in (key(v) for v in values) if k)


def _location_key(loc: dict) -> tuple[str, str] | None:
    city, country = fold(loc.get("city")), fold(loc.get("country"))
    return (city, country) if city or country else None


_KEYS: dict[str, Callable[[Any], Any]] = {
    "brief_title": fold,
    "official_title": fold,
    "overall_status": lambda v: v,
    "phases": frozenset,
    "study_type": lambda v: v,
    "conditions": lambda v: _set_key(v, fold),
    "interventions": lambda v: _set_key(v, lambda i: fold(i.get("name"))),
    "lead_sponsor": lambda v: _sponsor_key(v["name"]),
    "collaborators": lambda v: _set_key(v, lambda s: _sponsor_key(s["name"])),
    "locations": lambda v: _set_key(v, _location_key),
    "brief_summary": fold,
    "detailed_description": fold,
    "lay_summary": fold,
    "primary_outcomes": lambda v: _set_key(v, lambda o: fold(o.get("measure"))),
    "secondary_outcomes": lambda v: _set_key(v, lambda o: fold(o.get("measure"))),
    "eligibility.sex": lambda v: v,
    "eligibility.healthy_volunteers": lambda v: v,
    "eligibility.inclusion": lambda v: alnum_key("".join(v)),
    "eligibility.exclusion": lambda v: alnum_key("".join(v)),
    "eligibility.criteria_text": alnum_key,
}
_DATE_FIELDS = frozenset({"start_date", "primary_completion_date", "completion_date", "last_update_posted"})
_AGE_FIELDS = frozenset({"eligibility.min_age_years", "eligibility.max_age_years"})
_NOT_COMPARED = frozenset({"eligibility.age_text"})
_PAIRWISE = _DATE_FIELDS | _AGE_FIELDS | {"enrollment", "lead_sponsor"}


def dates_agree(a: str, b: str) -> bool:
    """Partial dates agree at the precision both give ("2015-08" ~ "2015-08-01")."""
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def _enrollment_pair(a: dict, b: dict) -> Optional[bool]:
    """None when the two are not the same fact (ACTUAL vs ESTIMATED), else agreement."""
    if a.get("type") and b.get("type") and a["type"] != b["type"]:
        return None
    return a.get("count") == b.get("count")


def disagree(field: str, values: list[Any], age_tolerance: float) -> bool:
    """Do the non-empty `values` of `field` still differ after normalization?"""
    if len(values) < 2 or field in _NOT_COMPARED:
        return False
    first = values[0]
    if all(v == first for v in values[1:]):
        return False  # the common case: printed alike
    if field in _PAIRWISE:
        for i, a in enumerate(values):
            for b in values[i + 1:]:
                if field in _DATE_FIELDS:
                    ok: Optional[bool] = dates_agree(a, b)
                elif field == "lead_sponsor":
                    ok = _same_sponsor(a["name"], b["name"])
                elif field in _AGE_FIELDS:
                    ok = abs(float(a) - float(b)) <= age_tolerance + 1e-9
                else:
                    ok = _enrollment_pair(a, b)
                if ok is False:
                    return True
        return False
    key = _KEYS.get(field, fold)
    return len({key(v) for v in values}) > 1
