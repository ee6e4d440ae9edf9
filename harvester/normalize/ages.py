"""Ages -> years (float).

- `parse_age(text) -> float | None`: one age as CT.gov prints it ("18 Years",
  "6 Months" -> 0.5, "2 Weeks" -> 2/52, "10 Days" -> 10/365.25, also Hours and
  Minutes). A bare number is taken as years. "N/A", words, garbage -> None.
- `parse_age_range(text) -> AgeRange(min_years, max_years)`: an age field as
  sites print it: "18 to 65 years old", "Under 25 years old", "Age 3-18",
  "aged 14 to 70 years (inclusive)", "≥ 18", "18+", "18 years and older",
  "up to 65 years", "6 Months to 17 Years", "18 Years to 65 Years (Adult,
  Older Adult)". CT.gov standard age groups alone ("Child, Adult, Older
  Adult") and "N/A" carry no numbers -> AgeRange(None, None). A number with
  no unit is taken as years.
- `ages_from_criteria(items) -> (AgeRange, matched text) | None`: the first
  eligibility item that states the age limits (pass *inclusion* items), and
  the exact substring of that item the range was read from.

Judgement calls:
- bounds are reported as printed: "> 18" gives min 18 and "< 65" gives max
  65 (CT.gov itself would store 19 / 64 for strict bounds). Strictness is not
  recorded; the printed text is kept by the caller.
- "Under 25" is max 25 (as printed).
- a range whose min is above its max, or an age above 150 years, is not an
  age range -> AgeRange(None, None).
"""
from __future__ import annotations

import re
from typing import Any, Iterable, NamedTuple

from .text import clean_text

__all__ = ["AgeRange", "parse_age", "parse_age_range", "ages_from_criteria"]

MAX_AGE_YEARS = 150.0


class AgeRange(NamedTuple):
    min_years: float | None = None
    max_years: float | None = None

    @property
    def empty(self) -> bool:
        return self.min_years is None and self.max_years is None


_NONE = AgeRange(None, None)

_UNIT_YEARS = {
    "y": 1.0, "m": 1.0 / 12, "w": 1.0 / 52, "d": 1.0 / 365.25,
    "h": 1.0 / (365.25 * 24), "min": 1.0 / (365.25 * 24 * 60),
}

# A number that is not part of a larger number, a date or a decimal.
_N = r"(?<![\d.,])\d{1,3}(?:\.\d+)?(?![\d]|[.,]\d|\s*%)"
# Units. Letters-only abbreviations need a word boundary after them.
_U = (r"(?:years?|yrs?|y\.?o\.?|y(?=\b)|months?|mos?(?=\b)|weeks?|wks?|days?"
      r"|hours?|hrs?|minutes?|mins?)(?![a-z])")
_OLD = r"(?:\s*(?:-\s*)?(?:old|of\s+age))?"


def _unit_factor(unit: str | None) -> float:
    if not unit:
        return 1.0
    u = unit.lower()
    if u.startswith("mi"):
        return _UNIT_YEARS["min"]
    if u.startswith("mo"):
        return _UNIT_YEARS["m"]
    if u.startswith("h"):
        return _UNIT_YEARS["h"]
    return _UNIT_YEARS.get(u[0], 1.0)


def _years(num: str, unit: str | None) -> float | None:
    try:
        value = float(num) * _unit_factor(unit)
    except ValueError:
        return None
    if value < 0 or value > MAX_AGE_YEARS:
        return None
    return value


_AGE = re.compile(rf"^(?:about\s+|approx(?:imately|\.)?\s+)?({_N})\s*({_U})?{_OLD}$", re.I)


