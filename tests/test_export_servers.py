"""The export against real servers on 127.0.0.1: the same tables refreshed in
a PostgreSQL store's own schema (compared with the SQLite export of the same
store), and Datasette serving the SQLite export with its metadata (a facet and
a conflict read through its JSON API).

The conflict store holds two real CT.gov records, each in two real versions
(reference `ctgov/real/versions/NCT04637503/2020-11-19.json` and
`2026-06-22.json`, `NCT05005403/2025-10-28.json` and `2026-05-13.json`):
the newer version as the `ctgov` page, the older one as the page of a site
`mirror` that still shows it (a test site name, as a republishing site lags
the registry). Every value below is copied from those bodies."""
from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest
from _servers import postgres_server  # noqa: F401  (fixture)

from _project import scrapy
from harvester.store import Store, open_store
from items import SourceRecord
from pipelines.validate import content_hash
from test_export import SCHEMA, columns, iso, normalize

T_OLD = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)
T_NEW = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
CTGOV = "https://clinicaltrials.gov/api/v2/studies/"
MIRROR = "https://mirror.example/study/"

NEURO_TITLE = "4SCAR-T Therapy Targeting GD2, PSMA and CD276 for Treating Neuroblastoma"
NEURO_SPONSOR = {"name": "Shenzhen Geno-Immune Medical Institute", "class": "OTHER"}
ABBV_OLD_TITLE = ("Study to Assess Adverse Events and Pharmacokinetics in Adult Participants With Non-Small Cell "
                  "Lung Cancer (NSCLC), Head and Neck Squamous Cell Carcinoma (HNSCC) and Other Solid Tumors, "
                  "Receiving Intravenous (IV) Infusion of Azirkitug (ABBV-514) Alone or in Combination With "
                  "Budigalimab or Bevacizumab")
ABBV_NEW_TITLE = ("Study to Assess Adverse Events and Pharmacokinetics in Adult Participants With Non-Small Cell "
                  "Lung Cancer, Head and Neck Squamous Cell Carcinoma and Other Solid Tumors, Receiving "
                  "Intravenous Infusion of Azirkitug Alone or in Combination(s) With Budigalimab, Bevacizumab, "
                  "or Telisotuzumab Adizutecan")


def rec(site: str, nct: str, fetched: datetime, **fields) -> SourceRecord:
    url = (CTGOV if site == "ctgov" else MIRROR) + nct
    r = SourceRecord(site=site, url=url, fetched_at=fetched, nct_id=nct, **fields)
    r.content_hash = content_hash(r)
    return r


def conflict_records() -> list[SourceRecord]:
    neuro = dict(brief_title=NEURO_TITLE, phases=["PHASE1", "PHASE2"], study_type="INTERVENTIONAL",
                 enrollment={"count": 100, "type": "ESTIMATED"}, lead_sponsor=NEURO_SPONSOR,
                 conditions=["Neuroblastoma"])
    abbv = dict(phases=["PHASE1"], study_type="INTERVENTIONAL", lead_sponsor={"name": "AbbVie", "class": "INDUSTRY"},
                overall_status="RECRUITING", start_date="2021-11-01")
    return [
        rec("ctgov", "NCT04637503", T_NEW, **neuro, overall_status="RECRUITING", start_date="2026-06-01",
            primary_completion_date="2029-12-31", completion_date="2030-12-31", last_update_posted="2026-06-22",
            locations=[{"facility": "Shenzhen Geno-Immune Medical Institute", "city": "Shenzhen",
                        "country": "China", "status": "RECRUITING"}]),
        rec("mirror", "NCT04637503", T_OLD, **neuro, overall_status="UNKNOWN", start_date="2020-11-18",
            primary_completion_date="2020-11-19", completion_date="2023-12-31", last_update_posted="2020-11-19",
            collaborators=[{"name": "Shenzhen Children's Hospital", "class": "OTHER_GOV"}],
            locations=[{"facility": "Guangdong Zhujiang Hospital of Southern Medical University",
                        "city": "Guangzhou", "country": "China", "status": "RECRUITING"},
                       {"facility": "Shenzhen Children's Hospital", "city": "Shenzhen", "country": "China",
                        "status": "RECRUITING"},
                       {"facility": "Shenzhen Geno-Immune Medical Institute", "city": "Shenzhen",
                        "country": "China", "status": "RECRUITING"},
                       {"facility": "Shandong Cancer Hospital", "city": "Jinan", "country": "China",
                        "status": "RECRUITING"}]),
        rec("ctgov", "NCT05005403", T_NEW, **abbv, brief_title=ABBV_NEW_TITLE,
            enrollment={"count": 694, "type": "ESTIMATED"}, primary_completion_date="2027-07",
            completion_date="2027-07", last_update_posted="2026-05-13"),
        rec("mirror", "NCT05005403", T_OLD, **abbv, brief_title=ABBV_OLD_TITLE,
            enrollment={"count": 512, "type": "ESTIMATED"}, primary_completion_date="2026-07",
            completion_date="2027-06", last_update_posted="2025-10-28"),
    ]


