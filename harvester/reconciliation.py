"""Reconciliation: one canonical `Trial` per NCT ID from every stored page.

This module knows nothing of sites: site names only arrive through the
settings (`HARVEST_PRECEDENCE`) and the records themselves.

    summary = reconcile(store, out, unlinked_out, settings, candidate_source=None)

`store` is anything with `iter_sources()` yielding `StoredSource` (or bare
`SourceRecord`) ordered by NCT ID with the NCT-less records last (what
`harvester.store.Store.iter_sources` does); `out` and `unlinked_out` are
binary files. `out` receives one JSON line per NCT ID, sorted by NCT ID
(`Trial.model_dump(mode="json", by_alias=True, exclude_none=False)`, model
field order, orjson); `unlinked_out` one line per page that could not be tied
to a trial, in store order: `site`, `url`, `fetched_at`, `brief_title`,
`official_title`, `lead_sponsor`, `identifiers`, `reason` (no_candidates,
below_threshold, sponsor_differs, insufficient_evidence, ambiguous) and
`candidates` (the best three: `nct_id`, `score`, `source` store/api,
`evidence`). The returned `Summary` counts trials, sources, conflicts, links
by method and unlinked pages (`Summary.as_stats()` gives `reconcile/...`
keys).

Choosing values
---------------
Field by field, never a whole record. For every field of `TRIAL_FIELDS` and
every eligibility sub-field the chosen value is the first non-empty value in
precedence order: the field's list of sites from `HARVEST_PRECEDENCE` (keys:
a field name, `eligibility` or `eligibility.<sub>` for the sub-fields, and
`"*"` for every other field), sites not listed after the listed ones in
alphabetical order; within one site the newest `fetched_at` wins (then the
URL, so ties are deterministic). Empty means None, "", [] or an enrollment
without a count. A value the parser could only map to the vocabulary's
unknown value (the record carries an `unmapped_vocabulary` note for that
field) is used only when no page has a real value, and never makes a
conflict.

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

Why these numbers: a field agrees at 0.85 because spelling variants of the
same title or condition ("Haematological"/"Hematological", punctuation, word
order) score above it, while two different CAR-T trials of the seeds with
much the same wording (seed 000 and NCT04008524) score 0.79 on the title. The
threshold 0.80 on the mean lets one weak field (a site's keyword-laden
conditions) pass when the others agree fully, but not two. The margin 0.10
is about one field's worth: a trial registered twice, or a sponsor's sister
trial that matches everything the page prints, leaves the page unlinked
rather than tied to one of them by chance.

Streaming
---------
Two passes over `iter_sources()`. The first keeps only a compact linking
index (per trial: folded titles, sponsor keys, condition keys, ages) and the
NCT-less pages (few), and resolves their links. The second merges one NCT
group at a time, injecting linked pages into their group, and writes it.
Memory holds one group plus the index, never the trials.
"""
from __future__ import annotations

import heapq
import json
import logging
import math
import re
import unicodedata
import urllib.parse
import urllib.request
from array import array
from bisect import bisect_left
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Iterable, Iterator, NamedTuple, Optional

import orjson
from rapidfuzz import fuzz

from harvester.normalize.ages import parse_age
from harvester.normalize.sponsors import same_sponsor, sponsor_key
from items import ELIGIBILITY_FIELDS, TRIAL_FIELDS, SourceRecord, Trial

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULTS",
    "DEFAULT_PRECEDENCE",
    "CtgovCandidateClient",
    "Precedence",
    "ReconcileConfig",
    "Summary",
    "merge_trial",
    "reconcile",
]

DEFAULT_PRECEDENCE: dict[str, list[str]] = {
    "*": ["ctgov", "veeva", "medpath", "clinconnect"],
    "lay_summary": ["clinconnect", "ctgov", "veeva", "medpath"],
}

API_URL = "https://clinicaltrials.gov/api/v2/studies"

