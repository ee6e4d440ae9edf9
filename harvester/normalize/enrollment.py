"""Enrollment -> (count, CT.gov EnrollmentType or None).

- `parse_enrollment(text) -> (int | None, "ACTUAL" | "ESTIMATED" | None)`:
  the first number in a printed enrollment value, and its type when a word
  next to the number says so:
    "5 estimated patients"               -> (5, "ESTIMATED")    Veeva
    "28 participants in 1 patient group" -> (28, None)          Veeva arms
    "Target Recruitment 10" / "10"       -> (10, "ESTIMATED") / (10, None)
    "1,200 actual participants"          -> (1200, "ACTUAL")
    "Estimated Enrollment : 40 participants", "40 (Anticipated)" ...
    "plans to enroll 20 subjects"        -> (20, "ESTIMATED")
  No number -> (None, None).
- `find_planned_enrollment(prose) -> (count, matched phrase) | None`: a
  planned-enrollment statement in free text ("The study plans to enroll 20
  subjects, ..."), with the exact phrase it came from.

Judgement call: MedPath's "Target Recruitment" is the number a study plans
to recruit, so it is ESTIMATED (CT.gov's word for a planned enrollment), as
are "planned", "anticipated", "expected" and "target". Only "actual" (and
"enrolled"/"completed" right after the number) gives ACTUAL. When both
kinds of words are present, the one nearest the number wins.
"""
from __future__ import annotations

import re
from typing import Any

from .text import clean_text

__all__ = ["parse_enrollment", "find_planned_enrollment"]

# 1,200 / 1 200 (thin or no-break space, cleaned to a space) / 20
_COUNT = r"(?<![\w.,])(\d{1,3}(?:[,\u202f ]\d{3})+|\d+)(?![\d]|[.,]\d)"
_NUMBER = re.compile(_COUNT)
_ESTIMATED = re.compile(
    r"\b(?:estimated|estimate|anticipated|expected|planned|plans?|planning|target(?:ed)?|"
    r"projected|intend(?:s|ed)?|aims?\s+to|will\s+(?:enroll|enrol|recruit))\b",
    re.I,
)
_ACTUAL = re.compile(r"\bactual(?:ly)?\b|(?<=\d\s)(?:participants\s+|patients\s+|subjects\s+)?"
                     r"(?:enrolled|were\s+enrolled)\b", re.I)
_WINDOW_AFTER = 40  # characters after the number that may qualify it
# Where the words qualifying the number end: next number or clause.
_CLAUSE_END = re.compile(r"\d|[,;]|\.(?:\s|$)")


def _to_int(digits: str) -> int | None:
    try:
        return int(re.sub(r"[,\u202f ]", "", digits))
    except ValueError:
        return None


def parse_enrollment(text: Any) -> tuple[int | None, str | None]:
    """Printed enrollment -> (count, "ACTUAL" | "ESTIMATED" | None)."""
    if isinstance(text, int) and not isinstance(text, bool):
        return (text, None) if text >= 0 else (None, None)
    s = clean_text(text)
    if not s:
        return None, None
    m = _NUMBER.search(s)
    if not m:
        return None, None
    count = _to_int(m.group(1))
    if count is None:
        return None, None
    # Qualifying words: before the number, or just after it ("5 estimated
    # patients", "40 (Estimated)") -- not in a later, unrelated clause.
    after_end = min(len(s), m.end() + _WINDOW_AFTER)
    stop = _CLAUSE_END.search(s, m.end(), after_end)
    if stop:
        after_end = stop.start()
    best: tuple[int, str] | None = None
    for rx, kind in ((_ESTIMATED, "ESTIMATED"), (_ACTUAL, "ACTUAL")):
        for w in rx.finditer(s, 0, after_end):
            dist = m.start() - w.end() if w.end() <= m.start() else w.start() - m.end()
            if best is None or dist < best[0]:
                best = (dist, kind)
    return count, (best[1] if best else None)


_PEOPLE = (r"(?:subjects|patients|participants|volunteers|people|persons|individuals|"
           r"children|adults|women|men|infants|cases|pairs|families|eligible\s+\w+)")
_ABOUT = r"(?:(?:a\s+total\s+of|approximately|approx\.?|about|around|up\s+to|at\s+least|~)\s*)?"
_PLANNED = re.compile(
    rf"\b(?:"
    # "plans to enroll 20 subjects", "will recruit approximately 120 patients"
    rf"(?:plans?|planned|planning|intends?|intended|aims?|aimed|expects?|expected|will|going)\s+(?:to\s+)?(?:enroll|enrol|recruit|include|randomi[sz]e|register)"
    rf"\s+{_ABOUT}{_COUNT}\s+(?:[\w-]+\s+){{0,3}}?{_PEOPLE}"
    rf"|"
    # "a total of 60 patients will be enrolled", "120 subjects are planned to be recruited"
    rf"{_ABOUT}{_COUNT}\s+(?:[\w-]+\s+){{0,3}}?{_PEOPLE}\s+(?:will|are\s+(?:planned|expected|going)\s+to|"
    rf"is\s+(?:planned|expected)\s+to|shall|are\s+to)\s+be\s+(?:enrolled|enroled|recruited|included|randomi[sz]ed)"
    rf"|"
    # "planned sample size of 100", "target enrollment: 40"
    rf"(?:planned|target|expected|estimated|anticipated)\s+(?:sample\s+size|enrollment|enrolment|"
    rf"recruitment|number\s+of\s+(?:subjects|patients|participants))\s*(?:is|of|will\s+be|:|=)?\s*{_ABOUT}{_COUNT}"
    rf")",
    re.I,
)


def find_planned_enrollment(prose: Any) -> tuple[int, str] | None:
    """First planned-enrollment statement in free text -> (count, phrase)."""
    s = prose if isinstance(prose, str) else clean_text(prose)
    if not s or not any(c.isdigit() for c in s):
        return None
    for m in _PLANNED.finditer(s):
        digits = next(g for g in m.groups() if g)
        count = _to_int(digits)
        if count is not None:
            return count, m.group(0)
    return None
