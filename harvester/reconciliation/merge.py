"""One trial's pages merged field by field into the canonical Trial (as JSON).

Parser notes carry through into `Trial.notes` with the page's site and URL;
every identifier of every page goes to `Trial.identifiers` (deduplicated by
id, kind, site and URL); every page to `Trial.sources` with its link.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from harvester.reconciliation.compare import disagree
from harvester.reconciliation.config import NESTED_KEYS, Precedence, ReconcileConfig
from items import NESTED_FIELDS, TRIAL_FIELDS, SourceRecord, Trial


class Entry(NamedTuple):
    """One page of a trial group, as JSON, with how it was linked."""

    data: dict  # SourceRecord.model_dump(mode="json", by_alias=True)
    values: dict  # field (sub-fields as "eligibility.<sub>", "design.<sub>") -> value, the non-empty ones
    ts: float  # fetched_at as a timestamp, for "newest fetch wins"
    link: dict  # Link as JSON
    weak: frozenset  # fields whose value is only the vocabulary's unknown value


def make_entry(record: SourceRecord, link: dict | None = None) -> Entry:
    return entry_from_json(record.model_dump(mode="json", by_alias=True), link)


def entry_from_json(data: dict, link: dict | None = None) -> Entry:
    """The entry of a record given as its JSON (`model_dump(mode="json",
    by_alias=True)` of a validated record: every field present)."""
    values = {}
    for name in TRIAL_FIELDS:
        v = data[name]
        # kept: anything but None, "" and [] (a truthy value is, at once)
        if v or (v is not None and v != "" and v != []):
            values[name] = v
    enrollment = values.get("enrollment")
    if enrollment is not None and enrollment.get("count") is None:
        del values["enrollment"]
    for group, keys in _NESTED_KEYS:
        nested = data.get(group)
        if nested:
            for f, key in keys:
                v = nested.get(f)
                if v or (v is not None and v != "" and v != []):
                    values[key] = v
    notes = data["notes"]
    weak = frozenset(n["field"] for n in notes if n["kind"] == "unmapped_vocabulary") if notes else _NONE
    return Entry(data, values, datetime.fromisoformat(data["fetched_at"]).timestamp(), link or NCT_LINK, weak)


_NESTED_KEYS = tuple((group, tuple((f, f"{group}.{f}") for f in subs)) for group, subs in NESTED_FIELDS.items())
_NONE: frozenset = frozenset()


NCT_LINK = {"method": "nct_id", "score": None, "evidence": {}}


def _sourced(entry: Entry, value: Any) -> dict:
    d = entry.data
    return {"value": value, "site": d["site"], "url": d["url"], "fetched_at": d["fetched_at"]}


_ALL_FIELDS = (*TRIAL_FIELDS, *NESTED_KEYS)
_FIELD_INDEX = {f: i for i, f in enumerate(_ALL_FIELDS)}
_TRIAL_ORDER = tuple(Trial.model_fields)
_NESTED = dict(_NESTED_KEYS)


def merge_trial(nct_id: str, entries: list[Entry], config: ReconcileConfig) -> dict:
    """The canonical Trial of one NCT ID, as the JSON dict written to the output
    (the shape of `Trial.model_dump(mode="json", by_alias=True)`)."""
    chosen: dict[str, Any] = {}
    conflicts: list[tuple[int, dict]] = []
    single = len(entries) == 1
    if single:  # every value the page gives is chosen, nothing to compare
        e = entries[0]
        for name, v in e.values.items():
            chosen[name] = _sourced(e, v)
    else:
        given = set().union(*(e.values for e in entries))  # the fields any page gives
        any_weak = any(e.weak for e in entries)
        tolerance = config.age_tolerance
        for sites, fields in config.precedence.field_groups(_ALL_FIELDS):
            order = sorted(entries, key=lambda e: (Precedence.rank(sites, e.data["site"]), -e.ts, e.data["url"]))
            for name in fields:
                if name not in given:
                    continue
                present = [(e, v) for e in order if (v := e.values.get(name)) is not None]
                if len(present) == 1:
                    chosen[name] = _sourced(*present[0])
                    continue
                strong = ([p for p in present if name not in p[0].weak] or None) if any_weak else present
                pick = strong[0] if strong else present[0]
                chosen[name] = _sourced(*pick)
                if strong is None or len(strong) < 2:
                    continue
                first = strong[0][1]
                for _, v in strong:
                    if v != first:  # printed differently: do they still differ once normalized?
                        if disagree(name, [v for _, v in strong], tolerance):
                            conflicts.append((_FIELD_INDEX[name], {
                                "field": name,
                                "chosen_site": pick[0].data["site"],
                                "values": [_sourced(e, v) for e, v in present],
                            }))
                        break
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
        elif name in NESTED_FIELDS:
            trial[name] = {f: chosen.get(key) for f, key in _NESTED[name]}
        elif name == "conflicts":
            trial[name] = [c for _, c in conflicts]
        elif name == "notes":
            trial[name] = notes
        elif name == "sources":
            trial[name] = sources
        else:
            trial[name] = chosen.get(name)
    if not config.canonical_contacts:
        without_personal_data(trial)
    return trial


_PEOPLE = ("central_contacts", "overall_officials")


def _scrub(field: str, value: Any) -> Any:
    if field == "locations" and value:
        return [{**loc, "contacts": []} for loc in value]
    if field == "responsible_party" and value:
        return {**value, "investigator_name": None}
    return value


def without_personal_data(trial: dict) -> dict:
    """Leave out, in place, what names people in a canonical Trial (as JSON):
    central contacts, overall officials, each location's contacts and the
    responsible party's investigator (`items.PERSONAL_FIELDS`), in the chosen
    values and in the conflicts. Everything else stays."""
    for name in _PEOPLE:
        trial[name] = None
    trial["conflicts"] = [c for c in trial["conflicts"] if c["field"] not in _PEOPLE]
    for field in ("locations", "responsible_party"):
        if trial.get(field):
            trial[field] = {**trial[field], "value": _scrub(field, trial[field]["value"])}
        for c in trial["conflicts"]:
            if c["field"] == field:
                c["values"] = [{**v, "value": _scrub(field, v["value"])} for v in c["values"]]
    return trial