#: Settings read by `ReconcileConfig.from_settings`, with their defaults.
DEFAULTS: dict[str, Any] = {
    # field -> ordered sites; merged over DEFAULT_PRECEDENCE key by key
    "HARVEST_PRECEDENCE": DEFAULT_PRECEDENCE,
    # ask the CT.gov API for candidates when no stored trial links
    "HARVEST_LINK_ONLINE": False,
    "HARVEST_LINK_THRESHOLD": 0.80,
    "HARVEST_LINK_FIELD_AGREE": 0.85,
    "HARVEST_LINK_MARGIN": 0.10,
    "HARVEST_LINK_MAX_CANDIDATES": 50,
    "HARVEST_LINK_API_URL": API_URL,
    "HARVEST_LINK_TIMEOUT": 20.0,
    "HARVEST_AGE_TOLERANCE": 0.02,
}

# Linking constants that are part of the method rather than tunables.
FIELD_WEIGHTS = {"title": 0.45, "sponsor": 0.30, "conditions": 0.15, "ages": 0.10}
SHARED_TITLE = 0.95  # a known trial whose title scores this high "shares" the title
MIN_CONTENT_WORDS = 3  # fewer content words than this: a generic title
POSTINGS_BUDGET = 50_000  # title postings read per page, rarest words first
COMMON_WORD_MIN, COMMON_WORD_SHARE = 2_000, 0.02  # a word in more trials than this is not indexed evidence
SPONSOR_CANDIDATES_CAP = 2_000  # a sponsor with more trials adds no candidates by itself
UNLINKED_CANDIDATES = 3  # best candidates written with an unlinked page

ELIGIBILITY_KEYS = tuple(f"eligibility.{f}" for f in ELIGIBILITY_FIELDS)
_PRECEDENCE_KEYS = frozenset(("*", "eligibility", *TRIAL_FIELDS, *ELIGIBILITY_KEYS))


# --------------------------------------------------------------------------
# settings

def _get(settings: Any, name: str) -> Any:
    if settings is None:
        return DEFAULTS[name]
    value = settings.get(name, None)
    return DEFAULTS[name] if value is None else value


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)


class Precedence:
    """Per-field ranking of sites (see module doc)."""

    def __init__(self, spec: dict[str, Iterable[str]] | str | None = None):
        if isinstance(spec, str):
            spec = json.loads(spec)
        merged = {k: list(v) for k, v in DEFAULT_PRECEDENCE.items()}
        for key, sites in dict(spec or {}).items():
            if key not in _PRECEDENCE_KEYS:
                raise ValueError(f"HARVEST_PRECEDENCE: unknown field {key!r}")
            if isinstance(sites, str):
                sites = [s for s in sites.replace(",", " ").split() if s]
            merged[key] = list(sites)
        self.spec = merged

        self._cache: dict[str, tuple[str, ...]] = {}
        self._groups: dict[tuple[str, ...], list] = {}

    def field_groups(self, fields: tuple[str, ...]) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
        """`fields` grouped by their site order: [(sites, fields), ...]."""
        groups = self._groups.get(fields)
        if groups is None:
            by_sites: dict[tuple[str, ...], list[str]] = {}
            for f in fields:
                by_sites.setdefault(self.sites_for(f), []).append(f)
            groups = self._groups[fields] = [(k, tuple(v)) for k, v in by_sites.items()]
        return groups

    def sites_for(self, field: str) -> tuple[str, ...]:
        sites = self._cache.get(field)
        if sites is None:
            if field in self.spec:
                sites = tuple(self.spec[field])
            elif field.startswith("eligibility.") and "eligibility" in self.spec:
                sites = tuple(self.spec["eligibility"])
            else:
                sites = tuple(self.spec["*"])
            self._cache[field] = sites
        return sites

    @staticmethod
    def rank(sites: tuple[str, ...], site: str) -> tuple[int, str]:
        try:
            return (sites.index(site), "")
        except ValueError:
            return (len(sites), site)  # unlisted: after the listed ones, alphabetically


