"""Sponsor names: a comparison key and a conservative "same sponsor" test.

`sponsor_key(name) -> str` (empty string for no name):
  Unicode NFKD with accents dropped, casefold, "&" -> "and", dotted
  abbreviations joined ("S.A." -> "sa", "M.D." -> "md"), apostrophes
  dropped, other punctuation -> space, every parenthesised part dropped
  ("(Suzhou)", "(301 Hospital)", "(NIAID)"), a leading "the" and trailing
  legal-form words dropped (Co., Ltd., Inc., LLC, GmbH, S.A., AG, Corp.,
  Corporation, Limited, plc ...), spaces collapsed. So
  "PersonGen BioTherapeutics (Suzhou) Co., Ltd." and "PersonGen
  BioTherapeutics" -> "persongen biotherapeutics"; "SHANXI BETHUNE HOSPITAL"
  and "Shanxi Bethune Hospital" -> "shanxi bethune hospital".
  Dropping every parenthesised part is a judgement call: it is usually a
  place, an alias or an acronym of the same organisation.

`same_sponsor(a, b) -> bool`:
  1. equal keys;
  2. equal keys once small words (of, the, and, to, at, for, in, de) are
     ignored ("Affiliated Hospital to Academy of ..." / "Affiliated Hospital
     of Academy of ...");
  3. fuzzy, for long names only: both keys at least FUZZY_MIN_LENGTH
     characters, rapidfuzz `token_set_ratio` >= FUZZY_THRESHOLD, the same
     number of words, and every differing word pair a spelling variant of a
     long word (one is the other plus an "s"/"es" ending, or one edit apart
     with both at least FUZZY_MIN_WORD letters: "Haematology"/"Hematology").
  A differing short word is a different organisation: "Henan"/"Hunan",
  "Shanxi"/"Shaanxi", and a name that merely contains another ("Sun Yat-sen
  University" / "... University Cancer Center") is not the same sponsor.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any

from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein

from .text import to_str

__all__ = ["sponsor_key", "same_sponsor", "FUZZY_THRESHOLD", "FUZZY_MIN_LENGTH", "FUZZY_MIN_WORD"]

FUZZY_THRESHOLD = 95.0  # rapidfuzz token_set_ratio on the keys, 0..100
FUZZY_MIN_LENGTH = 25  # characters of each key before fuzzy matching is tried
FUZZY_MIN_WORD = 8  # letters of a word before a one-letter edit is forgiven

_LEGAL = frozenset({
    "co", "company", "companies", "ltd", "ltda", "limited", "inc", "incorporated",
    "llc", "llp", "lp", "gmbh", "mbh", "ag", "kg", "sa", "sas", "sarl", "spa", "srl",
    "sl", "bv", "nv", "corp", "corporation", "plc", "pty", "pvt", "private", "kk",
    "oy", "oyj", "ab", "as", "asa", "se", "pte", "cv", "de", "rl", "cie",
})
# "de" only as part of "S. de R.L." / "de C.V.": it is dropped only at the end.
_SMALL = frozenset({"of", "the", "and", "to", "at", "for", "in", "de", "a", "an"})

_PARENS = re.compile(r"\([^()]*\)|\[[^\[\]]*\]|（[^（）]*）")
_DOTTED = re.compile(r"\b(?:[^\W\d_]\.){2,}|\b(?:[^\W\d_]\.)(?=[^\W\d_]\b)")
_APOS = re.compile(r"['’‘`´]")
_PUNCT = re.compile(r"[^\w]+|_+")


def _fold(s: str) -> str:
    s = unicodedata.normalize("NFKD", s)
    s = "".join(c for c in s if not unicodedata.combining(c))
    return s.casefold()


@lru_cache(maxsize=8192)
def _key(name: str) -> str:
    s = _fold(name)
    without = _PARENS.sub(" ", s)
    if re.search(r"\w", without):
        s = without
    s = s.replace("&", " and ").replace("+", " and ").replace("a/s", "as")
    s = _DOTTED.sub(lambda m: m.group(0).replace(".", ""), s)
    s = _APOS.sub("", s)
    words = _PUNCT.sub(" ", s).split()
    if words and words[0] == "the" and len(words) > 1:
        words = words[1:]
    while len(words) > 1 and (words[-1] in _LEGAL or words[-1] == "and"):
        words.pop()
    return " ".join(words)


def sponsor_key(name: Any) -> str:
    """Comparison key of a sponsor name ("" for no name). See module doc."""
    s = to_str(name)
    if not s or not s.strip():
        return ""
    try:
        return _key(s)
    except Exception:  # never let an odd value sink the run
        return s.casefold().strip()


def _variant(a: str, b: str) -> bool:
    """Two words that are spellings of the same word."""
    if a == b:
        return True
    short, long_ = sorted((a, b), key=len)
    if long_.startswith(short) and long_[len(short):] in ("s", "es") and len(short) >= 4:
        return True
    if min(len(a), len(b)) >= FUZZY_MIN_WORD and a.isalpha() and b.isalpha():
        return Levenshtein.distance(a, b) <= 1
    return False


def _fuzzy(ka: str, kb: str) -> bool:
    if min(len(ka), len(kb)) < FUZZY_MIN_LENGTH:
        return False
    if fuzz.token_set_ratio(ka, kb) < FUZZY_THRESHOLD:
        return False
    wa = [w for w in ka.split() if w not in _SMALL]
    wb = [w for w in kb.split() if w not in _SMALL]
    if len(wa) != len(wb):
        return False  # one name contains the other: not enough to be the same
    only_a = [w for w in wa if w not in wb]
    only_b = [w for w in wb if w not in wa]
    if len(only_a) != len(only_b) or len(only_a) > 2:
        return False
    unmatched = list(only_b)
    for w in only_a:
        partner = next((u for u in unmatched if _variant(w, u)), None)
        if partner is None:
            return False
        unmatched.remove(partner)
    return True


def same_sponsor(a: Any, b: Any) -> bool:
    """Do two printed sponsor names name the same organisation?"""
    ka, kb = sponsor_key(a), sponsor_key(b)
    if not ka or not kb:
        return False
    if ka == kb:
        return True
    sa = [w for w in ka.split() if w not in _SMALL]
    sb = [w for w in kb.split() if w not in _SMALL]
    if sa and sa == sb:
        return True
    try:
        return _fuzzy(ka, kb)
    except Exception:
        return False
