"""The linking index: known trials by content title word and sponsor key.

Linking pages without an NCT ID
-------------------------------
A page with an NCT ID joins that trial; two NCT IDs are never merged (a
shared secondary ID is just an identifier of both). A page without one is
scored against known trials on four fields, each 0..1:

* title: `rapidfuzz.fuzz.token_sort_ratio` of the folded titles (best of
  brief/official on both sides);
* sponsor: 1 for the same sponsor (`same_sponsor` on the keys), else the
  keys' token_sort_ratio;
* conditions: the best `token_set_ratio` between a page's condition and a
  trial's (sites mix keywords into conditions, so one good match counts);
* ages: the share of the bounds both sides give that agree within the age
  tolerance.

The score is the weighted mean (title 0.45, sponsor 0.30, conditions 0.15,
ages 0.10) of the fields both sides have. A page links when all hold:

1. score >= `HARVEST_LINK_THRESHOLD` (0.80);
2. at least two independent fields agree (field score >=
   `HARVEST_LINK_FIELD_AGREE`, 0.85): a title alone, however specific,
   never links;
3. when both give a sponsor, it is the same sponsor (sponsor score >=
   `HARVEST_LINK_FIELD_AGREE`): the sites print the registry's lead sponsor,
   so a different one is a different trial, however alike the titles
   ("Henan Cancer Hospital" / "Hunan Cancer Hospital" score 0.71);
4. the score beats the second-best candidate by `HARVEST_LINK_MARGIN`
   (0.10).

A generic title (fewer than three content words once words like "a",
"study", "clinical", "phase", "of" are removed, e.g. "A Study of ...") or a
title shared by two or more known trials (title score >= 0.95 with each) is
left out of the score and does not count as an agreeing field: the page must
then be tied by two other fields.

Known trials are indexed by content title words (IDF-ranked, the top
`HARVEST_LINK_MAX_CANDIDATES`, default 50; words found in more than 2% of
the trials are skipped) and by sponsor key (a sponsor's trials are all
candidates up to 2,000 of them), so a page is scored against a few dozen
candidates, never every trial. When no known trial links and
`HARVEST_LINK_ONLINE` is true (default False, so offline replays never touch
the network), the CT.gov API is asked (`query.titles`, `query.spons`) through
`candidate_source` and its studies are scored the same way (method
"fuzzy_api"). Below the bar the page is written to the unlinked file with its
best candidates and scores: never a guess, never dropped.
"""
from __future__ import annotations

import heapq
import math
from array import array
from bisect import bisect_left
from collections import defaultdict
from functools import lru_cache
from typing import Any, Iterable, NamedTuple, Optional

import msgspec
import orjson

from harvester.reconciliation.compare import _sponsor_key, fold_words
from items import SourceRecord

MIN_CONTENT_WORDS = 3  # fewer content words than this: a generic title
POSTINGS_BUDGET = 50_000  # title postings read per page, rarest words first
COMMON_WORD_MIN, COMMON_WORD_SHARE = 2_000, 0.02  # a word in more trials than this is not indexed evidence
SPONSOR_CANDIDATES_CAP = 2_000  # a sponsor with more trials adds no candidates by itself

_GENERIC_WORDS = frozenset("""
a an the of in on for to and or with without by at from as vs versus into its their this that
study studies trial trials clinical phase i ii iii iv 1 2 3 4 randomized randomised controlled
open label pilot evaluate evaluating evaluation assess assessing investigate investigating
multicenter multicentre single double blind center centre effect effects patients subjects
participants people research protocol title not available n a tbd untitled
""".split())


def content_words(title_key: str) -> list[str]:
    """Words of a folded title that say what the trial is about."""
    return [w for w in title_key.split() if len(w) > 1 and w not in _GENERIC_WORDS]


def is_generic_title(title_key: str) -> bool:
    return len(set(content_words(title_key))) < MIN_CONTENT_WORDS


class LinkKeys(NamedTuple):
    """What linking compares, in folded form."""

    titles: tuple[str, ...]
    sponsors: tuple[str, ...]
    conditions: tuple[str, ...]
    min_ages: tuple[float, ...]
    max_ages: tuple[float, ...]


def _uniq(values: Iterable[Any]) -> tuple:
    return tuple(sorted({v for v in values if v not in (None, "")}))


class _Sponsor(msgspec.Struct):
    name: str


class _Ages(msgspec.Struct):
    min_age_years: Optional[float] = None
    max_age_years: Optional[float] = None


class LinkFields(msgspec.Struct):
    """What linking reads of a record (`record_keys`), decoded straight from
    its stored JSON: msgspec skips the rest of the record without building
    it, several times faster than decoding the whole record."""

    nct_id_aliases: list[str] = []
    brief_title: Optional[str] = None
    official_title: Optional[str] = None
    lead_sponsor: Optional[_Sponsor] = None
    conditions: list[str] = []
    eligibility: Optional[_Ages] = None


_decode_link_fields = msgspec.json.Decoder(LinkFields).decode