@dataclass(frozen=True)
class ReconcileConfig:
    precedence: Precedence
    link_online: bool
    link_threshold: float
    link_field_agree: float
    link_margin: float
    link_max_candidates: int
    link_api_url: str
    link_timeout: float
    age_tolerance: float
    user_agent: str

    @classmethod
    def from_settings(cls, settings: Any = None) -> "ReconcileConfig":
        ua = (settings.get("USER_AGENT", None) if settings is not None else None) or "harvester/0.1"
        return cls(
            precedence=Precedence(_get(settings, "HARVEST_PRECEDENCE")),
            link_online=_bool(_get(settings, "HARVEST_LINK_ONLINE")),
            link_threshold=float(_get(settings, "HARVEST_LINK_THRESHOLD")),
            link_field_agree=float(_get(settings, "HARVEST_LINK_FIELD_AGREE")),
            link_margin=float(_get(settings, "HARVEST_LINK_MARGIN")),
            link_max_candidates=int(_get(settings, "HARVEST_LINK_MAX_CANDIDATES")),
            link_api_url=str(_get(settings, "HARVEST_LINK_API_URL")),
            link_timeout=float(_get(settings, "HARVEST_LINK_TIMEOUT")),
            age_tolerance=float(_get(settings, "HARVEST_AGE_TOLERANCE")),
            user_agent=str(ua),
        )


# --------------------------------------------------------------------------
# comparison keys

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


# --------------------------------------------------------------------------
# merging one trial

class Entry(NamedTuple):
    """One page of a trial group, as JSON, with how it was linked."""

    data: dict  # SourceRecord.model_dump(mode="json", by_alias=True)
    values: dict  # field (eligibility sub-fields as "eligibility.<sub>") -> value
    ts: float  # fetched_at as a timestamp, for "newest fetch wins"
    link: dict  # Link as JSON
    weak: frozenset  # fields whose value is only the vocabulary's unknown value


def make_entry(record: SourceRecord, link: dict | None = None) -> Entry:
    data = record.model_dump(mode="json", by_alias=True)
    values = {f: data[f] for f in TRIAL_FIELDS}
    elig = data.get("eligibility") or {}
    for f in ELIGIBILITY_FIELDS:
        values[f"eligibility.{f}"] = elig.get(f)
    weak = frozenset(n.field for n in record.notes if n.kind == "unmapped_vocabulary")
    return Entry(data, values, record.fetched_at.timestamp(), link or NCT_LINK, weak)


NCT_LINK = {"method": "nct_id", "score": None, "evidence": {}}


def _sourced(entry: Entry, value: Any) -> dict:
    d = entry.data
    return {"value": value, "site": d["site"], "url": d["url"], "fetched_at": d["fetched_at"]}


_ALL_FIELDS = (*TRIAL_FIELDS, *ELIGIBILITY_KEYS)
_FIELD_INDEX = {f: i for i, f in enumerate(_ALL_FIELDS)}
_TRIAL_ORDER = tuple(Trial.model_fields)


