"""`scrapy export`: the offline demo's canonical records, table by table, in
every format; column types from the contract whatever the data; the
published table schema in sync; the README's DuckDB / pandas / polars
recipes.

The expected rows are built here from `canonical.jsonl` and
`unlinked.jsonl` by the layout's documented rules (a Sourced field's value in
`trials`, nested objects as prefixed columns, lists of objects as child
tables keyed by nct_id and position, the declared tables of
`CHILD_TABLES`), walking the JSON, not the models: every value of every
record must land in exactly one cell, and each exported table must hold those
rows and no others."""
from __future__ import annotations

import csv
import json
import re
import sqlite3
import subprocess
import sys
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from _project import REPO, scrapy
from harvester.atomic import umask as _umask
from harvester.export.layout import CHILD_TABLES, PREFIXES
from harvester.export.schema import RENDER
from harvester.store import Store
from items import SourceRecord
from items.jsonschema import SCHEMA_DIR
from pipelines.validate import content_hash

SCHEMA = json.loads((SCHEMA_DIR / "tables.schema.json").read_text(encoding="utf-8"))["$defs"]
FORMATS = ("parquet", "duckdb", "sqlite", "csv")


def columns(table: str) -> list[str]:
    return list(SCHEMA[table]["properties"])


def duck_type(table: str, column: str) -> str:
    return SCHEMA[table]["properties"][column]["x-duckdb-type"]


# --------------------------------------------------------------------------- expected rows

KINDED = {p.path: (name, p.kind) for name, ct in CHILD_TABLES.items() for p in ct.parts}
VALUE_COLUMN = {name: ct.value_column for name, ct in CHILD_TABLES.items()}


SOURCED_KEYS = {"value", "site", "url", "fetched_at"}


def column_prefix(prefix: str, key: str) -> str:
    """The documented naming: `enrollment.count` -> enrollment_count, but a key
    repeating the end of its prefix is not repeated (`start_date.date` ->
    start_date)."""
    stem = prefix[:-1]
    return prefix if stem and (stem == key or stem.endswith("_" + key)) else f"{prefix}{key}_"


class Expected:
    def __init__(self) -> None:
        self.tables: dict[str, list[dict]] = defaultdict(list)

    def flat(self, table: str, obj: dict, prefix: str = "") -> dict:
        """An object's values by column: a value whose column exists keeps its
        whole value (scalar, list, JSON); an object without one flattens."""
        out = {}
        props = SCHEMA[table]["properties"]
        for key, value in obj.items():
            sub = column_prefix(prefix, key)
            name = sub[:-1]
            if name in props and not (isinstance(value, dict) and duck_type(table, name) != "JSON"):
                out[name] = value
            elif isinstance(value, dict):
                out.update(self.flat(table, value, sub))
            elif value is None:
                continue  # an absent object: its columns stay null
            else:
                raise AssertionError(f"{table}: no column for {name} = {value!r}")
        return out

    def add(self, table: str, row: dict) -> None:
        assert set(row) <= set(columns(table)), (table, set(row) - set(columns(table)))
        self.tables[table].append({c: row.get(c) for c in columns(table)})

    def sourced(self, nct: str, path: str, sv: dict | None, row: dict, name: str) -> None:
        if sv is None:
            return
        assert set(sv) == SOURCED_KEYS, (path, sv)
        self.add("field_provenance", {"nct_id": nct, "field": path, "site": sv["site"], "url": sv["url"],
                                      "fetched_at": sv["fetched_at"]})
        value = sv["value"]
        if path in KINDED:
            table, kind = KINDED[path]
            for i, item in enumerate(value, 1):
                r = {"nct_id": nct, "position": i, **({"kind": kind} if kind else {})}
                r.update(self.flat(table, item) if isinstance(item, dict) else {VALUE_COLUMN[table]: item})
                self.add(table, r)
        elif isinstance(value, list) and path in SCHEMA:  # a list of objects: its own table
            for i, item in enumerate(value, 1):
                self.add(path, {"nct_id": nct, "position": i, **self.flat(path, item)})
        else:
            row.update(self.flat("trials", {name: value}))

    def trial(self, t: dict) -> None:
        nct = t["nct_id"]
        row = {"nct_id": nct}
        for key, value in t.items():
            if key == "nct_id":
                continue
            if key in ("identifiers", "notes", "sources"):
                for i, item in enumerate(value, 1):
                    self.add(key, {"nct_id": nct, "position": i, **self.flat(key, item)})
            elif key == "conflicts":
                for c in value:
                    for i, v in enumerate(c["values"], 1):
                        self.add("conflicts", {"nct_id": nct, "field": c["field"], "chosen_site": c["chosen_site"],
                                               "position": i, **v})
            elif isinstance(value, dict) and set(value) != SOURCED_KEYS:
                # a model of Sourced fields (eligibility): its fields open up, prefixed
                for sub, sv in value.items():
                    self.sourced(nct, f"{key}.{sub}", sv, row, PREFIXES.get(key, key + "_") + sub)
            else:
                self.sourced(nct, key, value, row, key)
        self.add("trials", row)