def fill(store, records) -> None:
    for r in records:
        assert store.upsert(r) == "inserted"


def rows_by_table(get_rows) -> dict[str, list[str]]:
    """Each table's normalized rows, as sorted JSON strings (PostgreSQL keeps no
    insertion order)."""
    return {name: sorted(json.dumps(r, sort_keys=True) for r in get_rows(name)) for name in SCHEMA}


def sqlite_rows(path: Path):
    def get(name):
        db = sqlite3.connect(path)
        db.row_factory = sqlite3.Row
        try:
            return [normalize(name, dict(r), textual=True) for r in db.execute(f'SELECT * FROM "{name}"')]
        finally:
            db.close()
    return get


def pg_rows(url: str, schema: str = "export"):
    def get(name):
        with psycopg.connect(url) as conn:
            cur = conn.execute(f'SELECT * FROM "{schema}"."{name}"')
            names = [d.name for d in cur.description]
            return [normalize(name, dict(zip(names, r)), textual=False) for r in cur.fetchall()]
    return get


# --------------------------------------------------------------------------- PostgreSQL

@pytest.fixture
def pg_url(postgres_server):  # noqa: F811
    return postgres_server.new_database("export")


def test_postgres_store_gets_the_same_tables_as_sqlite_in_its_own_schema(tmp_path, pg_url):
    # the offline demo, crawled into SQLite, then the same pages into the PostgreSQL store
    run = scrapy(["harvest", "--offline", "-O", "canonical.jsonl", "-s", "HARVEST_BASELINE_DIR="], tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    with Store(tmp_path / "harvest.sqlite3") as src, open_store(pg_url) as dst:
        for s in src.iter_sources():
            dst.upsert(s.record, src.get_body(s.record.site, s.record.url))
        pages = dst.count()
    run = scrapy(["export", "--format", "sqlite", "-O", "pg.db"], tmp_path, extra_env={"HARVEST_DB": pg_url})
    assert run.returncode == 0, run.stderr[-3000:]
    assert "schema export of the PostgreSQL store" in run.stderr
    run = scrapy(["export", "--format", "sqlite", "-O", "lite.db"], tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]

    pg, lite, lite_of_pg = rows_by_table(pg_rows(pg_url)), rows_by_table(sqlite_rows(tmp_path / "lite.db")), \
        rows_by_table(sqlite_rows(tmp_path / "pg.db"))
    assert len(pg["trials"]) == 7 and len(pg["unlinked"]) == 2
    for name in SCHEMA:
        if name == "changes":
            continue  # below: the two stores' histories differ
        assert pg[name] == lite[name], name
        assert lite_of_pg[name] == lite[name], name
    # the PostgreSQL store got only each page's current version, later: its feed (from the
    # beginning) is every trial appearing, where SQLite's also has the demo study's two versions
    pg_changes = [json.loads(r) for r in pg["changes"]]
    assert sorted(r["nct_id"] for r in pg_changes) == sorted(json.loads(r)["nct_id"] for r in pg["trials"])
    assert {r["change"] for r in pg_changes} == {"trial_appeared"}
    assert len(lite["changes"]) > len(pg["changes"]) and lite_of_pg["changes"] == pg["changes"]

    with psycopg.connect(pg_url) as conn:
        for name in SCHEMA:
            got = conn.execute(
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
                "WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                (f'export."{name}"',)).fetchall()
            want = [(c, SCHEMA[name]["properties"][c]["x-postgresql-type"].replace(
                "timestamptz", "timestamp with time zone")) for c in columns(name)]
            assert got == want, name
        # the store's own tables are where they were
        assert conn.execute("SELECT count(*) FROM public.sources").fetchone()[0] == pages


def test_postgres_tables_are_refreshed_by_the_same_command(tmp_path, pg_url):
    with open_store(pg_url) as store:
        fill(store, conflict_records()[:2])
    run = scrapy(["export"], tmp_path, extra_env={"HARVEST_DB": pg_url})  # no -O: the schema only
    assert run.returncode == 0, run.stderr[-3000:]
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT nct_id, overall_status FROM export.trials").fetchall() == [
            ("NCT04637503", "RECRUITING")]
    with open_store(pg_url) as store:
        fill(store, conflict_records()[2:])
    run = scrapy(["export", "--format", "parquet", "-O", "tables"], tmp_path, extra_env={"HARVEST_DB": pg_url})
    assert run.returncode == 0, run.stderr[-3000:]
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT nct_id, enrollment_count FROM export.trials ORDER BY nct_id").fetchall() == [
            ("NCT04637503", 100), ("NCT05005403", 694)]
        # the scratch schema the new tables were built in is gone
        assert conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'export__new'").fetchone()[0] == 0