def merge_trial(nct_id: str, entries: list[Entry], config: ReconcileConfig) -> dict:
    """The canonical Trial of one NCT ID, as the JSON dict written to the output
    (the shape of `Trial.model_dump(mode="json", by_alias=True)`)."""
    chosen: dict[str, Any] = {}
    conflicts: list[tuple[int, dict]] = []
    single = len(entries) == 1
    for sites, fields in config.precedence.field_groups(_ALL_FIELDS):
        order = entries if single else sorted(
            entries, key=lambda e: (Precedence.rank(sites, e.data["site"]), -e.ts, e.data["url"]))
        for name in fields:
            present = []
            for e in order:
                v = e.values[name]
                if v is None or v == "" or v == [] or (name == "enrollment" and v.get("count") is None):
                    continue
                present.append((e, v))
            if not present:
                chosen[name] = None
                continue
            if single:
                chosen[name] = _sourced(*present[0])
                continue
            strong = [p for p in present if name not in p[0].weak] or None
            pick = strong[0] if strong else present[0]
            chosen[name] = _sourced(*pick)
            if strong and len(strong) > 1 and disagree(name, [v for _, v in strong], config.age_tolerance):
                conflicts.append((_FIELD_INDEX[name], {
                    "field": name,
                    "chosen_site": pick[0].data["site"],
                    "values": [_sourced(e, v) for e, v in present],
                }))
    conflicts.sort(key=lambda c: c[0])

    by_page = entries if single else sorted(entries, key=lambda e: (e.data["site"], e.data["url"]))
    identifiers: dict[tuple, dict] = {}
    notes: list[dict] = []
    seen_notes: set[tuple] = set()
    sources: list[dict] = []
    for e in by_page:
        d = e.data
        site, url = d["site"], d["url"]
        ids = [{"id": d["nct_id"], "kind": "NCT", "domain": None}] if d.get("nct_id") else []
        for ident in (*ids, *d.get("secondary_ids", ())):
            k = (ident["id"], ident["kind"], site, url)
            if k not in identifiers or (identifiers[k]["domain"] is None and ident.get("domain")):
                identifiers[k] = {"id": ident["id"], "kind": ident["kind"], "domain": ident.get("domain"),
                                  "site": site, "url": url}
        for n in d.get("notes", ()):
            k = (n["field"], n["kind"], n["detail"], site, url)
            if k not in seen_notes:
                seen_notes.add(k)
                notes.append({"field": n["field"], "kind": n["kind"], "detail": n["detail"],
                              "site": site, "url": url})
        sources.append({"site": site, "url": url, "fetched_at": d["fetched_at"],
                        "content_hash": d.get("content_hash"), "link": e.link})

    trial: dict[str, Any] = {}
    for name in _TRIAL_ORDER:
        if name == "nct_id":
            trial[name] = nct_id
        elif name == "identifiers":
            trial[name] = [identifiers[k] for k in sorted(identifiers, key=lambda k: (k[1] != "NCT", k[1], *k))]
        elif name == "eligibility":
            trial[name] = {f: chosen[f"eligibility.{f}"] for f in ELIGIBILITY_FIELDS}
        elif name == "conflicts":
            trial[name] = [c for _, c in conflicts]
        elif name == "notes":
            trial[name] = notes
        elif name == "sources":
            trial[name] = sources
        else:
            trial[name] = chosen[name]
    return trial


# --------------------------------------------------------------------------
# linking

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


def record_keys(records: Iterable[SourceRecord]) -> LinkKeys:
    titles, sponsors, conditions, mins, maxs = set(), set(), set(), set(), set()
    for r in records:
        titles.add(r.brief_title)
        titles.add(r.official_title)
        if r.lead_sponsor is not None:
            sponsors.add(_sponsor_key(r.lead_sponsor.name))
        conditions.update(r.conditions)
        mins.add(r.eligibility.min_age_years)
        maxs.add(r.eligibility.max_age_years)
    return LinkKeys(_uniq(fold_words(t) for t in titles if t), _uniq(sponsors),
                    _uniq(_fold_condition(c) for c in conditions), _uniq(mins), _uniq(maxs))


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


@dataclass
class Scored:
    nct_id: str
    source: str  # "store" or "api"
    fields: dict[str, float]
    score: float = 0.0
    agreeing: tuple[str, ...] = ()


def field_scores(page: LinkKeys, trial: LinkKeys, age_tolerance: float) -> dict[str, float]:
    """Each field both sides have, scored 0..1."""
    out: dict[str, float] = {}
    if page.titles and trial.titles:
        out["title"] = max(fuzz.token_sort_ratio(a, b) for a in page.titles for b in trial.titles) / 100
    if page.sponsors and trial.sponsors:
        out["sponsor"] = max(1.0 if _same_sponsor(a, b) else fuzz.token_sort_ratio(a, b) / 100
                             for a in page.sponsors for b in trial.sponsors)
    if page.conditions and trial.conditions:
        out["conditions"] = max(fuzz.token_set_ratio(a, b) for a in page.conditions for b in trial.conditions) / 100
    checks = []
    for mine, theirs in ((page.min_ages, trial.min_ages), (page.max_ages, trial.max_ages)):
        if mine and theirs:
            checks.append(any(abs(a - b) <= age_tolerance + 1e-9 for a in mine for b in theirs))
    if checks:
        out["ages"] = sum(checks) / len(checks)
    return out


def _finish(s: Scored, title_generic: bool, config: ReconcileConfig) -> Scored:
    counted = {f: v for f, v in s.fields.items() if not (f == "title" and title_generic)}
    weight = sum(FIELD_WEIGHTS[f] for f in counted)
    s.score = round(sum(FIELD_WEIGHTS[f] * v for f, v in counted.items()) / weight, 4) if weight else 0.0
    s.agreeing = tuple(sorted(f for f, v in counted.items() if v >= config.link_field_agree))
    return s


