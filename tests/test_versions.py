"""The versioned store, on SQLite and PostgreSQL alike: every distinct
version of a page kept with first/last seen, unchanged re-crawls adding
nothing, the integrity gate, accepting a quarantined version, the state of
the store at a past time, and the in-place upgrade of stores written by the
release before versions were kept (fixtures in tests/data/)."""
from __future__ import annotations

import shutil
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import orjson
import pytest
from _servers import postgres_server  # noqa: F401  (fixture)

from _project import scrapy
from harvester.integrity import IntegrityGate
from harvester.store import Store, open_store
from harvester.store_pg import PgStore
from items import Eligibility, SourceRecord, Sponsor
from pipelines.validate import content_hash

DATA = Path(__file__).resolve().parent / "data"
T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
URL = "https://ctv.veeva.com/study/a"


def rec(title="A", nct="NCT02186860", fetched=T0, url=URL, site="veeva", **fields):
    r = SourceRecord(site=site, url=url, fetched_at=fetched, nct_id=nct, brief_title=title, **fields)
    r.content_hash = content_hash(r)
    return r


def full(**over):
    fields = dict(title="CAR-T for ALL", overall_status="RECRUITING", lead_sponsor=Sponsor(name="Sponsor X"),
                  conditions=["Leukemia"], eligibility=Eligibility(sex="ALL", min_age_years=18.0))
    fields.update(over)
    return rec(**fields)


class Clock:
    """The store's clock, set by the test: versions get known times."""

    def __init__(self):
        self.now = "2026-11-01T00:00:00.000000+00:00"

    def set(self, day: int, hour: int = 0) -> str:
        self.now = f"2026-11-{day:02d}T{hour:02d}:00:00.000000+00:00"
        return self.now

    def __call__(self) -> str:
        return self.now


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = Store(tmp_path / "h.sqlite3")
    else:
        server = request.getfixturevalue("postgres_server")
        s = PgStore(server.new_database("versions"))
    s.clock = Clock()
    yield s
    s.close()


def test_unchanged_recrawl_adds_no_version_and_moves_last_seen(store):
    store.clock.set(1)
    assert store.upsert(rec(), b"<html>A</html>") == "inserted"
    store.clock.set(2)
    assert store.upsert(rec(fetched=datetime(2026, 11, 2, tzinfo=timezone.utc)), b"<html>A</html>") == "unchanged"
    (v,) = store.versions(site="veeva", url=URL)
    assert v["seq"] == 1 and v["first_seen_at"].startswith("2026-11-01") and v["last_seen_at"].startswith("2026-11-02")
    assert store.touch("veeva", URL)  # a 304 moves it too
    assert store.count("versions") == 1


def test_every_distinct_version_is_kept_in_order(store):
    for day, title in ((1, "A"), (2, "B"), (3, "B"), (4, "A")):
        store.clock.set(day)
        store.upsert(rec(title=title), title.encode())
    versions = store.versions(site="veeva", url=URL, with_records=True)
    # A, then B (seen on days 2 and 3), then A again: a new version, so the history reads in order
    assert [(v["seq"], v["record"].brief_title) for v in versions] == [(1, "A"), (2, "B"), (3, "A")]
    assert [v["current_from"][:10] for v in versions] == ["2026-11-01", "2026-11-02", "2026-11-04"]
    assert versions[1]["last_seen_at"][:10] == "2026-11-03"
    assert store.get("veeva", URL).record.brief_title == "A"
    assert store.get_body("veeva", URL) == b"A" and store.get_body("veeva", URL, seq=2) == b"B"
    assert store.count() == 1


def test_as_of_gives_the_version_current_then(store):
    store.clock.set(1)
    store.upsert(rec(title="A"))
    store.clock.set(3)
    store.upsert(rec(title="B"))
    title_at = lambda t: [s.record.brief_title for s in store.iter_sources_as_of(t)]  # noqa: E731
    assert title_at("2026-10-31") == []              # not yet seen
    assert title_at("2026-11-02") == ["A"]
    assert title_at("2026-11-03T00:00:00Z") == ["B"]  # the instant it was first seen
    assert title_at("2026-11-05") == ["B"]


