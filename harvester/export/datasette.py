"""Datasette for the SQLite export: two views and a `metadata.json`.

    scrapy export --format sqlite -O trials.db      # writes metadata.json beside it
    datasette trials.db -m metadata.json

The views: `trial_conflicts` (every disagreeing value next to the trial's
title and whether it is the one `trials` holds) and `recent_changes` (the
change feed, newest first, with the trial's title). The metadata gives the
tables and views titles and descriptions and facets: status, phase (an array
facet on the JSON list), study type, sponsor class on `trials`; country on
`locations`; field and site on the conflicts.
"""
from __future__ import annotations

import json
from pathlib import Path

from harvester.export.layout import Table, qi

TITLE = "harvester: clinical trials"
DESCRIPTION = ("One reconciled record per NCT ID from ClinicalTrials.gov and the sites that republish it; "
               "child tables keyed by nct_id; conflicts keep every source's value.")

FACETS = {
    "trials": ["overall_status", {"array": "phases"}, "study_type", "lead_sponsor_class"],
    "locations": ["country", "status"],
    "conflicts": ["field", "site"],
    "trial_conflicts": ["field", "site", "chosen"],
    "sources": ["site", "link_method"],
    "unlinked": ["site", "reason"],
    "criteria": ["kind"],
    "outcomes": ["kind"],
    "interventions": ["type"],
    "identifiers": ["kind"],
    "recent_changes": [],
}
LABELS = {"trials": "brief_title"}
SORT = {"trials": "nct_id"}


def _changes_time_column(tables: dict[str, Table]) -> str | None:
    for c in tables["changes"].columns:
        if c.type.kind == "TIMESTAMPTZ":
            return c.name
    return None


def views(tables: dict[str, Table]) -> list[str]:
    out = [
        "CREATE VIEW trial_conflicts AS SELECT c.nct_id, t.brief_title, c.field, c.site, c.url, c.fetched_at, "
        "c.value, c.site = c.chosen_site AS chosen, c.chosen_site, c.position "
        "FROM conflicts c LEFT JOIN trials t ON t.nct_id = c.nct_id ORDER BY c.nct_id, c.field, c.position",
    ]
    if "changes" in tables:
        cols = ", ".join(f"c.{qi(col.name)}" for col in tables["changes"].columns)
        when = _changes_time_column(tables)
        order = f" ORDER BY c.{qi(when)} DESC, c.nct_id" if when else ""
        title = ", t.brief_title" if any(col.name == "nct_id" for col in tables["changes"].columns) else ""
        join = " LEFT JOIN trials t ON t.nct_id = c.nct_id" if title else ""
        out.append(f"CREATE VIEW recent_changes AS SELECT {cols}{title} FROM changes c{join}{order}")
    return out


VIEW_DESCRIPTIONS = {
    "trial_conflicts": ("Conflicts", "Every value of every field on which sources disagree, with the trial's "
                        "title; `chosen` marks the value `trials` holds."),
    "recent_changes": ("Recent changes", "The change feed, newest first, with the trial's title."),
}


def metadata(database: str, tables: dict[str, Table]) -> dict:
    entries: dict[str, dict] = {}
    for name, t in tables.items():
        entry: dict = {"title": name.replace("_", " ").capitalize(), "description": t.description}
        if name in FACETS and FACETS[name]:
            entry["facets"] = FACETS[name]
        if name in LABELS:
            entry["label_column"] = LABELS[name]
        if name in SORT:
            entry["sort"] = SORT[name]
        described = {c.name: c.description for c in t.columns if c.description}
        if described:
            entry["columns"] = described
        entries[name] = entry
    for name, (title, desc) in VIEW_DESCRIPTIONS.items():
        entries[name] = {"title": title, "description": desc}
        if FACETS.get(name):
            entries[name]["facets"] = FACETS[name]
    return {"title": TITLE, "description": DESCRIPTION,
            "databases": {database: {"title": TITLE, "description": DESCRIPTION, "tables": entries}}}


def write_metadata(path: Path, db_path: Path, tables: dict[str, Table]) -> None:
    """metadata.json for `datasette DB -m metadata.json` (Datasette names the
    database after the file's stem)."""
    from harvester.atomic import atomic_write

    with atomic_write(path, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(metadata(db_path.stem, tables), indent=2) + "\n")