def _evidence(s: Scored, title_generic: bool, margin: float, runner_up: Optional[Scored]) -> dict:
    return {
        "fields": {f: round(v, 4) for f, v in sorted(s.fields.items())},
        "agreeing": list(s.agreeing),
        "title_generic": title_generic,
        "margin": round(margin, 4),
        "runner_up": runner_up.nct_id if runner_up else None,
        "runner_up_score": runner_up.score if runner_up else None,
    }


@dataclass
class LinkDecision:
    nct_id: Optional[str]
    link: Optional[dict]  # Link as JSON when linked
    reason: str  # "linked", "no_candidates", "below_threshold", "sponsor_differs", "insufficient_evidence", "ambiguous"
    candidates: list[dict]  # best candidates, for the unlinked file


def decide(page: LinkKeys, scored: list[Scored], config: ReconcileConfig) -> LinkDecision:
    """Apply the linking rules (module doc) to a page's scored candidates."""
    if not scored:
        return LinkDecision(None, None, "no_candidates", [])
    own_titles_generic = any(is_generic_title(t) for t in page.titles) or not page.titles
    shared = len({s.nct_id for s in scored if s.fields.get("title", 0.0) >= SHARED_TITLE}) >= 2
    title_generic = own_titles_generic or shared
    for s in scored:
        _finish(s, title_generic, config)
    scored.sort(key=lambda s: (-s.score, s.nct_id, s.source))
    # one entry per NCT ID (a trial can come from the store and the API)
    best_by_nct: dict[str, Scored] = {}
    for s in scored:
        best_by_nct.setdefault(s.nct_id, s)
    ranked = list(best_by_nct.values())
    best = ranked[0]
    runner = ranked[1] if len(ranked) > 1 else None
    margin = best.score - (runner.score if runner else 0.0)
    evidence = _evidence(best, title_generic, margin, runner)
    candidates = []
    for i, s in enumerate(ranked[:UNLINKED_CANDIDATES]):
        nxt = ranked[i + 1] if i + 1 < len(ranked) else None
        candidates.append({"nct_id": s.nct_id, "score": s.score, "source": s.source,
                           "evidence": _evidence(s, title_generic, s.score - (nxt.score if nxt else 0.0), nxt)})
    if best.score < config.link_threshold:
        reason = "below_threshold"
    elif best.fields.get("sponsor", 1.0) < config.link_field_agree:
        reason = "sponsor_differs"
    elif len(best.agreeing) < 2:
        reason = "insufficient_evidence"
    elif margin < config.link_margin:
        reason = "ambiguous"
    else:
        method = "fuzzy_store" if best.source == "store" else "fuzzy_api"
        return LinkDecision(best.nct_id, {"method": method, "score": best.score, "evidence": evidence},
                            "linked", candidates)
    return LinkDecision(None, None, reason, candidates)


CandidateSource = Callable[[Optional[str], Optional[str]], list[dict]]


