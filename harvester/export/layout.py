"""The export tables, derived from the data contract (`items`).

Column types come from the pydantic models, never from the data, so a
column that is empty in a whole batch keeps its type. The rules, applied to
every field of `Trial` in model order:

* `nct_id` and every reconciled scalar field is one column of `trials`,
  holding the plain value (the `Sourced` wrapper's `value`; where it came
  from is in `field_provenance`).
* A nested object flattens into prefixed columns: `enrollment.count` ->
  `enrollment_count`, `lead_sponsor.class` -> `lead_sponsor_class`; a
  sub-field that only repeats the end of the prefix is not repeated
  (`start_date.date` -> `start_date`, beside `start_date_type`). A model
  whose fields are all Sourced (`eligibility`) opens up the same way, its
  columns prefixed with its name unless `PREFIXES` says otherwise.
* A list of objects becomes a child table named after the field, one row per
  item keyed by (`nct_id`, `position`), its columns the item's fields
  (flattened the same way; a list nested inside an item is one list column,
  a list of objects inside an item one JSON column).
* A list of plain values stays one list column (`phases`) unless
  `CHILD_TABLES` makes it a table.

`CHILD_TABLES` is the one place that names tables whose name or content is
not simply one field's: several fields into one table with a `kind`
column (criteria, outcomes), a list of plain values as a table (conditions),
and the columns a table keeps while the field it is filled from does not
exist yet in the contract. `PREFIXES` renames the prefix of a nested object's
columns. `conflicts`, `sources`, `field_provenance`, `unlinked` and
`changes` are built from the contract's own models by `harvester.export.sql`.

Logical types are DuckDB's names; `sql_type(t, dialect)` maps them to
SQLite and PostgreSQL (lists and JSON are JSON text in SQLite).
"""
from __future__ import annotations

import types
import typing
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, Optional, Union


from items import Sourced, Trial
from items.records import is_model

# ---------------------------------------------------------------------------- declared tables


@dataclass(frozen=True)
class Part:
    """One field that fills a child table (a dotted path into Trial), and the
    value its rows carry in the table's `kind` column."""

    path: str
    kind: Optional[str] = None


@dataclass(frozen=True)
class ChildTable:
    parts: tuple[Part, ...]
    description: str
    # for a list of plain values: the name of its column
    value_column: Optional[str] = None
    # columns (name, logical type) while none of the parts exists in the contract
    declared: tuple[tuple[str, str], ...] = ()


CHILD_TABLES: dict[str, ChildTable] = {
    "conditions": ChildTable(
        (Part("conditions"),), "The conditions studied, as the source prints them.", value_column="name"),
    "criteria": ChildTable(
        (Part("eligibility.inclusion", "inclusion"), Part("eligibility.exclusion", "exclusion")),
        "Eligibility criteria, one row per item: `kind` inclusion or exclusion, `position` within its kind.",
        value_column="criterion"),
    "outcomes": ChildTable(
        (Part("primary_outcomes", "primary"), Part("secondary_outcomes", "secondary"),
         Part("other_outcomes", "other")),
        "Outcome measures: `kind` primary, secondary or other, `position` within its kind.",
        declared=(("measure", "VARCHAR"), ("time_frame", "VARCHAR"), ("description", "VARCHAR"))),
    "arms": ChildTable(
        (Part("arms"), Part("arm_groups")),
        "Arms (arm groups) of the study.",
        declared=(("label", "VARCHAR"), ("type", "VARCHAR"), ("description", "VARCHAR"),
                  ("intervention_names", "VARCHAR[]"))),
    "contacts": ChildTable(
        (Part("central_contacts", "central"), Part("overall_officials", "official")),
        "The study's central contacts (`kind` central) and officials (`kind` official); a site's own "
        "contacts are in `locations.contacts`.",
        declared=(("name", "VARCHAR"), ("role", "VARCHAR"), ("affiliation", "VARCHAR"), ("phone", "VARCHAR"),
                  ("phone_ext", "VARCHAR"), ("email", "VARCHAR"))),
}

# Columns of a nested object are prefixed with the field's name, except these.
PREFIXES: dict[str, str] = {"eligibility": ""}

# Tables built from the contract's own models but not from a Trial field of the
# same name (their SQL is in harvester.export.sql); listed here so the trial's
# walk leaves those fields to them.
SPECIAL_FIELDS = ("conflicts",)

# Publication order; tables not named here follow, in the contract's order.
ORDER = ("trials", "locations", "interventions", "conditions", "identifiers", "arms", "outcomes", "criteria",
         "contacts", "collaborators", "condition_mesh", "condition_mesh_ancestors", "intervention_mesh",
         "intervention_mesh_ancestors", "references", "notes", "sources", "conflicts", "field_provenance", "unlinked",
         "changes")

# ---------------------------------------------------------------------------- logical types