def parse_age(text: Any) -> float | None:
    """'18 Years' -> 18.0, '6 Months' -> 0.5, 'N/A' -> None. See module doc."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text) if 0 <= text <= MAX_AGE_YEARS else None
    s = clean_text(text)
    if not s:
        return None
    m = _AGE.match(s)
    if not m:
        return None
    return _years(m.group(1), m.group(2))


# --- ranges -----------------------------------------------------------------

_GE = (r"(?:≥|>=|=>|⩾|≧|＞=|>|＞|(?:over|above|older\s+than)\s+the\s+age\s+of|at\s+least|(?:equal\s+to\s+or\s+)?(?:greater|older|more)\s+than"
       r"(?:\s+or\s+equal\s+to)?|over|above|minimum(?:\s+age)?(?:\s+of)?|min\.?)")
_LE = (r"(?:≤|<=|=<|⩽|≦|＜=|<|＜|(?:under|below|younger\s+than)\s+the\s+age\s+of|under|below|up\s+to|younger\s+than|less\s+than"
       r"(?:\s+or\s+equal\s+to)?|(?:not|no)\s+(?:older|more)\s+than|maximum(?:\s+age)?(?:\s+of)?|max\.?)")
_AND_OLDER = (r"(?:\+|\s*(?:and|or)\s+(?:older|over|above|more|greater|up(?:wards)?)"
              r"(?!\s+than))")
_AND_YOUNGER = r"(?:\s*(?:and|or)\s+(?:younger|under|below|less)(?!\s+than))"
_RANGE_SEP = r"(?:to|-|–|—|~|through|until)"

_RANGE = re.compile(
    rf"(?:(?P<between>between)\s+|from\s+)?(?P<lo>{_N})\s*(?P<lo_u>{_U})?{_OLD}\s*"
    rf"(?:(?P<sep>{_RANGE_SEP})|(?(between)and|(?!)))\s*"
    rf"(?P<hi>{_N})\s*(?P<hi_u>{_U})?{_OLD}",
    re.I,
)
_MIN_PRE = re.compile(rf"(?<![\w<>=≤≥])(?P<op>{_GE})\s*:?\s*(?P<n>{_N})\s*(?P<u>{_U})?{_OLD}", re.I)
_MIN_POST = re.compile(rf"(?P<n>{_N})\s*(?P<u>{_U})?{_OLD}(?P<op>{_AND_OLDER})", re.I)
_MAX_PRE = re.compile(rf"(?<![\w<>=≤≥])(?P<op>{_LE})\s*:?\s*(?P<n>{_N})\s*(?P<u>{_U})?{_OLD}", re.I)
_MAX_POST = re.compile(rf"(?P<n>{_N})\s*(?P<u>{_U})?{_OLD}(?P<op>{_AND_YOUNGER})", re.I)


class _Hit(NamedTuple):
    rng: AgeRange
    start: int
    end: int
    has_unit: bool
    years_unit: bool  # an explicit unit of years


def _is_years(unit: str | None) -> bool:
    return bool(unit) and _unit_factor(unit) == 1.0


def _range_hit(m: re.Match) -> _Hit | None:
    lo_u, hi_u = m.group("lo_u"), m.group("hi_u")
    # "18 to 65 years": the unit printed once applies to both numbers.
    lo = _years(m.group("lo"), lo_u or hi_u)
    hi = _years(m.group("hi"), hi_u or lo_u)
    if lo is None or hi is None or lo > hi:
        return None
    unit = hi_u or lo_u
    return _Hit(AgeRange(lo, hi), m.start(), m.end(), bool(unit), _is_years(unit))


def _bound_hit(m: re.Match, is_min: bool) -> _Hit | None:
    value = _years(m.group("n"), m.group("u"))
    if value is None:
        return None
    rng = AgeRange(value, None) if is_min else AgeRange(None, value)
    return _Hit(rng, m.start(), m.end(), bool(m.group("u")), _is_years(m.group("u")))


_MAX_FIELD = 300  # characters of an age field read by parse_age_range
_MAX_ITEM = 1500  # characters of one criterion read by ages_from_criteria
_MAX_HITS = 24  # age expressions looked at per kind in one text


def _hits(s: str) -> list[_Hit]:
    """Age expressions in s, by position (at most _MAX_HITS of each kind).
    Ranges first: a bound inside a range's span is dropped."""
    hits: list[_Hit] = []
    for m in _RANGE.finditer(s):
        h = _range_hit(m)
        if h:
            hits.append(h)
            if len(hits) >= _MAX_HITS:
                break
    ranges = list(hits)
    for rx, is_min in ((_MIN_PRE, True), (_MIN_POST, True), (_MAX_PRE, False), (_MAX_POST, False)):
        n = 0
        for m in rx.finditer(s):
            if any(h.start <= m.start() < h.end or m.start() <= h.start < m.end() for h in ranges):
                continue
            h = _bound_hit(m, is_min)
            if h:
                hits.append(h)
                n += 1
                if n >= _MAX_HITS:
                    break
    hits.sort(key=lambda h: h.start)
    return hits


def _combine(hits: list[_Hit]) -> AgeRange:
    """The first range, or the first min and first max bound together."""
    for h in hits:
        if h.rng.min_years is not None and h.rng.max_years is not None:
            return h.rng
    lo = next((h.rng.min_years for h in hits if h.rng.min_years is not None), None)
    hi = next((h.rng.max_years for h in hits if h.rng.max_years is not None), None)
    if lo is not None and hi is not None and lo > hi:
        return _NONE
    return AgeRange(lo, hi)


def parse_age_range(text: Any) -> AgeRange:
    """Printed age field -> AgeRange(min_years, max_years). See module doc."""
    s = clean_text(text)
    if not s or not any(c.isdigit() for c in s):
        return _NONE
    s = s[:_MAX_FIELD]  # an age field, not a document
    try:
        return _combine(_hits(s))
    except Exception:  # never let an odd value sink the run
        return _NONE


# --- ages in eligibility criteria --------------------------------------------