class CtgovCandidateClient:
    """Asks the CT.gov API v2 for studies matching a title and a sponsor.

    Blocking, one request per call, with a User-Agent that names harvester
    and a timeout. Returns candidate dicts (`nct_id`, `brief_title`,
    `official_title`, `lead_sponsor`, `conditions`, `min_age_years`,
    `max_age_years`)."""

    FIELDS = "NCTId,BriefTitle,OfficialTitle,LeadSponsorName,Condition,MinimumAge,MaximumAge"

    def __init__(self, url: str = API_URL, user_agent: str = "harvester/0.1", timeout: float = 20.0,
                 page_size: int = 10):
        self.url = url
        self.user_agent = user_agent
        self.timeout = timeout
        self.page_size = page_size

    def query_url(self, title: Optional[str], sponsor: Optional[str]) -> str:
        params = {"format": "json", "pageSize": str(self.page_size), "fields": self.FIELDS}
        if title:
            params["query.titles"] = title
        if sponsor:
            params["query.spons"] = sponsor
        return f"{self.url}?{urllib.parse.urlencode(params)}"

    def __call__(self, title: Optional[str], sponsor: Optional[str]) -> list[dict]:
        if not title and not sponsor:
            return []
        request = urllib.request.Request(self.query_url(title, sponsor), headers={
            "User-Agent": self.user_agent, "Accept": "application/json"})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            page = orjson.loads(response.read())
        return [c for c in (self.candidate(s) for s in page.get("studies") or []) if c]

    @staticmethod
    def candidate(study: dict) -> Optional[dict]:
        proto = study.get("protocolSection") or {}
        ident = proto.get("identificationModule") or {}
        nct = ident.get("nctId")
        if not isinstance(nct, str) or not re.fullmatch(r"NCT\d{8}", nct):
            return None
        elig = proto.get("eligibilityModule") or {}
        lead = (proto.get("sponsorCollaboratorsModule") or {}).get("leadSponsor") or {}
        return {
            "nct_id": nct,
            "brief_title": ident.get("briefTitle"),
            "official_title": ident.get("officialTitle"),
            "lead_sponsor": lead.get("name"),
            "conditions": list((proto.get("conditionsModule") or {}).get("conditions") or []),
            "min_age_years": parse_age(elig.get("minimumAge")),
            "max_age_years": parse_age(elig.get("maximumAge")),
        }


class Linker:
    def __init__(self, index: LinkIndex, config: ReconcileConfig,
                 candidate_source: Optional[CandidateSource] = None):
        self.index = index
        self.config = config
        self.candidate_source = candidate_source
        self.api_calls = 0
        self.api_errors = 0
        self._api_cache: dict[tuple, list[dict]] = {}

    def _store_scored(self, keys: LinkKeys) -> list[Scored]:
        out = []
        for i in self.index.candidates(keys, self.config.link_max_candidates):
            fields = field_scores(keys, self.index.keys[i], self.config.age_tolerance)
            if fields:
                out.append(Scored(self.index.nct(i), "store", fields))
        return out

    def _api_scored(self, record: SourceRecord, keys: LinkKeys) -> list[Scored]:
        title = record.brief_title or record.official_title
        sponsor = record.lead_sponsor.name if record.lead_sponsor else None
        query = (title, sponsor)
        if query not in self._api_cache:
            self.api_calls += 1
            try:
                self._api_cache[query] = list(self.candidate_source(title, sponsor) or [])
            except Exception as exc:  # the network must not sink a reconcile
                self.api_errors += 1
                logger.warning("candidate lookup failed for %s: %s: %s", record.url, type(exc).__name__, exc)
                self._api_cache[query] = []
        out = []
        for c in self._api_cache[query]:
            nct = c.get("nct_id")
            if not isinstance(nct, str) or not re.fullmatch(r"NCT\d{8}", nct):
                continue
            fields = field_scores(keys, candidate_keys(c), self.config.age_tolerance)
            if fields:
                out.append(Scored(nct, "api", fields))
        return out

    def link(self, record: SourceRecord) -> LinkDecision:
        keys = record_keys([record])
        scored = self._store_scored(keys)
        decision = decide(keys, [Scored(s.nct_id, s.source, s.fields) for s in scored], self.config)
        if decision.nct_id is None and self.config.link_online and self.candidate_source is not None:
            api = self._api_scored(record, keys)
            if api:
                decision = decide(keys, scored + api, self.config)
        return decision


# --------------------------------------------------------------------------
# the two passes

@dataclass
class Summary:
    trials: int = 0
    sources: int = 0
    conflicts: int = 0
    trials_with_conflicts: int = 0
    notes: int = 0
    removed_skipped: int = 0
    linked: Counter = field(default_factory=Counter)
    unlinked: int = 0
    api_calls: int = 0
    api_errors: int = 0

    def as_stats(self) -> dict[str, int]:
        stats = {
            "reconcile/trials": self.trials,
            "reconcile/sources": self.sources,
            "reconcile/conflicts": self.conflicts,
            "reconcile/trials_with_conflicts": self.trials_with_conflicts,
            "reconcile/notes": self.notes,
            "reconcile/removed_skipped": self.removed_skipped,
            "reconcile/unlinked": self.unlinked,
            "reconcile/api_calls": self.api_calls,
            "reconcile/api_errors": self.api_errors,
        }
        for method in ("nct_id", "fuzzy_store", "fuzzy_api"):
            stats[f"reconcile/linked/{method}"] = self.linked.get(method, 0)
        return stats