def test_gone_then_back_is_history_too(store):
    store.clock.set(1)
    store.upsert(rec())
    store.clock.set(3)
    assert store.mark_removed("veeva", URL)
    store.clock.set(4)
    assert store.mark_removed("veeva", URL)  # still gone: the interval stays open from day 3
    store.clock.set(6)
    assert store.upsert(rec()) == "unchanged"  # back with the same content: no new version
    assert store.count("versions") == 1
    (g,) = store.gone_intervals()
    assert g["gone_at"][:10] == "2026-11-03" and g["back_at"][:10] == "2026-11-06"
    state = lambda t: [s.removed_at for s in store.iter_sources_as_of(t)]  # noqa: E731
    assert state("2026-11-02") == [None]
    assert state("2026-11-05") == ["2026-11-03T00:00:00.000000+00:00"]
    assert state("2026-11-07") == [None]
    assert [s.record.url for s in store.iter_sources_as_of("2026-11-05", include_removed=False)] == []


@pytest.mark.parametrize("degraded, reason", [
    (lambda: full(nct=None), "loses its NCT ID (current version: NCT02186860)"),
    (lambda: full(nct="NCT09999999"), "changes its NCT ID (NCT02186860 -> NCT09999999)"),
    (lambda: rec(title="CAR-T for ALL"), "empties core fields that were filled: overall_status, lead_sponsor,"
                                         " conditions, eligibility"),
    (lambda: full(title=" ", conditions=[]), "empties core fields that were filled: brief_title, conditions"),
])
def test_the_gate_quarantines_a_degraded_version_and_the_current_stays(store, degraded, reason):
    store.clock.set(1)
    good = full()
    assert store.upsert(good, b"good") == "inserted"
    store.clock.set(2)
    assert store.upsert(degraded(), b"bad") == "quarantined"
    assert store.get("veeva", URL).record == good  # the current version stays
    assert store.get_body("veeva", URL) == b"good"
    assert store.quarantine_reason("veeva", URL) == reason
    (q,) = store.quarantined()
    assert (q["seq"], q["reason"], q["superseded"]) == (2, reason, False)
    store.clock.set(3)
    assert store.upsert(degraded(), b"bad") == "quarantined"  # seen again: still held, no new version
    assert store.count("versions") == 2
    # time travel never sees a quarantined version
    assert [s.record for s in store.iter_sources_as_of("2026-11-04")] == [good]


def test_a_changed_value_is_not_a_reason():
    gate = IntegrityGate()
    assert gate.check(full(), full(overall_status="COMPLETED", conditions=["Lymphoma"])) is None
    assert gate.check(full(nct=None), full(nct="NCT02186860")) is None  # gaining an ID is fine
    assert IntegrityGate([]).check(full(), rec()) is None
    with pytest.raises(ValueError, match="nonsense"):
        IntegrityGate(["nonsense"])


def test_the_core_fields_are_a_setting(tmp_path):
    with open_store({"HARVEST_DB": str(tmp_path / "h.sqlite3"), "HARVEST_INTEGRITY_FIELDS": "brief_title"}) as s:
        s.upsert(full())
        assert s.upsert(rec(title="CAR-T for ALL")) == "updated"  # status etc. emptied: not core here
        assert s.upsert(rec(title="")) == "quarantined"


def test_accepting_a_quarantined_version_promotes_it(store):
    store.clock.set(1)
    store.upsert(full(), b"good")
    store.clock.set(2)
    store.upsert(full(nct=None), b"bad")
    store.clock.set(5)
    accepted = store.accept("veeva", URL)
    assert accepted["seq"] == 2 and accepted["accepted_at"][:10] == "2026-11-05"
    assert accepted["quarantine"].startswith("loses its NCT ID")  # the reason stays on record
    assert store.get("veeva", URL).record.nct_id is None
    assert store.get_body("veeva", URL) == b"bad"
    assert store.quarantined() == []
    # it became current when accepted, not when first seen
    assert [s.record.nct_id for s in store.iter_sources_as_of("2026-11-03")] == ["NCT02186860"]
    assert [s.record.nct_id for s in store.iter_sources_as_of("2026-11-05")] == [None]
    with pytest.raises(ValueError, match="not quarantined"):
        store.accept("veeva", URL)
    with pytest.raises(LookupError):
        store.accept("veeva", "https://never/stored")