def expected(canonical: Path, unlinked: Path, changes: Path | None = None) -> dict[str, list[dict]]:
    e = Expected()
    for line in canonical.read_text(encoding="utf-8").splitlines():
        e.trial(json.loads(line))
    pages = [json.loads(x) for x in unlinked.read_text(encoding="utf-8").splitlines()]
    for page in sorted(pages, key=lambda p: (p["site"], p["url"])):
        e.add("unlinked", e.flat("unlinked", page))
    if changes is not None:  # the change feed's lines, in its order
        for line in changes.read_text(encoding="utf-8").splitlines():
            c = json.loads(line)
            # a timestamp column reads back in the form canonical.jsonl writes times (...Z)
            when = c["observed_at"]
            e.add("changes", {**c, "observed_at": iso(datetime.fromisoformat(when)) if when else None})
    return {name: e.tables.get(name, []) for name in SCHEMA}


# --------------------------------------------------------------------------- reading exports

def iso(value):
    if isinstance(value, datetime):
        value = value.astimezone(timezone.utc)
        text = value.strftime("%Y-%m-%dT%H:%M:%S")
        return text + (f".{value.microsecond:06d}" if value.microsecond else "") + "Z"
    return value


def normalize(table: str, row: dict, textual: bool) -> dict:
    """Exported values as canonical.jsonl writes them."""
    out = {}
    for col, value in row.items():
        t = duck_type(table, col)
        if textual and value == "":
            value = None  # CSV
        if value is None:
            out[col] = None
        elif t == "TIMESTAMPTZ":
            out[col] = iso(value)
        elif t == "JSON" or (t.endswith("[]") and isinstance(value, str)):
            out[col] = json.loads(value) if isinstance(value, str) else value
        elif t == "BOOLEAN":
            out[col] = value in (True, 1, "true") if textual or isinstance(value, int) else value
        elif t == "BIGINT" and textual:
            out[col] = int(value)
        elif t == "DOUBLE" and textual:
            out[col] = float(value)
        else:
            out[col] = value
    return out


def read_export(fmt: str, path: Path) -> dict[str, list[dict]]:
    tables = {}
    for name in SCHEMA:
        if fmt == "parquet":
            raw = pq.read_table(path / f"{name}.parquet").to_pylist()
        elif fmt == "csv":
            with open(path / f"{name}.csv", newline="", encoding="utf-8") as fh:
                raw = list(csv.DictReader(fh))
        elif fmt == "sqlite":
            db = sqlite3.connect(path)
            db.row_factory = sqlite3.Row
            raw = [dict(r) for r in db.execute(f'SELECT * FROM "{name}"')]
            db.close()
        else:
            with duckdb.connect(str(path), read_only=True) as db:
                cur = db.execute(f'SELECT * FROM "{name}"')
                names = [d[0] for d in cur.description]
                raw = [dict(zip(names, r)) for r in cur.fetchall()]
        tables[name] = [normalize(name, r, fmt in ("csv", "sqlite")) for r in raw]
    return tables


# --------------------------------------------------------------------------- the offline demo

@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("demo")
    run = scrapy(["harvest", "--offline", "-O", "canonical.jsonl", "-s", "HARVEST_BASELINE_DIR="], tmp)
    assert run.returncode == 0, run.stderr[-3000:]
    for fmt in FORMATS:
        run = scrapy(["export", "--format", fmt, "-O", f"out/tables.{fmt}"], tmp)
        assert run.returncode == 0, run.stderr[-3000:]
    return tmp


