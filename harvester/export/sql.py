"""The tables that are not one Trial field each: `conflicts` (one row per
source value of a disagreeing field), `field_provenance` (one row per
reconciled field: the page its value came from), `unlinked` (one row per
page of `unlinked.jsonl`) and `changes` (the change feed), plus the DuckDB
column declarations used to read the canonical JSONL in place."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from harvester.export.layout import Column, LType, Table, flatten, ltype, model_keys, qi, sourced_paths
from items import Conflict, ConflictValue, Trial
from items.unlinked import UnlinkedPage


def read_columns(model: type[BaseModel]) -> str:
    """The `columns={...}` argument of DuckDB's read_json for one model: every
    key with its declared type, so nothing is inferred from the data."""
    items = ", ".join(f"'{key}': '{ltype(f.annotation).duckdb()}'" for key, f in model_keys(model))
    return "{" + items + "}"


def _select(cols: list[Column], source: str, order: str) -> str:
    return ("SELECT " + ", ".join(f"{c.expr} AS {qi(c.name)}" for c in cols) + f" FROM {source} ORDER BY {order}")


def conflicts_table() -> Table:
    conflict = {k: ltype(f.annotation) for k, f in model_keys(Conflict)}
    value_cols = flatten(ltype(ConflictValue), "v", "")
    cols = [Column("nct_id", LType("VARCHAR"), "nct_id"),
            Column("field", conflict["field"], "field", "the disagreeing field (eligibility sub-fields dotted)"),
            Column("chosen_site", conflict["chosen_site"], "chosen_site", "the site whose value `trials` has"),
            Column("position", LType("BIGINT"), "position", "order of the value (precedence order)")]
    cols += [Column(c.name, c.type, c.expr,
                    "the page's value, as JSON" if c.name == "value" else "") for c in value_cols]
    source = ("(SELECT nct_id, c_pos, c.field AS field, c.chosen_site AS chosen_site, "
              "generate_subscripts(c.\"values\", 1) AS position, unnest(c.\"values\") AS v FROM "
              "(SELECT t.nct_id, generate_subscripts(t.conflicts, 1) AS c_pos, unnest(t.conflicts) AS c "
              "FROM chunk t))")
    table = Table("conflicts", "Fields whose sources still disagree after normalization: one row per "
                  "page's value (the chosen one is in `trials`).", cols,
                  _select(cols, source, "nct_id, c_pos, position"), key=("nct_id", "field", "position"),
                  filled_from=("conflicts",))
    return table


def provenance_table(model: type[BaseModel] = Trial) -> Table:
    paths = sourced_paths(model)
    packs = []
    for p in paths:
        base = "t" + "".join("." + qi(x) for x in p.split("."))
        packs.append(f"struct_pack(field := '{p}', site := {base}.site, url := {base}.url, "
                     f"fetched_at := {base}.fetched_at)")
    cols = [Column("nct_id", LType("VARCHAR"), "nct_id"),
            Column("field", LType("VARCHAR"), "p.field", "the trial field (eligibility sub-fields dotted)"),
            Column("site", LType("VARCHAR"), "p.site"),
            Column("url", LType("VARCHAR"), "p.url"),
            Column("fetched_at", LType("TIMESTAMPTZ"), "p.fetched_at")]
    source = (f"(SELECT t.nct_id, generate_subscripts(l, 1) AS i, unnest(l) AS p FROM "
              f"(SELECT t.nct_id, [{', '.join(packs)}] AS l FROM chunk t) t) WHERE p.site IS NOT NULL")
    return Table("field_provenance", "For every field of every trial that has a value: the page it was "
                 "taken from.", cols, _select(cols, source, "nct_id, i"), key=("nct_id", "field"),
                 filled_from=tuple(paths))


def unlinked_table() -> Table:
    cols = flatten(ltype(UnlinkedPage), "unlinked_chunk", "")
    return Table("unlinked", "Pages without an NCT ID that could not be tied to a trial with confidence, "
                 "with the reason and their best candidates (JSON).", cols,
                 _select(cols, "unlinked_chunk", "site, url"), key=("site", "url"), filled_from=("unlinked",),
                 staged="unlinked_chunk")


# The change feed's lines (`harvester.changes.iter_changes`, one dict per
# change; the feed has no pydantic model, so its columns are declared here).
CHANGES_COLUMNS = (("nct_id", "VARCHAR", "the trial"),
                   ("field", "VARCHAR", "dotted path in the canonical record; empty for a trial appearing or going"),
                   ("change", "VARCHAR", "changed, added, removed, trial_appeared or trial_gone"),
                   ("key", "JSON", "identity of the list item added, removed or changed"),
                   ("old", "JSON", "the value before"),
                   ("new", "JSON", "the value after"),
                   ("site", "VARCHAR", "the page the new value comes from (the old one's when it went)"),
                   ("url", "VARCHAR", ""),
                   ("observed_at", "TIMESTAMPTZ", "when the version that brought it was first seen"))


def changes_columns() -> str:
    """read_json's columns for the change feed's lines."""
    return "{" + ", ".join(f"'{n}': '{t}'" for n, t, _ in CHANGES_COLUMNS) + "}"


def changes_table() -> Table:
    from harvester.export.layout import parse_ltype

    cols = [Column(n, parse_ltype(t), f"changes_chunk.{qi(n)}", d) for n, t, d in CHANGES_COLUMNS]
    # no ORDER BY: the feed comes sorted (nct_id, field, key, change) and DuckDB keeps insertion order
    select = "SELECT " + ", ".join(f"{c.expr} AS {qi(c.name)}" for c in cols) + " FROM changes_chunk"
    return Table("changes", "The change feed: what changed in each trial, from `--changes-since` (by default "
                 "the store's beginning) to the export's time.", cols, select,
                 key=("nct_id", "field", "key", "change"), filled_from=("changes",), staged="changes_chunk")


def special_tables(model: Any = Trial) -> dict[str, Table]:
    return {"conflicts": conflicts_table(), "field_provenance": provenance_table(model),
            "unlinked": unlinked_table(), "changes": changes_table()}
