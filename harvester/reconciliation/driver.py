"""The two passes of `reconcile()` over the store.

Streaming
---------
Two passes over `iter_sources()`. The first keeps only a compact linking
index (per trial: folded titles, sponsor keys, condition keys, ages) and the
NCT-less pages (few), and resolves their links. The second merges one NCT
group at a time, injecting linked pages into their group, and writes it.
Memory holds one group plus the index, never the trials.

Old NCT IDs
-----------
A trial registered twice keeps the surviving NCT ID, and CT.gov lists the
retired one in `nctIdAliases` (`SourceRecord.nct_id_aliases`). Pages that
still print the retired ID (a mirror site's old copy) join the surviving
trial with link method "nct_id_alias" (evidence: the alias), and no
separate trial is written for the retired ID. The first pass collects the
aliases; their pages (few) are read with `store.sources_for` when the store
has it (else from one more pass). An ID that is itself a trial's declared
primary is never treated as an alias of another (no cycles).
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Optional

import orjson

from harvester.reconciliation.config import ReconcileConfig
from harvester.reconciliation.ctgov_candidates import candidate_source as ctgov_candidate_source
from harvester.reconciliation.index import LinkFields, LinkIndex, link_fields, record_keys
from harvester.reconciliation.merge import Entry, entry_from_json, make_entry, merge_trial
from harvester.reconciliation.scoring import CandidateSource, Linker
from harvester.store_base import StoredJson
from items import SourceRecord


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
    padded_unlinked: int = 0  # pages of a zero-padded NCT ID that did not agree with its trial

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
            "reconcile/nct_zero_padded_unlinked": self.padded_unlinked,
        }
        for method in ("nct_id", "nct_id_alias", "fuzzy_store", "fuzzy_api"):
            stats[f"reconcile/linked/{method}"] = self.linked.get(method, 0)
        return stats


class _Page:
    """One live stored page as the passes read it: its stored JSON, decoded
    only as far as a pass needs (the linking index reads a few fields,
    `link_fields`; the merge the whole record, `data`) and validated only
    when `record` is asked for; or a record a store gave already validated."""

    __slots__ = ("nct_id", "_json", "_data", "_record", "current", "_link")

    def __init__(self, nct_id: Optional[str], json: Optional[bytes] = None,
                 record: Optional[SourceRecord] = None, current: bool = False, link: Optional[str] = None):
        self.nct_id = nct_id
        self._json = json
        self._link = link  # the store's `link_fields` of the record, when it read those
        self._data = None if record is None else record.model_dump(mode="json", by_alias=True)
        self._record = record
        # `data` is what validating would give: stored under today's contract, or dumped from a record
        self.current = current or record is not None

    @property
    def data(self) -> dict:
        if self._data is None:
            self._data = orjson.loads(self._json)
        return self._data

    def link_fields(self) -> LinkFields:
        if self._link is not None:
            return link_fields(self._link)
        return link_fields(data=self._data) if self._data is not None else link_fields(self._json)

    @property
    def record(self) -> SourceRecord:
        if self._record is None:
            self._record = SourceRecord.model_validate(self.data)
        return self._record

    def entry(self, link: Optional[dict] = None) -> Entry:
        return entry_from_json(self.data, link) if self.current else make_entry(self.record, link)


def _stored(store: Any, link: bool) -> Iterator[Any]:
    """The store's pages as stored JSON (with `link`: their linking fields)
    where it can give them so, else as records."""
    try:
        return iter(store.iter_sources(raw=True, link=True) if link else store.iter_sources(raw=True))
    except TypeError:  # a store (or view of one) without raw reads
        return iter(store.iter_sources())


def _records(store: Any, summary: Summary, link: bool = False) -> Iterator[_Page]:
    """Live pages in store order, checking the order the merge relies on.
    `link`: for the linking index (the pages' linking fields suffice)."""
    last: Optional[str] = None
    nctless = False
    for item in _stored(store, link):
        if getattr(item, "removed_at", None):
            summary.removed_skipped += 1
            continue
        if isinstance(item, StoredJson):
            page = _Page(item.nct_id, item.json, current=item.current, link=item.link_fields)
        else:
            record = item if isinstance(item, SourceRecord) else item.record
            page = _Page(record.nct_id, record=record)
        nct = page.nct_id
        if nct is None:
            nctless = True
        elif nctless or (last is not None and nct < last):
            raise ValueError("store.iter_sources() must yield records ordered by nct_id, NCT-less last")
        else:
            last = nct
        yield page


def group_by_nct(records: Iterable[Any], nctless: Optional[list] = None) -> Iterator[tuple[str, list]]:
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


def _alias_records(store: Any, aliases: dict[str, str]) -> list[SourceRecord]:
    """The live records whose NCT ID is a retired one."""
    if not aliases:
        return []
    if hasattr(store, "sources_for"):
        found = [s for s in store.sources_for(aliases) if not getattr(s, "removed_at", None)]
        return [s if isinstance(s, SourceRecord) else s.record for s in found]
    return [p.record for p in _records(store, Summary()) if p.nct_id in aliases]


def _unlinked_row(record: SourceRecord, reason: str, candidates: list) -> dict:
    return {
        "site": record.site,
        "url": record.url,
        "fetched_at": record.model_dump(mode="json", include={"fetched_at"})["fetched_at"],
        "brief_title": record.brief_title,
        "official_title": record.official_title,
        "lead_sponsor": record.lead_sponsor.name if record.lead_sponsor else None,
        "identifiers": [i.model_dump(mode="json") for i in record.secondary_ids],
        "reason": reason,
        "candidates": candidates,
    }


def _zero_padded(page: _Page) -> bool:
    return any(n["kind"] == "nct_zero_padded" for n in page.data.get("notes") or ())


def _padding_disagrees(page: _Page, others: list[_Page], config) -> Optional[str]:
    """None when a page whose NCT ID was zero-padded agrees, on title and
    sponsor, with the other pages of that ID (the trial the padding names);
    else why it is not linked."""
    from harvester.reconciliation.scoring import field_scores

    nct = page.nct_id
    if not others:
        return f"nct_zero_padded: no other page of {nct} to check the padded ID against"
    scores = field_scores(record_keys([page.link_fields()]), record_keys(p.link_fields() for p in others),
                          config.age_tolerance)
    missing = [f for f in ("title", "sponsor") if f not in scores]
    if missing:
        return f"nct_zero_padded: cannot check {' and '.join(missing)} against {nct}'s trial"
    weak = [f"{f} {scores[f]:.2f}" for f in ("title", "sponsor") if scores[f] < config.link_field_agree]
    if weak:
        return (f"nct_zero_padded: {', '.join(weak)} below {config.link_field_agree:.2f} against {nct}'s "
                "trial: the padded ID is probably another trial")
    return None


def _write(out: Any, obj: dict) -> None:
    out.write(orjson.dumps(obj) + b"\n")


def reconcile(store: Any, out: Any, unlinked_out: Any, settings: Any = None,
              candidate_source: Optional[CandidateSource] = None) -> Summary:
    """Write one canonical Trial line per NCT ID to `out` and one line per
    page that could not be linked to `unlinked_out`. See the module doc."""
    config = ReconcileConfig.from_settings(settings)
    if candidate_source is None and config.link_online:
        # replayed from the cassette when one is set (offline): see ctgov_candidates
        candidate_source = ctgov_candidate_source(settings, config)

    summary = Summary()

    # pass 1: the linking index, the NCT-less pages and the old NCT IDs
    index = LinkIndex()
    nctless: list[_Page] = []
    declared: dict[str, str] = {}  # retired NCT ID -> the trial that lists it
    for nct, group in group_by_nct(_records(store, summary, link=True), nctless):
        fields = [p.link_fields() for p in group]
        index.add(nct, record_keys(fields))
        for alias in {a for f in fields for a in f.nct_id_aliases if a != nct}:
            declared.setdefault(alias, nct)
    aliases = {a: p for a, p in declared.items() if a not in declared.values() and index.find(a) is not None}
    del declared

    linker = Linker(index, config, candidate_source)
    injected: dict[str, list[Entry]] = defaultdict(list)
    for record in (p.record for p in nctless):
        decision = linker.link(record)
        if decision.nct_id is None:
            summary.unlinked += 1
            _write(unlinked_out, _unlinked_row(record, decision.reason, decision.candidates))
        else:
            injected[aliases.get(decision.nct_id, decision.nct_id)].append(make_entry(record, decision.link))
    for record in _alias_records(store, aliases):
        injected[aliases[record.nct_id]].append(make_entry(record, {
            "method": "nct_id_alias", "score": None, "evidence": {"alias": record.nct_id}}))
    summary.api_calls, summary.api_errors = linker.api_calls, linker.api_errors
    cassette = getattr(candidate_source, "cassette", None)
    if cassette is not None:
        cassette.close()  # saves lookups recorded in a recording mode
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
    for nct, group in group_by_nct(_records(store, Summary())):
        if nct in aliases:
            continue  # merged into the trial that lists it
        while extra is not None and extra < nct:
            emit(extra, injected.pop(extra))
            extra = next(pending, None)
        padded = [r for r in group if _zero_padded(r)]
        if padded:
            group = [r for r in group if not _zero_padded(r)]
            for page in padded:
                why = _padding_disagrees(page, group, config)
                if why is None:
                    group.append(page)
                    continue
                summary.unlinked += 1
                summary.padded_unlinked += 1
                _write(unlinked_out, _unlinked_row(page.record, why, []))
            if not group and not injected.get(nct):
                continue
        entries = [p.entry() for p in group]
        entries += injected.pop(nct, [])
        emit(nct, entries)
    while extra is not None:
        emit(extra, injected.pop(extra))
        extra = next(pending, None)
    return summary
