"""The change feed: what changed in the canonical trials between two points
in time, computed from the versioned store. Knows nothing of sites.

    for change in iter_changes(store, since, until, settings):
        ...  # one dict per change, sorted, streamed

Each change is one dict (one JSON line of `scrapy changes`), with the keys
of `FIELDS`:

* `nct_id`;
* `field`: the dotted path in the canonical record ("overall_status",
  "enrollment.type", "eligibility.min_age_years", "locations",
  "locations.status"), None for the trial-level changes;
* `change`: "changed", "added" / "removed" (an item of a list, matched by
  its identity, see `harvester.diff.LIST_KEYS`), "trial_appeared" (no
  canonical record at `since`, one at `until`) or "trial_gone" (the other
  way round: every page of the trial went, 404/410);
* `key`: the identity of the list item (e.g. {"facility", "city"}), or None;
* `old`, `new`: the values (None where there was or is none);
* `site`, `url`: the page the new value comes from (the old one's when the
  value went), for trial-level changes the page that appeared or went;
* `observed_at`: when the version of that page that brought it was first
  seen (when the page went, for a page that is gone).

What it compares: the canonical record at `since` with the one at `until`
(`harvester.reconciliation`, the same as `scrapy reconcile --as-of`), field
by field, generically by path (`harvester.diff`): a new canonical field is
in the feed without a change here. Not changes of the trial: provenance (the
same value from another page), `sources`, `conflicts` and `notes`
(bookkeeping of the reconciliation), and the fields CT.gov derives on its
own (`DERIVED`: MeSH terms are renumbered without the protocol changing).
A trial that appeared within the window also gets the changes its pages
went through after each was first seen (the demo's two real versions of one
study, read in one harvest, show that way).

Only the trials touched in the window are rebuilt: pages whose version
became current, or that went or came back, in (since, until], plus the
trials that pages without an NCT ID link to differently at the two times.
Linking those pages needs the index of every trial, as reconciliation
builds it: when such pages exist it is built in one streaming pass over
the store (from the stored JSON, no validation), and a second time only
when a touched trial's linking keys (titles, sponsors, conditions, ages)
differ between the two times or a trial appeared or went. Trials are handled in NCT order in chunks, so memory
holds a chunk, never the store: sorted by (nct_id, field, key, change),
deterministic, streaming.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from types import SimpleNamespace
from typing import Any, Iterable, Iterator, Optional

from harvester.diff import diff, sort_key
from harvester.reconciliation import LinkIndex, Linker, ReconcileConfig, make_entry, merge_trial, record_keys
from harvester.reconciliation.driver import group_by_nct
from harvester.store_base import as_timestamp

FIELDS = ("nct_id", "field", "change", "key", "old", "new", "site", "url", "observed_at")

#: Canonical fields that are not facts about the trial: never in the feed.
NOT_COMPARED = frozenset(("nct_id", "sources", "conflicts", "notes"))
#: Fields the registry derives from the record on its own (MeSH browse
#: leaves are renumbered between versions with no change of the protocol).
DERIVED = frozenset(("condition_mesh", "condition_mesh_ancestors", "intervention_mesh",
                     "intervention_mesh_ancestors"))

CHUNK = 500  # trials rebuilt per store query
BEGINNING = "0001-01-01T00:00:00+00:00"


def skip_path(path: str) -> bool:
    top = path.split(".", 1)[0]
    return top in NOT_COMPARED or top in DERIVED


def _groups(sources: Iterable[Any]) -> Iterator[tuple[str, list]]:
    """(nct_id, records) per NCT ID of live pages in store order, stopping at
    the NCT-less pages (they come last)."""
    return group_by_nct(item.record for item in sources if not item.removed_at)


class _KeyView:
    """What `record_keys` reads of a record, straight from its stored JSON:
    building the linking index of every trial needs no validated records."""

    __slots__ = ("brief_title", "official_title", "lead_sponsor", "conditions", "eligibility")

    def __init__(self, data: dict):
        self.brief_title = data.get("brief_title")
        self.official_title = data.get("official_title")
        sponsor = data.get("lead_sponsor")
        self.lead_sponsor = SimpleNamespace(name=sponsor["name"]) if sponsor else None
        self.conditions = data.get("conditions") or []
        elig = data.get("eligibility") or {}
        self.eligibility = SimpleNamespace(min_age_years=elig.get("min_age_years"),
                                           max_age_years=elig.get("max_age_years"))


def _link_index(store, when: str) -> LinkIndex:
    """The linking index of every trial live at `when`, as reconciliation's
    first pass builds it (trials in NCT order, keys of their live pages)."""
    index = LinkIndex()
    current, group = None, []
    for nct, data in store.iter_records_as_of(when):
        if nct != current:
            if group:
                index.add(current, record_keys(group))
            current, group = nct, []
        group.append(_KeyView(data))
    if group:
        index.add(current, record_keys(group))
    return index


def _link(nctless: list, index: LinkIndex, config: ReconcileConfig) -> dict[str, list]:
    """{nct_id: [(record, link)]} of the pages without an NCT ID that link."""
    linker = Linker(index, config, None)  # never online: the feed is the same whenever it is run
    out: dict[str, list] = defaultdict(list)
    for item in nctless:
        decision = linker.link(item.record)
        if decision.nct_id is not None:
            out[decision.nct_id].append((item.record, decision.link))
    return out


def _own(store, when: str, ncts: list[str], chunk: int) -> Iterator[Any]:
    for i in range(0, len(ncts), chunk):
        yield from store.iter_sources_as_of(when, nct_ids=ncts[i:i + chunk], include_removed=False)


def _keys_of(store, when: str, ncts: list[str], chunk: int) -> dict:
    return {nct: record_keys(group) for nct, group in _groups(_own(store, when, ncts, chunk))}


def _linked_both(store, s: str, u: str, affected: list[str], config: ReconcileConfig,
                 chunk: int) -> tuple[dict, dict]:
    """The NCT-less pages linked at `s` and at `u`. The index of every trial
    is built once (at `u`) and reused for `s` when it would be the same: the
    touched trials exist at both times with the same linking keys (titles,
    sponsors, conditions, ages); otherwise it is built for `s` too."""
    nctless_s = list(store.iter_sources_as_of(s, include_removed=False, nctless=True))
    nctless_u = list(store.iter_sources_as_of(u, include_removed=False, nctless=True))
    if not nctless_s and not nctless_u:
        return {}, {}
    index_u = _link_index(store, u)
    same = _keys_of(store, s, affected, chunk) == _keys_of(store, u, affected, chunk)
    index_s = index_u if same else _link_index(store, s)
    return _link(nctless_s, index_s, config), _link(nctless_u, index_u, config)


def _signature(linked: list | None) -> list:
    return sorted((r.site, r.url, r.content_hash, repr(link)) for r, link in (linked or []))


def _trials(sources: Iterable[Any], ncts: list[str], linked: dict, config: ReconcileConfig) -> dict:
    own: dict[str, list] = defaultdict(list)
    for nct, group in _groups(sources):
        own[nct].extend(group)
    out = {}
    for nct in ncts:
        if own.get(nct):
            entries = [make_entry(r) for r in own[nct]] + [make_entry(r, link) for r, link in linked.get(nct, [])]
            out[nct] = merge_trial(nct, entries, config)
    return out


class _PageTimes:
    """When a page's state at `until` was observed: the first sight of its
    version then, or when it went."""

    def __init__(self, store, since: str, until: str):
        self.store, self.since, self.until, self.cache = store, since, until, {}

    def first_seen(self, page: tuple[str, str]) -> Optional[str]:
        return self.store.first_seen_after(page[0], page[1], self.since)

    def __call__(self, page: Optional[tuple[str, str]]) -> Optional[str]:
        if page is None:
            return None
        if page not in self.cache:
            first_seen, gone_at = self.store.page_state(page[0], page[1], self.until)
            self.cache[page] = gone_at or first_seen
        return self.cache[page]


def _line(nct: str, c: dict, observed: _PageTimes) -> dict:
    page = c.get("page")
    return {"nct_id": nct, "field": c["field"], "change": c["change"], "key": c.get("key"),
            "old": c.get("old"), "new": c.get("new"), "site": page[0] if page else None,
            "url": page[1] if page else None, "observed_at": observed(page)}


def _trial_level(nct: str, change: str, trial: dict, observed: _PageTimes) -> dict:
    """A trial appeared (the page first seen earliest, when) or went (the
    page that went last, when)."""
    pages = [(s["site"], s["url"]) for s in trial.get("sources") or []]
    if change == "trial_appeared":
        times = sorted((observed.first_seen(p) or "", p) for p in pages)
    else:
        times = sorted(((observed(p) or "", p) for p in pages), reverse=True)
    when, page = times[0] if times else (None, None)
    return {"nct_id": nct, "field": None, "change": change, "key": None, "old": None, "new": None,
            "site": page[0] if page else None, "url": page[1] if page else None,
            "observed_at": when or None}


def trial_changes(nct: str, old: Optional[dict], new: Optional[dict], first: Optional[dict],
                  observed: _PageTimes) -> list[dict]:
    """The sorted changes of one trial between two canonical records."""
    if old is None and new is None:
        return []
    head = []
    if old is None:
        head.append(_trial_level(nct, "trial_appeared", new, observed))
    elif new is None:
        return [_trial_level(nct, "trial_gone", old, observed)]
    base = old if old is not None else first
    body = [_line(nct, c, observed) for c in diff(base, new, skip=skip_path)] if base is not None else []
    body.sort(key=sort_key)
    return head + body


def iter_changes(store, since: str | datetime | None, until: str | datetime, settings: Any = None,
                 chunk: int = CHUNK) -> Iterator[dict]:
    """Every change of a canonical trial in (since, until], sorted by NCT ID
    then field. `since` None: from the beginning (every trial appears)."""
    s = as_timestamp(since) if since is not None else BEGINNING
    u = as_timestamp(until)
    if u < s:
        raise ValueError(f"--until {u} is before --since {s}")
    config = ReconcileConfig.from_settings(settings)
    ncts = store.nct_ids_of_pages(store.changed_pages(s, u), [s, u])
    linked_s, linked_u = _linked_both(store, s, u, sorted(ncts), config, chunk)
    for nct in set(linked_s) | set(linked_u):
        if _signature(linked_s.get(nct)) != _signature(linked_u.get(nct)):
            ncts.add(nct)
    observed = _PageTimes(store, s, u)
    ordered = sorted(ncts)
    for i in range(0, len(ordered), chunk):
        part = ordered[i:i + chunk]
        old = _trials(store.iter_sources_as_of(s, nct_ids=part, include_removed=False), part, linked_s, config)
        new = _trials(store.iter_sources_as_of(u, nct_ids=part, include_removed=False), part, linked_u, config)
        appeared = [n for n in part if n not in old and n in new]
        first = _trials(store.iter_first_versions(s, u, appeared), appeared, linked_u, config) if appeared else {}
        for nct in part:
            yield from trial_changes(nct, old.get(nct), new.get(nct), first.get(nct), observed)
        observed.cache.clear()


class AsOf:
    """The store as it was at `when`, for `reconcile()`: `iter_sources()`
    yields the versions current then, pages gone then marked removed."""

    def __init__(self, store, when: str | datetime):
        self.store, self.when = store, as_timestamp(when)

    def iter_sources(self):
        return self.store.iter_sources_as_of(self.when)


def history(store, nct_ids: Iterable[str]) -> list[dict]:
    """The versions of the pages that ever carried these NCT IDs, per page,
    each with what it changed against the version current before it:
    [{site, url, gone: [...], versions: [{seq, first_seen_at, last_seen_at,
    current_from, quarantine, accepted_at, nct_id, changes: [...]}]}]."""
    pages: dict[tuple[str, str], dict] = {}
    previous: dict[tuple[str, str], Any] = {}
    for v in store.versions(nct_ids=nct_ids, with_records=True):
        page = (v["site"], v["url"])
        entry = pages.setdefault(page, {"site": v["site"], "url": v["url"], "versions": [],
                                        "gone": store.gone_intervals(site=v["site"], url=v["url"])})
        record = v.pop("record").model_dump(mode="json", by_alias=True)
        before = previous.get(page)
        changes = [] if before is None else sorted(
            (dict(c, page=None) for c in diff(before, record, skip=_record_skip)), key=sort_key)
        v["changes"] = [{k: c[k] for k in ("field", "change", "key", "old", "new")} for c in changes]
        entry["versions"].append(v)
        if v["current_from"] is not None:  # a held-back version is compared, but the next compares with the current
            previous[page] = record
    return list(pages.values())


_RECORD_BOOKKEEPING = frozenset(("site", "url", "fetched_at", "content_hash", "raw", "notes"))


def _record_skip(path: str) -> bool:
    top = path.split(".", 1)[0]
    return top in _RECORD_BOOKKEEPING or top in DERIVED
