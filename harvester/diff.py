"""Field-level differences between two versions of a record, by path.

Site-agnostic and schema-agnostic: it walks two JSON values (a canonical
Trial as reconciliation writes it, or a SourceRecord) and yields one change
per leaf that differs, named by its dotted path ("overall_status",
"enrollment.count", "eligibility.min_age_years", "locations.status").
New fields need nothing here, except a list whose items have an identity:
declare it in `LIST_KEYS`.

* A reconciled value (`{"value", "site", "url", "fetched_at"}`, a
  `Sourced`) is compared on its value only: the same value from another
  page is not a change. The change carries the page of the new value (of
  the old one when the value went).
* Objects are compared key by key, so a sponsor's class or an enrollment's
  type is its own change.
* Lists are diffed as items added and removed, never by position. Items
  are matched by their identity: the item itself for lists of plain values
  (conditions, phases, criteria), the fields named in `LIST_KEYS` for lists
  of objects (a location is its facility in its city, an arm its label), the
  whole item for other objects. A matched item whose other fields differ
  gives changes at "<list>.<field>" with the item's `key`.
* None, "", [] and {} are all "no value": going from one to another is not
  a change.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator, Optional

import orjson

#: The identity of the items of a list, by the list's field name (at any
#: depth: "locations" is the Trial's and a SourceRecord's). One place for all.
LIST_KEYS: dict[str, tuple[str, ...]] = {
    "identifiers": ("kind", "id"),
    "secondary_ids": ("kind", "id"),
    "locations": ("facility", "city"),
    "interventions": ("name",),
    "collaborators": ("name",),
    "primary_outcomes": ("measure",),
    "secondary_outcomes": ("measure",),
    "other_outcomes": ("measure",),
    "arm_groups": ("label",),
    "arms": ("label",),
    "central_contacts": ("name", "role"),
    "overall_officials": ("name", "role"),
    "contacts": ("name", "role"),
    "references": ("pmid", "citation", "type"),
    "condition_mesh": ("id",),
    "intervention_mesh": ("id",),
    "condition_mesh_ancestors": ("id",),
    "intervention_mesh_ancestors": ("id",),
    "participant_flow": ("group_id",),
    "adverse_events": ("group_id",),
    "outcome_measures": ("title", "type"),
    "values": ("group_id", "class_title", "category"),
}

#: Fields of a list item that say where it was read, not what it is: left
#: out before items are compared (an identifier printed by two pages is one).
ITEM_PROVENANCE: dict[str, tuple[str, ...]] = {
    "identifiers": ("site", "url"),
}

SOURCED_KEYS = frozenset(("value", "site", "url", "fetched_at"))

CHANGE_ORDER = {"removed": 0, "changed": 1, "added": 2}


def is_sourced(value: Any) -> bool:
    return isinstance(value, dict) and value.keys() == SOURCED_KEYS


def empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _json_key(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def diff(old: Any, new: Any, skip: Callable[[str], bool] = lambda path: False,
         path: str = "") -> Iterator[dict]:
    """Every change from `old` to `new` (JSON values) as dicts: `field`,
    `change` ("changed", "added", "removed"), `key` (the list item's identity,
    or None), `old`, `new`, `page` ((site, url) of the value's page, or None
    where the values carry no provenance). `skip(path)` leaves a path out
    (and everything below it). Unsorted: see `sort_key`."""
    yield from _walk(path, old, new, None, None, None, skip)


def _page(sourced: Any) -> Optional[tuple[str, str]]:
    return (sourced["site"], sourced["url"]) if is_sourced(sourced) else None


def _walk(path, old, new, old_page, new_page, key, skip) -> Iterator[dict]:
    if path and skip(path):
        return
    if is_sourced(old) or is_sourced(new):
        old_page = _page(old) or old_page
        new_page = _page(new) or new_page
        old = old["value"] if is_sourced(old) else old
        new = new["value"] if is_sourced(new) else new
    if empty(old) and empty(new):
        return
    if isinstance(old, list) or isinstance(new, list):
        if (old is None or isinstance(old, list)) and (new is None or isinstance(new, list)):
            yield from _list(path, old or [], new or [], old_page, new_page, key, skip)
            return
    if isinstance(old, dict) or isinstance(new, dict):
        if (old is None or isinstance(old, dict)) and (new is None or isinstance(new, dict)):
            o, n = old or {}, new or {}
            for k in list(o) + [k for k in n if k not in o]:
                yield from _walk(f"{path}.{k}" if path else k, o.get(k), n.get(k), old_page, new_page, key, skip)
            return
    if old == new and isinstance(old, bool) == isinstance(new, bool):
        return
    yield {"field": path, "change": "changed", "key": key, "old": old, "new": new,
               "page": new_page if not empty(new) else old_page}


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _identity(name: str, item: Any) -> tuple[Any, Any]:
    """(key shown in the change, sort/match form) of a list item."""
    if not isinstance(item, dict):
        return None, _json_key(item)
    fields = LIST_KEYS.get(name)
    if fields:
        shown = {f: item.get(f) for f in fields}
        return shown, _json_key(shown)
    return None, _json_key(item)


def _clean(name: str, item: Any) -> Any:
    drop = ITEM_PROVENANCE.get(name)
    if drop and isinstance(item, dict):
        return {k: v for k, v in item.items() if k not in drop}
    return item


def _list(path, old, new, old_page, new_page, key, skip) -> Iterator[dict]:
    name = path.rsplit(".", 1)[-1]
    olds = _dedupe([_clean(name, i) for i in old])
    news = _dedupe([_clean(name, i) for i in new])
    groups: dict[bytes, tuple[list, list, Any]] = {}
    for side, items in ((0, olds), (1, news)):
        for item in items:
            shown, match = _identity(name, item)
            groups.setdefault(match, ([], [], shown))[side].append(item)
    for match in sorted(groups):
        o_items, n_items, shown = groups[match]
        # identical items pair first; the rest pair in order, extras are added or removed
        o_rest = [i for i in o_items if i not in n_items]
        n_rest = [i for i in n_items if i not in o_items]
        item_key = _nest(key, name, shown)
        for a, b in zip(o_rest, n_rest):
            if isinstance(a, dict) and isinstance(b, dict):  # same identity, other fields differ
                yield from _walk_item(path, a, b, old_page, new_page, item_key, skip)
            else:
                yield {"field": path, "change": "changed", "key": item_key, "old": a, "new": b,
                       "page": new_page}
        for a in o_rest[len(n_rest):]:
            yield {"field": path, "change": "removed", "key": item_key if shown is not None else key,
                   "old": a, "new": None, "page": old_page}
        for b in n_rest[len(o_rest):]:
            yield {"field": path, "change": "added", "key": item_key if shown is not None else key,
                   "old": None, "new": b, "page": new_page}


def _walk_item(path, a: dict, b: dict, old_page, new_page, key, skip) -> Iterator[dict]:
    for k in list(a) + [k for k in b if k not in a]:
        yield from _walk(f"{path}.{k}", a.get(k), b.get(k), old_page, new_page, key, skip)


def _nest(key: Any, name: str, shown: Any) -> Any:
    if shown is None:
        return key
    if key is None:
        return shown
    return {**key, name: shown}


def _dedupe(items: list) -> list:
    seen: set = set()
    out = []
    for item in items:
        k = _json_key(item)
        if k not in seen:
            seen.add(k)
            out.append(item)
    return out


def sort_key(change: dict) -> tuple:
    return (change["field"] or "", _json_key(change.get("key")), CHANGE_ORDER.get(change["change"], 9),
            _json_key(change.get("old")), _json_key(change.get("new")))
