"""Reconciliation settings and the per-field site precedence.

Choosing values
---------------
Field by field, never a whole record. For every field of `TRIAL_FIELDS` and
every sub-field of `eligibility` and `design` the chosen value is the first non-empty value in
precedence order: the field's list of sites from `HARVEST_PRECEDENCE` (keys:
a field name, `eligibility`, `design`, or `eligibility.<sub>` / `design.<sub>`
for the sub-fields, and `"*"` for every other field) over the default the
site registry gives (`harvester.sites`: each site's `rank`, and the fields it
claims first with `first_for`), sites not listed after the listed ones in
alphabetical order; within one site the newest `fetched_at` wins (then the
URL, so ties are deterministic). Empty means None, "", [] or an enrollment
without a count. A value the parser could only map to the vocabulary's
unknown value (the record carries an `unmapped_vocabulary` note for that
field) is used only when no page has a real value, and never makes a
conflict.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable

from harvester.sites import default_precedence
from harvester.sites import sites as registered_sites
from items import NESTED_FIELDS, TRIAL_FIELDS

API_URL = "https://clinicaltrials.gov/api/v2/studies"

#: Settings read by `ReconcileConfig.from_settings`, with their defaults.
DEFAULTS: dict[str, Any] = {
    # field -> ordered sites; merged key by key over the registry's default
    # precedence (harvester.sites.default_precedence: the sites' ranks)
    "HARVEST_PRECEDENCE": {},
    # ask the CT.gov API for candidates when no stored trial links
    "HARVEST_LINK_ONLINE": False,
    "HARVEST_LINK_THRESHOLD": 0.80,
    "HARVEST_LINK_FIELD_AGREE": 0.85,
    "HARVEST_LINK_MARGIN": 0.10,
    "HARVEST_LINK_MAX_CANDIDATES": 50,
    "HARVEST_LINK_API_URL": API_URL,
    "HARVEST_LINK_TIMEOUT": 20.0,
    "HARVEST_AGE_TOLERANCE": 0.02,
    # False: contacts, officials and named investigators (personal data) are
    # left out of the canonical output; the stored source records keep them
    "HARVEST_CANONICAL_CONTACTS": True,
}

# sub-fields reconciled one by one, as "eligibility.sex", "design.masking"
NESTED_KEYS = tuple(f"{group}.{sub}" for group, subs in NESTED_FIELDS.items() for sub in subs)
_PRECEDENCE_KEYS = frozenset(("*", *NESTED_FIELDS, *TRIAL_FIELDS, *NESTED_KEYS))


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

    def __init__(self, spec: dict[str, Iterable[str]] | str | None = None,
                 defaults: dict[str, Iterable[str]] | None = None):
        """`spec` (HARVEST_PRECEDENCE) over `defaults` (by default the site
        registry's precedence, `harvester.sites.default_precedence`)."""
        if isinstance(spec, str):
            spec = json.loads(spec)
        if defaults is None:
            defaults = default_precedence(registered_sites())
        merged = {k: list(v) for k, v in defaults.items()}
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
            elif "." in field and field.partition(".")[0] in self.spec:
                sites = tuple(self.spec[field.partition(".")[0]])
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
    canonical_contacts: bool = True

    @classmethod
    def from_settings(cls, settings: Any = None) -> "ReconcileConfig":
        ua = (settings.get("USER_AGENT", None) if settings is not None else None) or "harvester/0.1"
        return cls(
            precedence=Precedence(_get(settings, "HARVEST_PRECEDENCE"), default_precedence(registered_sites(settings))),
            link_online=_bool(_get(settings, "HARVEST_LINK_ONLINE")),
            link_threshold=float(_get(settings, "HARVEST_LINK_THRESHOLD")),
            link_field_agree=float(_get(settings, "HARVEST_LINK_FIELD_AGREE")),
            link_margin=float(_get(settings, "HARVEST_LINK_MARGIN")),
            link_max_candidates=int(_get(settings, "HARVEST_LINK_MAX_CANDIDATES")),
            link_api_url=str(_get(settings, "HARVEST_LINK_API_URL")),
            link_timeout=float(_get(settings, "HARVEST_LINK_TIMEOUT")),
            age_tolerance=float(_get(settings, "HARVEST_AGE_TOLERANCE")),
            user_agent=str(ua),
            canonical_contacts=_bool(_get(settings, "HARVEST_CANONICAL_CONTACTS")),
        )
