"""Phase(s) -> CT.gov `Phase` enums (API v2 OpenAPI, `Phase`).

`normalize_phases(values) -> (phases, unrecognised)`

`values` is a string, a list of strings (e.g. Veeva prints "Phase 2" and
"Phase 1" on separate lines), or None. Strings are also split on newlines
and ";". Each piece must consist entirely of phase tokens:

- "Phase 1", "Phase I", "PHASE1", "Phase 1b", "Phase IV";
- combined phases: "Phase 1/Phase 2", "Phase I/II", "Phase 1/2", "Phase 2/3",
  "Phase 1-2", "PHASE1|PHASE2", "Phase 1, Phase 2", "Phase 1 and 2";
- "Early Phase 1" / "EARLY_PHASE1", and "Phase 0" (CT.gov lists Early Phase 1
  as "formerly listed as Phase 0");
- "N/A", "NA", "Not Applicable" -> NA.

`phases` is deduplicated and in canonical order (NA, EARLY_PHASE1, PHASE1 ...
PHASE4). A piece that is not entirely phase tokens is returned, cleaned, in
`unrecognised` and contributes no phase (no half-guessing).
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Iterable, get_args

from items.records import Phase

from .text import clean_text

__all__ = ["PHASES", "normalize_phases"]

# The vocabulary is the data contract's (items.records.Phase): one definition.
PHASES: tuple[str, ...] = get_args(Phase)
_ORDER = {p: i for i, p in enumerate(PHASES)}

_NUM = {"0": "EARLY_PHASE1", "1": "PHASE1", "2": "PHASE2", "3": "PHASE3", "4": "PHASE4",
        "i": "PHASE1", "ii": "PHASE2", "iii": "PHASE3", "iv": "PHASE4"}

_SPLIT = re.compile(r"[\n\r;]+")
# One token at the current position, with an optional separator after it.
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<na>not\s+applicable|n\s*/\s*a|na)(?![a-z0-9])
      | (?P<early>early\s*)?(?P<phase>phase\s*)?(?P<num>[0-4]|iv|iii|ii|i)[ab]?(?![a-z0-9])
    )\s*(?:[/,|&+\-\u2013\u2014]|and(?![a-z]))?""",
    re.X,
)


@lru_cache(maxsize=1024)
def _piece(piece: str) -> tuple[tuple[str, ...], bool]:
    """(phases, fully recognised?) for one piece of text."""
    s = piece.lower().replace("_", " ")
    pos, n = 0, len(s)
    found: list[str] = []
    seen_phase_word = False
    while pos < n:
        m = _TOKEN.match(s, pos)
        if not m or m.end() == pos:
            return (), False
        if m.group("na"):
            found.append("NA")
        else:
            # A bare numeral ("2" in "Phase 1/2") only after a "phase" word.
            if not (m.group("phase") or seen_phase_word):
                return (), False
            seen_phase_word = True
            phase = _NUM[m.group("num")]
            if m.group("early"):
                if phase != "PHASE1" or not m.group("phase"):
                    return (), False
                phase = "EARLY_PHASE1"
            found.append(phase)
        pos = m.end()
    return tuple(found), bool(found)


def _pieces(values: Any) -> Iterable[str]:
    if values is None:
        return
    if isinstance(values, (str, bytes)):
        values = [values]
    elif not isinstance(values, (list, tuple, set, frozenset)):
        values = [values]
    for v in values:
        text = v if isinstance(v, str) else clean_text(v)
        if not text:
            continue
        for part in _SPLIT.split(text):
            part = clean_text(part)
            if part:
                yield part


def normalize_phases(values: Any) -> tuple[list[str], list[str]]:
    """-> (phases in canonical order without duplicates, unrecognised pieces)."""
    if type(values) is list and all(type(v) is str and v in _ORDER for v in values):
        # the enum values CT.gov prints ("PHASE2"), each read as itself
        return sorted(set(values), key=_ORDER.__getitem__), []
    phases: set[str] = set()
    unknown: list[str] = []
    try:
        for part in _pieces(values):
            got, ok = _piece(part)
            if ok:
                phases.update(got)
            elif part not in unknown:
                unknown.append(part)
    except Exception:  # never let an odd value sink the run
        unknown.append(repr(values))
    return sorted(phases, key=_ORDER.__getitem__), unknown
