"""Dates -> ISO 8601 strings, full or partial.

`normalize_date(text) -> "YYYY-MM-DD" | "YYYY-MM" | "YYYY" | None`

The precision is what the page printed: "August 2022" -> "2022-08" and
"2022" -> "2022"; a day (or month) is never invented. Forms handled by
regular expressions (the fast path):

    2024-01-25, 2024-1-5, 2024-01-25T10:00:00Z, 2015-08, 2022, 2024/01/25
    Jan 25, 2024 / July 5, 2019 / Sept. 3rd, 2022      (month day, year)
    25 January 2024 / 25th of Jan, 2024                  (day month year)
    August 2022 / Aug. 2022                              (month year)
    01/25/2024, 25/01/2024, 25.01.2024                   (only when unambiguous)

A text that contains exactly one such date among other words ("First
Posted: July 5, 2019 Key Record Dates", "Current as of June 26, 2025") gives
that date. Numeric day/month orders that cannot be told apart ("03/04/2024")
give None rather than a guess. `dateparser` is the last resort, only for
short texts with a month name and a four-digit year, with relative dates
("yesterday", "2 days ago") switched off, and with its result cut to the
precision it says it found. Out-of-range or impossible dates -> None.
"""
from __future__ import annotations

import datetime as _dt
import re
from functools import lru_cache
from typing import Any

from .text import clean_text

__all__ = ["normalize_date"]

MIN_YEAR, MAX_YEAR = 1900, 2100

_MONTHS = {
    "jan": 1, "january": 1, "feb": 2, "february": 2, "mar": 3, "march": 3,
    "apr": 4, "april": 4, "may": 5, "jun": 6, "june": 6, "jul": 7, "july": 7,
    "aug": 8, "august": 8, "sep": 9, "sept": 9, "september": 9, "oct": 10,
    "october": 10, "nov": 11, "november": 11, "dec": 12, "december": 12,
}
_MON = r"(?P<mon>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DAY = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?P<year>\d{4})"

_ISO = re.compile(r"(?P<year>\d{4})(?:-(?P<month>\d{1,2})(?:-(?P<day>\d{1,2})(?:[T ]\d{1,2}:\d{2}.*)?)?)?")
_YMD_SLASH = re.compile(r"(?P<year>\d{4})[/.](?P<month>\d{1,2})[/.](?P<day>\d{1,2})")
_NUMERIC_DMY = re.compile(r"(?P<a>\d{1,2})[/.\-](?P<b>\d{1,2})[/.\-](?P<year>\d{4})")
_MDY = re.compile(rf"{_MON}\s*{_DAY}(?:\s*,\s*|\s+){_YEAR}", re.I)
_DMY = re.compile(rf"{_DAY}(?:\s+of)?\s*{_MON}(?:\s*,\s*|\s+){_YEAR}", re.I)
_MY = re.compile(rf"{_MON}(?:\s*,\s*|\s+){_YEAR}", re.I)

# Searching inside a longer text: the same forms, delimited.
_B, _E = r"(?<![\w/.\-])", r"(?![\w/\-]|\.\d)"
_SEARCHES = (
    ("ymd", re.compile(_B + r"(?P<year>\d{4})-(?P<month>\d{1,2})-(?P<day>\d{1,2})" + _E)),
    ("mdy", re.compile(_B + rf"{_MON}\s*{_DAY}(?:\s*,\s*|\s+){_YEAR}" + _E, re.I)),
    ("dmy", re.compile(_B + rf"{_DAY}(?:\s+of)?\s*{_MON}(?:\s*,\s*|\s+){_YEAR}" + _E, re.I)),
    ("my", re.compile(_B + rf"{_MON}(?:\s*,\s*|\s+){_YEAR}" + _E, re.I)),
    ("ym", re.compile(_B + r"(?P<year>\d{4})-(?P<month>\d{1,2})" + _E)),
)
# The form CT.gov prints every date in, and this module's own output:
# read without the search for other forms.
_ISO_PRINTED = re.compile(r"[0-9]{4}-[0-9]{2}(?:-[0-9]{2})?")
_HAS_MONTH_WORD = re.compile(r"\b(?:" + "|".join(_MONTHS) + r")", re.I)
_HAS_YEAR = re.compile(r"(?<!\d)\d{4}(?!\d)")


