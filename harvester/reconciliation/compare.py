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
  names in many ways (or not at all); the country by its ISO 3166 code, so
  "USA", "United States" and "United States of America" agree;
* `arm_groups` (by label), `other_outcomes` (by measure), `keywords`, MeSH
  terms (by id), contacts and officials (by name and role), `references`
  (by PMID, or citation, and type): as sets; other structured fields
  (`design.*` lists, `oversight`, `results`, ...) by their content, order
  and empty members ignored;
* dates with a type (`start_date`, `primary_completion_date`,
  `completion_date`, `study_first_posted`, `results_first_posted`): an
  ESTIMATED date and an ACTUAL one are different facts (a plan and what
  happened) and never conflict; otherwise compared as dates, below;
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

from harvester.normalize.countries import country_code
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


@lru_cache(maxsize=4096)
def _country_key(printed: str) -> str:
    return country_code(printed) or fold(printed)


def _location_key(loc: dict) -> tuple[str, str] | None:
    printed = loc.get("country")
    country = loc.get("country_code") or (_country_key(printed) if printed else "")
    city = fold(loc.get("city"))
    return (city, country) if city or country else None


def _frozen(value: Any) -> Any:
    """A hashable, order-insensitive form of a JSON value (objects by their
    keys, lists as sets, empty members left out): the comparison key of
    structured fields with no key of their own."""
    if isinstance(value, dict):
        return frozenset((k, _frozen(v)) for k, v in value.items() if v not in (None, "", []))
    if isinstance(value, list):
        return frozenset(_frozen(v) for v in value)
    return fold(value) if isinstance(value, str) else value


def _contact_key(c: dict) -> tuple[str, Any] | None:
    name = fold(c.get("name"))
    return (name, c.get("role")) if name else None


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
    "other_outcomes": lambda v: _set_key(v, lambda o: fold(o.get("measure"))),
    "nct_id_aliases": frozenset,
    "last_known_status": lambda v: v,
    "keywords": lambda v: _set_key(v, fold),
    "condition_mesh": lambda v: _set_key(v, lambda m: m.get("id")),
    "condition_mesh_ancestors": lambda v: _set_key(v, lambda m: m.get("id")),
    "intervention_mesh": lambda v: _set_key(v, lambda m: m.get("id")),
    "intervention_mesh_ancestors": lambda v: _set_key(v, lambda m: m.get("id")),
    "arm_groups": lambda v: _set_key(v, lambda a: fold(a.get("label"))),
    "central_contacts": lambda v: _set_key(v, _contact_key),
    "overall_officials": lambda v: _set_key(v, _contact_key),
    "references": lambda v: _set_key(v, lambda r: (r.get("pmid") or fold(r.get("citation")), r.get("type"))),
    "has_results": lambda v: v,
    "design.who_masked": frozenset,
    "eligibility.std_ages": frozenset,
    "eligibility.gender_based": lambda v: v,
    "eligibility.sex": lambda v: v,
    "eligibility.healthy_volunteers": lambda v: v,
    "eligibility.inclusion": lambda v: alnum_key("".join(v)),
    "eligibility.exclusion": lambda v: alnum_key("".join(v)),
    "eligibility.criteria_text": alnum_key,
}
_DATE_FIELDS = frozenset({"status_verified_date", "last_update_posted"})
# dates with their type ({date, type})
_TYPED_DATE_FIELDS = frozenset({"start_date", "primary_completion_date", "completion_date",
                                "study_first_posted", "results_first_posted"})
_AGE_FIELDS = frozenset({"eligibility.min_age_years", "eligibility.max_age_years"})
_NOT_COMPARED = frozenset({"eligibility.age_text"})
_PAIRWISE = _DATE_FIELDS | _TYPED_DATE_FIELDS | _AGE_FIELDS | {"enrollment", "lead_sponsor"}


def dates_agree(a: str, b: str) -> bool:
    """Partial dates agree at the precision both give ("2015-08" ~ "2015-08-01")."""
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def _typed_date_pair(a: dict, b: dict) -> Optional[bool]:
    """None when one date is ESTIMATED and the other ACTUAL (not the same
    fact), else agreement at the precision both give."""
    if a.get("type") and b.get("type") and a["type"] != b["type"]:
        return None
    return dates_agree(a["date"], b["date"])


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
                if field in _TYPED_DATE_FIELDS:
                    ok: Optional[bool] = _typed_date_pair(a, b)
                elif field in _DATE_FIELDS:
                    ok = dates_agree(a, b)
                elif field == "lead_sponsor":
                    ok = _same_sponsor(a["name"], b["name"])
                elif field in _AGE_FIELDS:
                    ok = abs(float(a) - float(b)) <= age_tolerance + 1e-9
                else:
                    ok = _enrollment_pair(a, b)
                if ok is False:
                    return True
        return False
    key = _KEYS.get(field) or (fold if isinstance(first, str) else _frozen)
    return len({key(v) for v in values}) > 1
