"""The integrity gate: a new version of a page that looks like a degraded
page (a blank template, an error body, a truncated API answer) never
replaces the page's current version.

Before a new version becomes current the store compares it with the
current one (`IntegrityGate.check(current, new)`). The new one is held back
("quarantined", with the reason this returns) when it:

* loses the NCT ID the current version had;
* carries another NCT ID than the current version (a page is about one
  trial; a different ID is a different page served at the same URL, or a
  parser reading the wrong thing);
* empties a core field that the current version had filled. The core
  fields are the setting `HARVEST_INTEGRITY_FIELDS` (SourceRecord field
  names; default: brief_title, overall_status, lead_sponsor, conditions,
  eligibility). An empty list keeps only the two NCT ID checks.

"Filled" is the same everywhere: not None, not blank text, not an empty
list; a sub-model (eligibility, sponsor, enrollment) is filled when any of
its own fields is. A field that only changed value is never a reason: the
gate catches pages that say less, not pages that say something else.

A quarantined version is kept in full; a person who checked that the site
really removed the data makes it current with `scrapy accept`.
"""
from __future__ import annotations

from typing import Any, Iterable, Optional

from items import SourceRecord
from items.records import is_model

DEFAULT_CORE_FIELDS: tuple[str, ...] = ("brief_title", "overall_status", "lead_sponsor", "conditions",
                                        "eligibility")


def filled(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if is_model(type(value)):
        return any(filled(getattr(value, name)) for name in type(value).model_fields)
    if isinstance(value, dict):
        return any(filled(v) for v in value.values())
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(filled(v) for v in value)
    return True  # numbers and booleans, including 0 and False, are values


class IntegrityGate:
    def __init__(self, core_fields: Iterable[str] = DEFAULT_CORE_FIELDS):
        fields = tuple(core_fields)
        unknown = [f for f in fields if f not in SourceRecord.model_fields]
        if unknown:
            raise ValueError(f"HARVEST_INTEGRITY_FIELDS: not SourceRecord fields: {', '.join(unknown)}")
        self.core_fields = fields

    @classmethod
    def from_settings(cls, settings: Any) -> "IntegrityGate":
        value = settings.get("HARVEST_INTEGRITY_FIELDS", None) if settings is not None else None
        if value is None:
            return cls()
        if isinstance(value, str):
            value = [f for f in value.replace(",", " ").split() if f]
        return cls(value)

    def check(self, current: SourceRecord, new: SourceRecord) -> Optional[str]:
        """Why `new` must not replace `current` (None: it may)."""
        if current.nct_id and not new.nct_id:
            return f"loses its NCT ID (current version: {current.nct_id})"
        if current.nct_id and new.nct_id != current.nct_id:
            return f"changes its NCT ID ({current.nct_id} -> {new.nct_id})"
        emptied = [f for f in self.core_fields if filled(getattr(current, f)) and not filled(getattr(new, f))]
        if emptied:
            return "empties core fields that were filled: " + ", ".join(emptied)
        return None

    __call__ = check
