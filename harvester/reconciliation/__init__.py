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

The package, one module per concern:

* `config`: settings, defaults and the per-field site precedence;
* `compare`: comparison forms of values and the conflict rule;
* `merge`: one trial's pages merged field by field into a Trial;
* `index`: the compact linking index of known trials and their keys;
* `scoring`: fuzzy scores of a page against candidates and the link decision;
* `ctgov_candidates`: the CT.gov API candidate lookup used when linking online;
* `driver`: the two streaming passes, `reconcile()`.
"""
from harvester.reconciliation.compare import alnum_key, dates_agree, disagree, fold, fold_words
from harvester.reconciliation.config import (
    DEFAULTS,
    Precedence,
    ReconcileConfig,
)
from harvester.reconciliation.ctgov_candidates import CtgovCandidateClient
from harvester.reconciliation.driver import Summary, reconcile
from harvester.reconciliation.index import LinkIndex, LinkKeys, candidate_keys, record_keys
from harvester.reconciliation.merge import Entry, make_entry, merge_trial
from harvester.reconciliation.scoring import LinkDecision, Linker, Scored, decide, field_scores

__all__ = [
    "DEFAULTS",
    "CtgovCandidateClient",
    "Entry",
    "LinkDecision",
    "LinkIndex",
    "LinkKeys",
    "Linker",
    "Precedence",
    "ReconcileConfig",
    "Scored",
    "Summary",
    "alnum_key",
    "candidate_keys",
    "dates_agree",
    "decide",
    "disagree",
    "field_scores",
    "fold",
    "fold_words",
    "make_entry",
    "merge_trial",
    "reconcile",
    "record_keys",
]