# "age", "aged", "ages", "age:" — not "stage", "page", "dosage" (word boundary),
# not "gestational/bone/mental age" or "childbearing age".
_AGE_CUE = re.compile(
    r"(?<![\w-])(?<!gestational )(?<!bone )(?<!mental )(?<!developmental )"
    r"(?<!childbearing )(?<!reproductive )(?<!corrected )(?<!postmenstrual )"
    r"ages?d?(?![\w-])",
    re.I,
)
_SELF_CUED = re.compile(r"\b(?:years?|yrs?)\s*(?:-\s*)?(?:old|of\s+age)\b|\b(?:and|or)\s+older\b|\by\.?o\.?\b|\bthe\s+age\s+of\b", re.I)
# Clause boundaries: "; ", ": ", ". " (not "e.g. "), start of a run-on item.
_CLAUSE_BREAK = re.compile(r"[;:](?=\s|\w)|(?<![a-z]\.[a-z])(?<!\be\.g)(?<!\bi\.e)\.\s+(?=[A-Z(])")
# Before the age phrase in its clause: list markers or a few words naming who.
_MARKERS_ONLY = re.compile(r"^[\s\d.()•*\-–—+]*$")
_NOT_ABOUT_ELIGIBLE_AGE = re.compile(
    r"such\s+as|e\.\s*g\.|i\.\s*e\.|for\s+example|including|except|exclud|not\b|"
    r"\bno\b|history|diagnos|onset|menopaus|first\s+|since|at\s+(?:the\s+)?time",
    re.I,
)
_MAX_LEAD = 40  # characters allowed between clause start and the age phrase
# Text allowed between an "age" cue and the numbers: ": ", " between ", "(years)".
_CUE_GAP = re.compile(r"[\s:,(\[=]*(?:(?:is|of|must\s+be|should\s+be|range|limit|at\s+enrollment|"
                      r"at\s+screening|at\s+(?:the\s+)?time\s+of\s+\w+|in\s+years|\(years\))[\s:,)\]]*)*", re.I)
_INCLUSIVE = re.compile(r"\s*\(\s*(?:both\s+)?inclusive\s*\)", re.I)


def _clause_start(s: str, pos: int) -> int:
    start = 0
    for m in _CLAUSE_BREAK.finditer(s, max(0, pos - 200), pos):
        start = m.end()
    return start if start or pos <= 200 else pos - 200


def _acceptable_lead(s: str, clause_start: int, phrase_start: int) -> bool:
    lead = s[clause_start:phrase_start]
    if _MARKERS_ONLY.match(lead):
        return True
    return len(lead.strip()) <= _MAX_LEAD and not _NOT_ABOUT_ELIGIBLE_AGE.search(lead)


def _from_item(item: str) -> tuple[AgeRange, str] | None:
    hits = _hits(item)
    if not hits:
        return None
    cues = [m for m in _AGE_CUE.finditer(item)]
    for h in hits:
        phrase_start = h.start
        cued = False
        # An "age"/"aged" word just before the numbers ("Aged 18-85", "Age: 18-65").
        for c in cues:
            if c.end() <= h.start and _CUE_GAP.fullmatch(item, c.end(), h.start):
                cued, phrase_start = True, c.start()
        clause = _clause_start(item, phrase_start)
        # Or the phrase names itself: "18 years of age or older", "≥ 18 years old".
        if not cued and _SELF_CUED.search(item, h.start, h.end):
            cued = True
        # Or a range/bound in years opening its clause: "2 years to 70 years, ...".
        if not cued and h.years_unit and _MARKERS_ONLY.match(item[clause:h.start]):
            cued = True
        if not cued or not _acceptable_lead(item, clause, phrase_start):
            continue
        rng = h.rng
        end = h.end
        if rng.max_years is None or rng.min_years is None:
            # "≥18 and ≤75 years": a second bound of the other kind right after.
            for h2 in hits:
                if h2.start >= h.end and h2.start - end <= 6 and item[end:h2.start].strip().lower() in ("and", ",", "", "&"):
                    if rng.min_years is None and h2.rng.min_years is not None and h2.rng.max_years is None:
                        rng, end = AgeRange(h2.rng.min_years, rng.max_years), h2.end
                    elif rng.max_years is None and h2.rng.max_years is not None and h2.rng.min_years is None:
                        rng, end = AgeRange(rng.min_years, h2.rng.max_years), h2.end
                    break
            if rng.min_years is not None and rng.max_years is not None and rng.min_years > rng.max_years:
                continue
        inc = _INCLUSIVE.match(item, end)
        if inc:
            end = inc.end()
        return rng, item[phrase_start:end].strip()
    return None


def ages_from_criteria(items: Any) -> tuple[AgeRange, str] | None:
    """First age criterion among eligibility items -> (range, exact text).

    Only a phrase that is about the participant's age counts: an "age"/"aged"
    word right before the numbers, "N years old/of age", or a range in years
    opening its clause. Numbers elsewhere ("ECOG 0-2", "survival ≥3 months",
    "within 4 weeks", "LVEF ≥40%") are not ages; nor is an age mentioned
    deep inside an unrelated sentence ("... such as age <18 years").
    """
    if items is None:
        return None
    if isinstance(items, str):
        items = [items]
    try:
        iterator: Iterable[Any] = iter(items)
    except TypeError:
        return None
    for raw in iterator:
        item = raw if isinstance(raw, str) else clean_text(raw)
        if not item or not any(c.isdigit() for c in item):
            continue
        item = item[:_MAX_ITEM]
        try:
            found = _from_item(item)
        except Exception:  # never let an odd value sink the run
            found = None
        if found:
            return found
    return None