def _fmt(year: int, month: int | None = None, day: int | None = None) -> str | None:
    if not MIN_YEAR <= year <= MAX_YEAR:
        return None
    if month is None:
        return f"{year:04d}"
    if not 1 <= month <= 12:
        return None
    if day is None:
        return f"{year:04d}-{month:02d}"
    try:
        _dt.date(year, month, day)
    except ValueError:
        return None
    return f"{year:04d}-{month:02d}-{day:02d}"


def _from_match(kind: str, m: re.Match) -> str | None:
    g = m.groupdict()
    year = int(g["year"])
    if kind in ("ymd", "ym", "iso"):
        month = int(g["month"]) if g.get("month") else None
        day = int(g["day"]) if g.get("day") else None
        return _fmt(year, month, day)
    month = _MONTHS[g["mon"].lower()]
    day = int(g["day"]) if g.get("day") else None
    return _fmt(year, month, day)


def _numeric_dmy(m: re.Match) -> str | None:
    a, b, year = int(m.group("a")), int(m.group("b")), int(m.group("year"))
    if a == b:
        return _fmt(year, a, b)
    if a > 12 >= b:
        return _fmt(year, b, a)  # 25/01/2024: day first
    if b > 12 >= a:
        return _fmt(year, a, b)  # 01/25/2024: month first
    return None  # 03/04/2024: ambiguous, do not guess


def _exact(s: str) -> tuple[bool, str | None]:
    """(matched a known form exactly?, value)."""
    m = _ISO.fullmatch(s)
    if m:
        return True, _from_match("iso", m)
    m = _YMD_SLASH.fullmatch(s)
    if m:
        return True, _from_match("ymd", m)
    m = _NUMERIC_DMY.fullmatch(s)
    if m:
        return True, _numeric_dmy(m)
    for kind, rx in (("mdy", _MDY), ("dmy", _DMY), ("my", _MY)):
        m = rx.fullmatch(s)
        if m:
            return True, _from_match(kind, m)
    return False, None


def _search(s: str) -> str | None:
    found: set[str] = set()
    spans: list[tuple[int, int]] = []
    for kind, rx in _SEARCHES:
        for m in rx.finditer(s):
            if any(a <= m.start() < b or m.start() <= a < m.end() for a, b in spans):
                continue  # part of a fuller date already taken
            value = _from_match(kind, m)
            if value:
                found.add(value)
                spans.append((m.start(), m.end()))
    return found.pop() if len(found) == 1 else None


_DDP = None


def _dateparser(s: str) -> str | None:
    global _DDP
    try:
        if _DDP is None:
            from dateparser.date import DateDataParser

            _DDP = DateDataParser(
                languages=["en"],
                settings={
                    "PARSERS": ["absolute-time"],
                    "STRICT_PARSING": False,
                    "RETURN_TIME_AS_PERIOD": True,
                },
            )
        data = _DDP.get_date_data(s)
    except Exception:
        return None
    date = getattr(data, "date_obj", None)
    if date is None:
        return None
    period = getattr(data, "period", None)
    if period == "year":
        return _fmt(date.year)
    if period == "month":
        return _fmt(date.year, date.month)
    if period in ("day", "time"):
        return _fmt(date.year, date.month, date.day)
    return None  # "week" and anything else: not a calendar date


@lru_cache(maxsize=4096)
def _normalize(s: str) -> str | None:
    matched, value = _exact(s)
    if matched:
        return value
    value = _search(s)
    if value:
        return value
    # Last resort: a short text with a month name and a year.
    if len(s) <= 40 and _HAS_YEAR.search(s) and _HAS_MONTH_WORD.search(s):
        return _dateparser(s)
    return None


def normalize_date(text: Any) -> str | None:
    """Printed date -> ISO "YYYY-MM-DD" / "YYYY-MM" / "YYYY", or None."""
    if type(text) is str and _ISO_PRINTED.fullmatch(text):
        return _fmt(int(text[:4]), int(text[5:7]), int(text[8:]) if len(text) == 10 else None)
    if isinstance(text, _dt.datetime):
        return _fmt(text.year, text.month, text.day)
    if isinstance(text, _dt.date):
        return _fmt(text.year, text.month, text.day)
    s = clean_text(text)
    if not s or len(s) > 500:
        return None
    return _normalize(s.strip(" .,;:|"))