# --------------------------------------------------------------------------- Datasette

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str) -> dict | list:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


@pytest.fixture
def datasette(tmp_path):
    with Store(tmp_path / "harvest.sqlite3") as store:
        fill(store, conflict_records())
    run = scrapy(["export", "--format", "sqlite", "-O", "trials.db"], tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "metadata.json").exists()
    port = _free_port()
    log = open(tmp_path / "datasette.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "datasette", "serve", str(tmp_path / "trials.db"),
                             "-m", str(tmp_path / "metadata.json"), "-h", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            get_json(base + "/-/versions.json")
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("datasette did not start:\n" + (tmp_path / "datasette.log").read_text()[-3000:])
            time.sleep(0.2)
    try:
        yield base + "/trials"
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def facet(data: dict, name: str) -> dict:
    return {r["value"]: r["count"] for r in data["facet_results"][name]["results"]}


def test_datasette_serves_facets_and_conflicts(datasette):
    trials = get_json(datasette + "/trials.json")
    assert facet(trials, "overall_status") == {"RECRUITING": 2}
    assert facet(trials, "study_type") == {"INTERVENTIONAL": 2}
    assert facet(trials, "lead_sponsor_class") == {"OTHER": 1, "INDUSTRY": 1}
    assert facet(trials, "phases") == {"PHASE1": 2, "PHASE2": 1}
    assert facet(get_json(datasette + "/locations.json"), "country") == {"China": 1}

    rows = get_json(datasette + "/trial_conflicts.json?_shape=array&nct_id=NCT04637503&field=overall_status")
    assert [(r["site"], json.loads(r["value"]), r["chosen"], r["brief_title"]) for r in rows] == [
        ("ctgov", "RECRUITING", 1, NEURO_TITLE), ("mirror", "UNKNOWN", 0, NEURO_TITLE)]
    rows = get_json(datasette + "/conflicts.json?_shape=array&nct_id=NCT05005403&field=enrollment")
    assert [(r["site"], json.loads(r["value"])) for r in rows] == [
        ("ctgov", {"count": 694, "type": "ESTIMATED"}), ("mirror", {"count": 512, "type": "ESTIMATED"})]
    assert rows[1]["fetched_at"] == iso(T_OLD)

    views = {v["name"] for v in get_json(datasette + ".json")["views"]}
    assert {"trial_conflicts", "recent_changes"} <= views
    meta = get_json(datasette.rsplit("/", 1)[0] + "/-/metadata.json")["databases"]["trials"]["tables"]
    assert meta["trial_conflicts"]["title"] == "Conflicts"
    assert meta["trials"]["facets"][:2] == ["overall_status", {"array": "phases"}]


def test_export_to_an_unreachable_postgresql_fails_clearly_without_its_password(tmp_path):
    url = f"postgresql://harvester:s3cret-pw@127.0.0.1:{_free_port()}/nowhere"
    run = scrapy(["export", "--format", "parquet", "-O", "tables"], tmp_path, extra_env={"HARVEST_DB": url})
    assert run.returncode != 0
    assert "s3cret-pw" not in run.stderr + run.stdout
    assert "127.0.0.1" in run.stderr  # the error names where it tried
    assert not (tmp_path / "tables").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tables.")]