def test_demo_has_what_the_comparison_needs(demo):
    # the demo's records, checked by hand against the cassette sources: seven trials (with
    # NCT04637503 in two real versions), PALLAS (NCT02513394) with its hundreds of sites, two
    # pages that could not be linked
    want = expected(demo / "canonical.jsonl", demo / "unlinked.jsonl")
    assert len(want["trials"]) == 7
    assert len(want["unlinked"]) == 2
    pallas = [r for r in want["locations"] if r["nct_id"] == "NCT02513394"]
    assert len(pallas) > 400
    assert {r["kind"] for r in want["criteria"]} == {"inclusion", "exclusion"}
    # NCT02186860's first exclusion criterion, as its CT.gov record prints it
    assert {"nct_id": "NCT02186860", "kind": "exclusion", "position": 1,
            "criterion": "Pregnant or lactating women"} in want["criteria"]
    # child tables get rows from an HTML site's fields where reconciliation picks them:
    # NCT02186860's central contacts are printed only by its Veeva page (seed 003)
    assert [(r["name"], r["role"]) for r in want["contacts"] if r["nct_id"] == "NCT02186860"] == [
        ("Yao Sun, M.D., Ph.D.", "CONTACT"), ("Liangding Hu, M.D.", "CONTACT")]
    canonical = {t["nct_id"]: t for t in map(json.loads, (demo / "canonical.jsonl").read_text().splitlines())}
    assert canonical["NCT02186860"]["central_contacts"]["site"] == "veeva"


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_table_holds_the_canonical_records(demo, fmt):
    # the changes table: the feed the harvest wrote (from the beginning; nothing happened since)
    want = expected(demo / "canonical.jsonl", demo / "unlinked.jsonl", demo / "changes.jsonl")
    got = read_export(fmt, demo / "out" / f"tables.{fmt}")
    assert set(got) == set(want)
    for name in want:
        assert len(got[name]) == len(want[name]), name
        assert got[name] == want[name], name


def test_trials_columns_are_plain_values(demo):
    with duckdb.connect() as db:
        row = db.execute("SELECT nct_id, overall_status, phases, enrollment_count, enrollment_type, "
                         "lead_sponsor_name, lead_sponsor_class, min_age_years, healthy_volunteers FROM "
                         f"'{demo}/out/tables.parquet/trials.parquet' WHERE nct_id = 'NCT02186860'").fetchone()
    # NCT02186860's CT.gov record (cassettes/src/ctgov/assembled_NCT02186860.json)
    assert row == ("NCT02186860", "UNKNOWN", ["PHASE1"], 5, "ESTIMATED",
                   "Affiliated Hospital to Academy of Military Medical Sciences", "OTHER", 18.0, False)


def test_export_replaces_the_output_whole(demo):
    target = demo / "out" / "tables.parquet"
    stray = target / "stale.parquet"
    stray.write_bytes(b"left from an older export")
    run = scrapy(["export", "--format", "parquet", "-O", "out/tables.parquet"], demo)
    assert run.returncode == 0, run.stderr[-3000:]
    assert not stray.exists()
    assert sorted(p.stem for p in target.iterdir()) == sorted(SCHEMA)
    assert not [p for p in (demo / "out").iterdir() if p.name.startswith(".")]


def test_export_usage_errors(tmp_path):
    run = scrapy(["export", "--format", "parquet", "-O", "x"], tmp_path)
    assert run.returncode != 0 and "no store at" in run.stderr
    run = scrapy(["export", "-O", "x"], tmp_path)
    assert run.returncode == 2 and "--format is required" in run.stderr
    run = scrapy(["export", "--format", "xlsx", "-O", "x"], tmp_path)
    assert run.returncode == 2


# --------------------------------------------------------------------------- types from the contract

def test_published_table_schema_is_in_sync():
    for name, render in RENDER.items():
        assert (SCHEMA_DIR / name).read_text(encoding="utf-8") == render(), \
            f"run `python -m harvester.export.schema` to refresh {name}"


def sparse_store(tmp: Path) -> None:
    """One page with a title and nothing else: every other field empty throughout."""
    tmp.mkdir(parents=True, exist_ok=True)
    r = SourceRecord(site="ctgov", url="https://clinicaltrials.gov/api/v2/studies/NCT02186860",
                     fetched_at=datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc), nct_id="NCT02186860",
                     brief_title="Chimeric Antigen Receptor (CAR)-Modified T Cell Therapy in Treating Patients "
                                 "With Acute Lymphoblastic Leukemia")
    r.content_hash = content_hash(r)
    with Store(tmp / "harvest.sqlite3") as store:
        store.upsert(r)