def test_a_superseded_quarantined_version_cannot_be_accepted(store):
    store.clock.set(1)
    store.upsert(full())
    store.clock.set(2)
    store.upsert(full(nct=None))
    store.clock.set(3)
    assert store.upsert(full(overall_status="COMPLETED")) == "updated"  # a good version after the bad one
    (q,) = store.quarantined()
    assert q["superseded"] and q["seq"] == 2
    with pytest.raises(ValueError, match="superseded by version 3"):
        store.accept("veeva", URL, seq=2)
    # the site is fixed again: same as the current version, nothing new
    assert store.upsert(full(overall_status="COMPLETED")) == "unchanged"


# ------------------------------------------------------------------ upgrade
def _as_released(new, old):
    """`new` (a canonical line of today's code) in the shape of `old` (the
    release's line): the fields the release did not have must be empty (its
    records never held them), and a date, which now carries its type, must
    be the release's date with no type (its records never said)."""
    if isinstance(old, dict) and isinstance(new, dict):
        for added in set(new) - set(old):
            value = new[added]
            assert value in (None, [], {}) or (isinstance(value, dict) and all(
                v is None for v in value.values())), (added, value)
        return {k: _as_released(new.get(k), v) for k, v in old.items()}
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [_as_released(n, o) for n, o in zip(new, old)]
    if isinstance(old, str) and isinstance(new, dict) and set(new) == {"date", "type"}:
        assert new["type"] is None
        return new["date"]
    return new


def _check_upgraded(store, canonical_dir: Path, db: str) -> None:
    # every page of the old store is there, each its version 1, nothing lost
    assert store.count() == 10 and store.count("versions") == 10
    assert store.count("rejects") == 1 and store.get_watermark("medpath") == "2026-11-20"
    medpath = ("medpath", "https://trial.medpath.com/clinical-trial/50b4028075e01462/"
               "chimeric-antigen-receptor-t-cells-therapy-children-tumors")
    assert store.get_validators(*medpath) == ('"abc"', "Tue, 24 Nov 2026 10:00:00 GMT")
    ctgov = ("ctgov", "https://clinicaltrials.gov/api/v2/studies/NCT02513394")
    body = store.get_body(*ctgov)
    assert body.startswith(b"{") and b'"NCT02513394"' in body
    (g,) = store.gone_intervals()
    assert (g["site"], g["gone_at"], g["back_at"]) == ("veeva", "2026-11-25T10:00:00+00:00", None)
    for v in store.versions(url=ctgov[1]):
        assert v["seq"] == 1 and v["current_from"] == v["first_seen_at"]
    # the same content again: unchanged, and still one version
    old = store.get(*ctgov).record
    assert store.upsert(old, body) == "unchanged" and store.count("versions") == 10
    # the old store reconciles to what the release wrote: every field it
    # wrote, with the same value, and the fields added since left empty
    run = scrapy(["reconcile", "-O", "canonical.jsonl"], canonical_dir, offline=False, extra_env={"HARVEST_DB": db})
    assert run.returncode == 0, run.stderr[-2000:]
    now = (canonical_dir / "canonical.jsonl").read_bytes().splitlines()
    released = (DATA / "store-v1.canonical.jsonl").read_bytes().splitlines()
    assert len(now) == len(released)
    for line, old_line in zip(now, released):
        assert _as_released(orjson.loads(line), orjson.loads(old_line)) == orjson.loads(old_line)
    # ... and as of now too
    assert [s.record for s in store.iter_sources_as_of(datetime.now(timezone.utc))] == \
        [s.record for s in store.iter_sources()]


def test_upgrade_of_a_sqlite_store_written_by_the_release(tmp_path):
    path = tmp_path / "old.sqlite3"
    shutil.copy(DATA / "store-v1.sqlite3", path)
    con = sqlite3.connect(path)
    assert "versions" not in {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
    con.close()
    with Store(path) as store:
        _check_upgraded(store, tmp_path / "out", str(path))
    with Store(path) as store:  # opening again upgrades nothing twice
        assert store.count("versions") == 10


def test_upgrade_of_a_postgresql_store_written_by_the_release(tmp_path, postgres_server):  # noqa: F811
    url = postgres_server.new_database("upgrade")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute((DATA / "store-v1.pg.sql").read_text())
        conn.execute("SELECT pg_catalog.set_config('search_path', 'public', false)")
        assert conn.execute("SELECT to_regclass('public.versions')").fetchone()[0] is None
    with PgStore(url) as store:
        _check_upgraded(store, tmp_path / "out", url)
    with PgStore(url) as store:
        assert store.count("versions") == 10