def _records(store: Any, summary: Summary) -> Iterator[SourceRecord]:
    """Live records in store order, checking the order the merge relies on."""
    last: Optional[str] = None
    nctless = False
    for item in store.iter_sources():
        record = item if isinstance(item, SourceRecord) else item.record
        if getattr(item, "removed_at", None):
            summary.removed_skipped += 1
            continue
        nct = record.nct_id
        if nct is None:
            nctless = True
        elif nctless or (last is not None and nct < last):
            raise ValueError("store.iter_sources() must yield records ordered by nct_id, NCT-less last")
        else:
            last = nct
        yield record


def _groups(records: Iterator[SourceRecord], nctless: Optional[list] = None) -> Iterator[tuple[str, list]]:
    """(nct_id, records) per NCT ID; NCT-less records go to `nctless` (or stop the walk)."""
    current: Optional[str] = None
    group: list[SourceRecord] = []
    for record in records:
        if record.nct_id is None:
            if nctless is None:
                break  # NCT-less records come last: nothing more to group
            nctless.append(record)
            continue
        if record.nct_id != current:
            if group:
                yield current, group
            current, group = record.nct_id, []
        group.append(record)
    if group:
        yield current, group


def _write(out: Any, obj: dict) -> None:
    out.write(orjson.dumps(obj) + b"\n")


def reconcile(store: Any, out: Any, unlinked_out: Any, settings: Any = None,
              candidate_source: Optional[CandidateSource] = None) -> Summary:
    """Write one canonical Trial line per NCT ID to `out` and one line per
    page that could not be linked to `unlinked_out`. See the module doc."""
    config = ReconcileConfig.from_settings(settings)
    if candidate_source is None and config.link_online:
        candidate_source = CtgovCandidateClient(config.link_api_url, config.user_agent, config.link_timeout)

    summary = Summary()

    # pass 1: the linking index and the NCT-less pages
    index = LinkIndex()
    nctless: list[SourceRecord] = []
    for nct, group in _groups(_records(store, summary), nctless):
        index.add(nct, record_keys(group))

    linker = Linker(index, config, candidate_source)
    injected: dict[str, list[Entry]] = defaultdict(list)
    for record in nctless:
        decision = linker.link(record)
        if decision.nct_id is None:
            summary.unlinked += 1
            _write(unlinked_out, {
                "site": record.site,
                "url": record.url,
                "fetched_at": record.model_dump(mode="json", include={"fetched_at"})["fetched_at"],
                "brief_title": record.brief_title,
                "official_title": record.official_title,
                "lead_sponsor": record.lead_sponsor.name if record.lead_sponsor else None,
                "identifiers": [i.model_dump(mode="json") for i in record.secondary_ids],
                "reason": decision.reason,
                "candidates": decision.candidates,
            })
        else:
            injected[decision.nct_id].append(make_entry(record, decision.link))
    summary.api_calls, summary.api_errors = linker.api_calls, linker.api_errors
    # trials known only through the API: written in their place in the order
    extras = sorted(n for n in injected if index.find(n) is None)
    del index, linker, nctless

    def emit(nct_id: str, entries: list[Entry]) -> None:
        trial = merge_trial(nct_id, entries, config)
        _write(out, trial)
        summary.trials += 1
        summary.sources += len(entries)
        summary.conflicts += len(trial["conflicts"])
        summary.trials_with_conflicts += bool(trial["conflicts"])
        summary.notes += len(trial["notes"])
        for e in entries:
            summary.linked[e.link["method"]] += 1

    # pass 2: merge and write, one NCT group at a time
    pending = iter(extras)
    extra = next(pending, None)
    for nct, group in _groups(_records(store, Summary())):
        while extra is not None and extra < nct:
            emit(extra, injected.pop(extra))
            extra = next(pending, None)
        entries = [make_entry(r) for r in group]
        entries += injected.pop(nct, [])
        emit(nct, entries)
    while extra is not None:
        emit(extra, injected.pop(extra))
        extra = next(pending, None)
    return summary