def test_column_types_do_not_depend_on_the_data(demo, tmp_path):
    sparse_store(tmp_path)
    for fmt in ("parquet", "sqlite"):
        run = scrapy(["export", "--format", fmt, "-O", f"tables.{fmt}"], tmp_path)
        assert run.returncode == 0, run.stderr[-3000:]
    with duckdb.connect() as db:
        for name in SCHEMA:
            types = {}
            for which, base in (("demo", demo / "out"), ("sparse", tmp_path)):
                schema = pq.read_schema(base / "tables.parquet" / f"{name}.parquet")
                types[which] = schema
                described = db.execute(f"DESCRIBE SELECT * FROM '{base}/tables.parquet/{name}.parquet'").fetchall()
                # as DuckDB reads Parquet back: JSON is text there, TIMESTAMPTZ has its long name
                declared = [(c, {"JSON": "VARCHAR", "TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE"}.get(
                    duck_type(name, c), duck_type(name, c))) for c in columns(name)]
                assert [(c[0], c[1]) for c in described] == declared, name
            assert types["demo"].equals(types["sparse"]), name
    # the sparse store's trial: every column but its title empty, with the demo's types
    (row,) = pq.read_table(tmp_path / "tables.parquet" / "trials.parquet").to_pylist()
    assert [k for k, v in row.items() if v is not None] == ["nct_id", "brief_title"]
    for name in SCHEMA:
        decl = {}
        for base in (demo / "out", tmp_path):
            db = sqlite3.connect(base / "tables.sqlite")
            decl[base] = db.execute(f"PRAGMA table_info('{name}')").fetchall()
            db.close()
        assert decl[demo / "out"] == decl[tmp_path], name


# --------------------------------------------------------------------------- README recipes

def readme_recipes() -> dict[str, str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("### Trials with their locations", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    return {("duckdb" if "import duckdb" in b else "polars" if "import polars" in b else "pandas"): b
            for b in blocks}


@pytest.mark.parametrize("lib", ["duckdb", "pandas", "polars"])
def test_readme_recipes_give_trials_with_their_locations(demo, lib, monkeypatch):
    recipes = readme_recipes()
    assert set(recipes) == {"duckdb", "pandas", "polars"}
    want = expected(demo / "canonical.jsonl", demo / "unlinked.jsonl")
    per_trial = defaultdict(int)
    for r in want["locations"]:
        per_trial[r["nct_id"]] += 1
    # a left join: one row per location, and trials without any location once
    n_rows = sum(max(1, per_trial[t["nct_id"]]) for t in want["trials"])
    monkeypatch.chdir(demo / "out")
    (demo / "out" / "tables").unlink(missing_ok=True)
    (demo / "out" / "tables").symlink_to(demo / "out" / "tables.parquet")
    scope: dict = {}
    exec(recipes[lib], scope)
    df = scope["df"]
    n = len(df.fetchall()) if lib == "duckdb" else len(df)
    assert n == n_rows
    assert {"nct_id", "brief_title", "overall_status", "facility", "city", "country"} <= set(df.columns)


def test_as_of_exports_the_trials_as_they_were_then(tmp_path):
    # one CT.gov page in its two real versions (see test_export_servers.conflict_records)
    from test_export_servers import conflict_records

    old, new = conflict_records()[1], conflict_records()[0]
    old = old.model_copy(update={"site": "ctgov", "url": new.url, "collaborators": []})
    old.content_hash = content_hash(old)
    with Store(tmp_path / "harvest.sqlite3") as store:
        assert store.upsert(old) == "inserted"
        between = datetime.now(timezone.utc)
        assert store.upsert(new) == "updated"
    for args in (["--as-of", between.isoformat()], []):
        run = scrapy(["export", "--format", "parquet", "-O", "t", *args], tmp_path)
        assert run.returncode == 0, run.stderr[-3000:]
        (row,) = pq.read_table(tmp_path / "t" / "trials.parquet").to_pylist()
        cities = [r["city"] for r in pq.read_table(tmp_path / "t" / "locations.parquet").to_pylist()]
        if args:  # the 2020-11-19 version
            assert (row["overall_status"], row["start_date"], cities) == (
                "UNKNOWN", "2020-11-18", ["Guangzhou", "Shenzhen", "Shenzhen", "Jinan"])
        else:     # the 2026-06-22 version
            assert (row["overall_status"], row["start_date"], cities) == ("RECRUITING", "2026-06-01", ["Shenzhen"])
    run = scrapy(["export", "--format", "parquet", "-O", "t", "--as-of", "last tuesday"], tmp_path)
    assert run.returncode == 2 and "not an ISO-8601 date or time" in run.stderr


def test_a_killed_exports_scratch_directory_is_removed_by_the_next(demo, tmp_path):
    # what a killed export leaves: its scratch directory, named with its (now gone) PID
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    stale = demo / "out" / f".tables.sqlite.{dead}.abc123.tmp"
    (stale / "out").mkdir(parents=True)
    (stale / "out" / "trials.parquet").write_bytes(b"half written")
    run = scrapy(["export", "--format", "sqlite", "-O", "out/tables.sqlite"], demo)
    assert run.returncode == 0, run.stderr[-3000:]
    assert not stale.exists()
    assert oct((demo / "out" / "tables.sqlite").stat().st_mode & 0o777) == oct(0o666 & ~_umask())