def link_fields(json: Optional[bytes | str] = None, data: Optional[dict] = None) -> LinkFields:
    """`LinkFields` of a record given as JSON text (the record's, or the
    store's `link_fields` of it) or as its decoded JSON.
    Not validated: the fields read here are plain strings and numbers in
    every contract (a record of another shape is read from its dict)."""
    if json is not None:
        try:
            return _decode_link_fields(json)
        except msgspec.ValidationError:
            data = orjson.loads(json)
    sponsor, elig = data.get("lead_sponsor"), data.get("eligibility") or {}
    return LinkFields(
        nct_id_aliases=list(data.get("nct_id_aliases") or ()),
        brief_title=data.get("brief_title"), official_title=data.get("official_title"),
        lead_sponsor=_Sponsor(sponsor["name"]) if sponsor is not None else None,
        conditions=list(data.get("conditions") or ()),
        eligibility=_Ages(_age(elig.get("min_age_years")), _age(elig.get("max_age_years"))))


def record_keys(records: Iterable[SourceRecord | LinkFields]) -> LinkKeys:
    """The linking keys of one trial's records, given as validated records or
    as their `LinkFields` (the same attributes; a record's eligibility is
    never None, a LinkFields' may be)."""
    titles, sponsors, conditions, mins, maxs = set(), set(), set(), set(), set()
    for r in records:
        titles.add(r.brief_title)
        titles.add(r.official_title)
        if r.lead_sponsor is not None:
            sponsors.add(_sponsor_key(r.lead_sponsor.name))
        conditions.update(r.conditions)
        if r.eligibility is not None:
            mins.add(r.eligibility.min_age_years)
            maxs.add(r.eligibility.max_age_years)
    return LinkKeys(_uniq(fold_words(t) for t in titles if t), _uniq(sponsors),
                    _uniq(_fold_condition(c) for c in conditions), _uniq(mins), _uniq(maxs))


def data_keys(records: Iterable[dict]) -> LinkKeys:
    """`record_keys` of records given as their stored JSON (decoded)."""
    return record_keys(link_fields(data=d) for d in records)


def _age(value: Any) -> Optional[float]:
    """An age bound as the validated record has it (a float)."""
    return None if value is None else float(value)


@lru_cache(maxsize=65536)
def _fold_condition(text: str) -> str:
    return fold_words(text)


def candidate_keys(c: dict) -> LinkKeys:
    """Keys of a candidate given as a dict (what `candidate_source` returns)."""
    sponsors = [c.get("lead_sponsor")] if isinstance(c.get("lead_sponsor"), str) else list(c.get("sponsors") or [])
    return LinkKeys(
        _uniq([fold_words(c.get("brief_title")), fold_words(c.get("official_title"))]),
        _uniq(_sponsor_key(s) for s in sponsors if s),
        _uniq(fold_words(x) for x in c.get("conditions") or []),
        _uniq([c.get("min_age_years")]),
        _uniq([c.get("max_age_years")]),
    )


class LinkIndex:
    """Compact index of known trials: NCT numbers, keys, postings by content
    title word and by sponsor key. Built in NCT order."""

    def __init__(self) -> None:
        self.numbers = array("q")  # NCT numbers, ascending
        self.keys: list[LinkKeys] = []
        self.words: dict[str, array] = {}
        self.sponsors: dict[str, array] = {}
        self._strings: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self.numbers)

    def _intern(self, values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(self._strings.setdefault(v, v) for v in values)

    def add(self, nct_id: str, keys: LinkKeys) -> None:
        i = len(self.numbers)
        self.numbers.append(int(nct_id[3:]))
        keys = keys._replace(sponsors=self._intern(keys.sponsors), conditions=self._intern(keys.conditions))
        self.keys.append(keys)
        for w in {w for t in keys.titles for w in content_words(t)}:
            self.words.setdefault(self._strings.setdefault(w, w), array("i")).append(i)
        for s in keys.sponsors:
            self.sponsors.setdefault(s, array("i")).append(i)

    def find(self, nct_id: str) -> Optional[int]:
        n = int(nct_id[3:])
        i = bisect_left(self.numbers, n)
        return i if i < len(self.numbers) and self.numbers[i] == n else None

    def nct(self, i: int) -> str:
        return f"NCT{self.numbers[i]:08d}"

    def candidates(self, keys: LinkKeys, limit: int) -> list[int]:
        """Known trials worth scoring: the top `limit` by shared title words
        (IDF-weighted; words in more than `max(COMMON_WORD_MIN, 2%)` of the
        trials say nothing and are skipped; at most POSTINGS_BUDGET postings
        read, rarest words first), and the trials of the same sponsor key
        (all of them up to SPONSOR_CANDIDATES_CAP, else only those already
        found by title)."""
        n = max(len(self.numbers), 1)
        common = max(COMMON_WORD_MIN, int(n * COMMON_WORD_SHARE))
        words = sorted({w for t in keys.titles for w in content_words(t)
                        if w in self.words and len(self.words[w]) <= common},
                       key=lambda w: (len(self.words[w]), w))
        weight: dict[int, float] = defaultdict(float)
        budget = POSTINGS_BUDGET
        for w in words:
            postings = self.words[w]
            if len(postings) > budget:
                break
            budget -= len(postings)
            idf = math.log(1 + n / len(postings))
            for i in postings:
                weight[i] += idf
        found = {i for i, _ in heapq.nlargest(limit, weight.items(), key=lambda kv: (kv[1], -kv[0]))}
        for s in keys.sponsors:
            postings = self.sponsors.get(s)
            if postings is None:
                continue
            if len(postings) <= SPONSOR_CANDIDATES_CAP:
                found.update(postings)
            elif weight:
                own = set(postings)
                found.update(i for i in weight if i in own)
        return sorted(found)