@dataclass(frozen=True)
class LType:
    kind: str  # VARCHAR BIGINT DOUBLE BOOLEAN TIMESTAMPTZ DATE JSON LIST STRUCT
    item: Optional["LType"] = None
    fields: tuple[tuple[str, "LType"], ...] = ()

    @property
    def is_list(self) -> bool:
        return self.kind == "LIST"

    @property
    def is_struct(self) -> bool:
        return self.kind == "STRUCT"

    def duckdb(self) -> str:
        if self.kind == "LIST":
            return self.item.duckdb() + "[]"
        if self.kind == "STRUCT":
            return "STRUCT(" + ", ".join(f"{qi(n)} {t.duckdb()}" for n, t in self.fields) + ")"
        return self.kind


def parse_ltype(text: str) -> LType:
    """A declared scalar or list-of-scalar type, e.g. "VARCHAR" or "VARCHAR[]"."""
    if text.endswith("[]"):
        return LType("LIST", parse_ltype(text[:-2]))
    return LType(text)


SCALARS = {str: "VARCHAR", int: "BIGINT", float: "DOUBLE", bool: "BOOLEAN", datetime: "TIMESTAMPTZ",
           date: "DATE"}


def _strip_optional(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
        raise TypeError(f"cannot export a union of {args}")
    return annotation


def is_sourced(annotation: Any) -> bool:
    return is_model(annotation) and issubclass(annotation, Sourced) and annotation is not Sourced


def ltype(annotation: Any) -> LType:
    """The logical type of a model field's annotation."""
    annotation = _strip_optional(annotation)
    origin = typing.get_origin(annotation)
    if origin is Literal:
        values = typing.get_args(annotation)
        kinds = {SCALARS[type(v)] for v in values}
        if len(kinds) != 1:
            raise TypeError(f"mixed literal {annotation}")
        return LType(kinds.pop())
    if origin in (list, tuple, set, frozenset):
        (item,) = typing.get_args(annotation)[:1]
        return LType("LIST", ltype(item))
    if origin is dict or annotation is Any or annotation is dict:
        return LType("JSON")
    if is_model(annotation):
        return LType("STRUCT", fields=tuple((key, ltype(f.annotation)) for key, f in model_keys(annotation)))
    if annotation in SCALARS:
        return LType(SCALARS[annotation])
    raise TypeError(f"no export type for {annotation!r}")


def model_keys(model: type) -> list[tuple[str, Any]]:
    """(JSON key, FieldInfo) of a model's serialized fields, in order."""
    return [(f.serialization_alias or f.alias or name, f) for name, f in model.model_fields.items()
            if not f.exclude]


def qi(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


# ---------------------------------------------------------------------------- tables


@dataclass
class Column:
    name: str
    type: LType
    expr: str  # DuckDB expression over the table's FROM clause
    description: str = ""


@dataclass
class Table:
    name: str
    description: str
    columns: list[Column] = field(default_factory=list)
    # DuckDB SELECT producing the rows from the staged canonical records (`t`)
    select: str = ""
    key: tuple[str, ...] = ("nct_id",)
    filled_from: tuple[str, ...] = ()  # contract fields the rows come from
    staged: str = "chunk"  # the staged lines its SELECT reads: chunk, unlinked_chunk, changes_chunk


def flatten(t: LType, expr: str, prefix: str) -> list[Column]:
    """Columns of a value: a struct's fields prefixed, anything else one column.
    A list of objects inside a row is kept whole, as JSON."""
    if t.is_struct:
        cols: list[Column] = []
        for name, sub in t.fields:
            cols += flatten(sub, f"{expr}.{qi(name)}", prefix if repeats(prefix, name) else f"{prefix}{name}_")
        return cols
    name = prefix[:-1]
    if t.is_list and (t.item.is_struct or t.item.is_list):
        return [Column(name, LType("JSON"), f"to_json({expr})")]
    return [Column(name, t, expr)]


def repeats(prefix: str, name: str) -> bool:
    """Whether a sub-field's name only repeats the end of its prefix
    (`start_date.date` is `start_date`, its `type` `start_date_type`)."""
    stem = prefix[:-1]
    return bool(stem) and (stem == name or stem.endswith("_" + name))


def _trial_fields(model: type, path: str = "") -> list[tuple[str, Any]]:
    """(dotted path, annotation) of Trial's fields, models of Sourced fields
    (eligibility) opened up."""
    out = []
    for key, f in model_keys(model):
        ann = _strip_optional(f.annotation)
        p = f"{path}{key}"
        if is_model(ann) and not is_sourced(ann) and all(is_sourced(_strip_optional(g.annotation))
                                                        for _, g in model_keys(ann)):
            out += _trial_fields(ann, p + ".")
        else:
            out.append((p, f.annotation))
    return out


def _path_expr(path: str, alias: str = "t") -> str:
    return alias + "".join("." + qi(p) for p in path.split("."))


def sourced_paths(model: type = Trial) -> list[str]:
    """Dotted paths of every Sourced field (their provenance rows)."""
    return [p for p, ann in _trial_fields(model) if is_sourced(_strip_optional(ann))]


def _value_type(ann: Any) -> tuple[LType, bool]:
    """(type of the plain value, whether it is Sourced)."""
    ann = _strip_optional(ann)
    if is_sourced(ann):
        return ltype(ann.model_fields["value"].annotation), True
    return ltype(ann), False


def _child_select(parts: list[tuple[Part, str]], item_cols: list[Column], kinded: bool) -> str:
    selects = []
    for part, list_expr in parts:
        kind = f"'{part.kind}' AS kind, " if kinded else ""
        inner = (f"SELECT t.nct_id, generate_subscripts({list_expr}, 1) AS position, "
                 f"unnest({list_expr}) AS item FROM chunk t")
        cols = ", ".join(f"{c.expr} AS {qi(c.name)}" for c in item_cols)
        selects.append(f"SELECT nct_id, {kind}position, {cols} FROM ({inner})")
    order = "nct_id, kind, position" if kinded else "nct_id, position"
    if kinded:  # kinds in the declared order, not alphabetical
        whens = " ".join(f"WHEN '{p.kind}' THEN {i}" for i, (p, _) in enumerate(parts))
        order = f"nct_id, CASE kind {whens} END, position"
    return " UNION ALL ".join(selects) + f" ORDER BY {order}"


def _item_columns(item: LType, value_column: Optional[str]) -> list[Column]:
    if item.is_struct:
        return flatten(item, "item", "")
    return [Column(value_column or "value", item, "item")]


def build_tables(model: type = Trial) -> dict[str, Table]:
    """Every export table of the canonical trial, in publication order."""
    from harvester.export import sql  # the tables not walked from Trial's fields

    fields = dict(_trial_fields(model))
    claimed = {p.path: name for name, ct in CHILD_TABLES.items() for p in ct.parts}
    trials = Table("trials", "One row per NCT ID: every reconciled field's chosen value "
                   "(where it came from: field_provenance).")
    children: dict[str, Table] = {}
    pending: dict[str, list[tuple[Part, str]]] = {}
    item_types: dict[str, LType] = {}

    for path, ann in fields.items():
        top = path.split(".")[0]
        if top in SPECIAL_FIELDS:
            continue
        if path == "nct_id":
            trials.columns.append(Column("nct_id", LType("VARCHAR"), "t.nct_id", "the NCT ID"))
            continue
        vt, sourced = _value_type(ann)
        expr = _path_expr(path) + ('."value"' if sourced else "")
        if path in claimed:
            name = claimed[path]
            pending.setdefault(name, []).append((next(p for p in CHILD_TABLES[name].parts if p.path == path),
                                                 expr))
            if not vt.is_list:
                raise TypeError(f"{path} is declared a child table but is not a list")
            prev = item_types.setdefault(name, vt.item)
            if prev != vt.item:
                raise TypeError(f"{name}: parts of different types ({prev} / {vt.item})")
            continue
        if vt.is_list and vt.item.is_struct:
            pending.setdefault(path, []).append((Part(path), expr))
            item_types[path] = vt.item
            continue
        leaf = path.split(".")[-1]
        prefix = PREFIXES.get(path, f"{leaf}_")
        if "." in path:
            prefix = PREFIXES.get(path.split(".")[0], path.split(".")[0] + "_") + prefix
        trials.columns += flatten(vt, expr, prefix)
    trials.select = ("SELECT " + ", ".join(f"{c.expr} AS {qi(c.name)}" for c in trials.columns)
                     + " FROM chunk t ORDER BY t.nct_id")
    trials.filled_from = tuple(p for p in fields if p.split(".")[0] not in SPECIAL_FIELDS)

    names = list(pending) + [n for n in CHILD_TABLES if n not in pending]
    for name in names:
        declared = CHILD_TABLES.get(name)
        kinded = declared is not None and any(p.kind for p in declared.parts)
        head = [Column("nct_id", LType("VARCHAR"), "nct_id")]
        if kinded:
            head.append(Column("kind", LType("VARCHAR"), "kind"))
        head.append(Column("position", LType("BIGINT"), "position", "1-based order in the record"))
        if name in pending:
            cols = _item_columns(item_types[name], declared.value_column if declared else None)
            select = _child_select(pending[name], cols, kinded)
            filled = tuple(p.path for p, _ in pending[name])
        else:  # the contract has no field for it yet: the declared columns, no rows
            cols = [Column(n, parse_ltype(t), "NULL") for n, t in declared.declared]
            select = ""
            filled = ()
        desc = declared.description if declared else f"One row per item of the trial's `{name}`."
        table = Table(name, desc, [Column(c.name, c.type, c.name) for c in head] + cols, select,
                      key=("nct_id", "kind", "position") if kinded else ("nct_id", "position"),
                      filled_from=filled)
        children[name] = table
    tables = {"trials": trials, **children, **sql.special_tables(model)}
    rank = {name: i for i, name in enumerate(ORDER)}
    return dict(sorted(tables.items(), key=lambda kv: rank.get(kv[0], len(ORDER))))
