"""Fuzzy scores of a page against candidate trials, and the link decision
(the rules are in `harvester.reconciliation.index`).

Why these numbers: a field agrees at 0.85 because spelling variants of the
same title or condition ("Haematological"/"Hematological", punctuation, word
order) score above it, while two different CAR-T trials of the seeds with
much the same wording (seed 000 and NCT04008524) score 0.79 on the title. The
threshold 0.80 on the mean lets one weak field (a site's keyword-laden
conditions) pass when the others agree fully, but not two. The margin 0.10
is about one field's worth: a trial registered twice, or a sponsor's sister
trial that matches everything the page prints, leaves the page unlinked
rather than tied to one of them by chance.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Callable, Optional

from rapidfuzz import fuzz

from harvester.reconciliation.compare import _same_sponsor
from harvester.reconciliation.config import ReconcileConfig
from harvester.reconciliation.index import LinkIndex, LinkKeys, candidate_keys, is_generic_title, record_keys
from items import SourceRecord

logger = logging.getLogger(__name__)

# Linking constants that are part of the method rather than tunables.
FIELD_WEIGHTS = {"title": 0.45, "sponsor": 0.30, "conditions": 0.15, "ages": 0.10}
SHARED_TITLE = 0.95  # a known trial whose title scores this high "shares" the title
UNLINKED_CANDIDATES = 3  # best candidates written with an unlinked page

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


class Linker:
    def __init__(self, index: LinkIndex, config: ReconcileConfig,
                 candidate_source: Optional[CandidateSource] = None):
        self.index = index
        self.config = config
        self.candidate_source = candidate_source
        self.api_calls = 0
        self.api_errors = 0
        self._api_cache: dict[tuple, list[dict]] = {}
        self._api_failed: dict[tuple, str] = {}  # query -> why its lookup failed

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
                self._api_failed[query] = f"CT.gov candidate lookup failed: {exc}"
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
            failed = self._api_failed.get((record.brief_title or record.official_title,
                                           record.lead_sponsor.name if record.lead_sponsor else None))
            if failed and decision.nct_id is None:
                decision = LinkDecision(None, None, f"{decision.reason}; {failed}", decision.candidates)
        return decision
