"""The PostgreSQL store against a real PostgreSQL server (tests/_servers.py):
same answers as the SQLite store for the same calls, the same records in the
same order from `iter_sources` (streamed through a server-side cursor), and
concurrent upserts from two processes that lose nothing."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest
from _servers import postgres_server  # noqa: F401  (fixture)

from _project import scrapy
from harvester.store import Store, open_store
from harvester.store_pg import PgStore
from items import SourceRecord
from pipelines.validate import content_hash

REPO = Path(__file__).resolve().parents[1]
CTGOV_SRC = REPO / "cassettes" / "src" / "ctgov"
T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
T1 = datetime(2026, 11, 2, tzinfo=timezone.utc)


def rec(url="https://ctv.veeva.com/study/a", nct="NCT02186860", title="A", fetched=T0, site="veeva"):
    r = SourceRecord(site=site, url=url, fetched_at=fetched, nct_id=nct, brief_title=title)
    r.content_hash = content_hash(r)
    return r


@pytest.fixture
def pg_url(postgres_server):  # noqa: F811
    return postgres_server.new_database("store")


def test_open_store_picks_the_backend_from_the_url(tmp_path, pg_url):
    with open_store(tmp_path / "a.sqlite3") as s:
        assert type(s) is Store
    with open_store(f"sqlite:///{tmp_path / 'b.sqlite3'}") as s:
        assert type(s) is Store and s.path == str(tmp_path / "b.sqlite3")
    with open_store(pg_url) as s:
        assert type(s) is PgStore
    # settings (anything with .get): their HARVEST_DB; Store.from_settings goes through it
    with Store.from_settings({"HARVEST_DB": pg_url}) as s:
        assert type(s) is PgStore
    with open_store({"HARVEST_DB": pg_url.replace("postgresql://", "postgres://", 1)}) as s:
        assert type(s) is PgStore
    with pytest.raises(ValueError, match="open_store"):
        Store(pg_url)


def script(store) -> list:
    """The same calls on either store; returns everything they answered,
    minus wall-clock times."""
    a, b = "https://ctv.veeva.com/study/a", "https://ctv.veeva.com/study/b"
    out = [
        store.upsert(rec(), b"<html>1</html>"),
        store.upsert(rec(fetched=T1), b"<html>1</html>"),          # same content: unchanged
        store.get("veeva", a).record.fetched_at.isoformat(),         # ... and not rewritten
        store.upsert(rec(title="B", fetched=T1), b"<html>2</html>"),  # updated
        store.get_body("veeva", a),
        store.upsert(rec(url=b, nct=None), None),
        store.get_body("veeva", b),
        store.mark_removed("veeva", a, "2026-11-20T00:00:00+00:00"),
        store.mark_removed("veeva", a, "2026-11-21T00:00:00+00:00"),  # first removal time kept
        store.get("veeva", a).removed_at,
        store.mark_removed("veeva", "https://never/stored"),
        store.upsert(rec(title="B", fetched=T1)),                     # back: unchanged, not removed
        store.get("veeva", a).removed_at,
        store.get("veeva", "https://never/stored"),
        store.get_watermark("ctgov"),
    ]
    store.set_watermark("ctgov", "2026-11-01")
    store.set_watermark("ctgov", "2026-11-20")
    store.reject("ctgov", "https://x/1", "parse", "JSONDecodeError: Unterminated string", b'{"stud')
    store.reject("veeva", "https://x/2", "validate", "nct_id: bad", None)
    out += [
        store.get_watermark("ctgov"),
        [{k: v for k, v in r.items() if k != "rejected_at"} for r in store.rejects()],
        store.count(), store.count("rejects"), store.count("watermarks"),
        [s.record.model_dump(mode="json") for s in store.iter_sources()],
        [(s.record.url, s.removed_at) for s in store.sources_for(["NCT02186860", "NCT09999999"])],
        store.sources_for([]),
    ]
    return out


def test_same_calls_same_answers_as_sqlite(tmp_path, pg_url):
    with Store(tmp_path / "h.sqlite3") as lite, PgStore(pg_url) as pg:
        expected = script(lite)
        got = script(pg)
    assert expected[:4] == ["inserted", "unchanged", T0.isoformat(), "updated"]
    assert got == expected


def ordering_records() -> list[SourceRecord]:
    """Keys whose byte order differs from a natural-language collation (case,
    punctuation, digits, non-ASCII), several per (nct_id, site) so that the
    URL order counts, and records without an NCT ID."""
    urls = ["https://m.example/Study-b", "https://m.example/study-a", "https://m.example/study_a",
            "https://m.example/studyA", "https://m.example/étude", "https://m.example/Z",
            "https://m.example/z", "https://m.example/10", "https://m.example/9"]
    records = []
    for n, nct in enumerate(("NCT00000002", None, "NCT00000001")):
        for site in ("veeva", "medpath", "ctgov", "clinconnect"):
            for i, url in enumerate(urls):
                records.append(rec(url=f"{url}/{site}/{n}", nct=nct, title=f"t{n} {i}", site=site))
    return records


def test_iter_sources_same_records_same_order_as_sqlite(tmp_path, postgres_server):  # noqa: F811
    # A database whose default collation is en-US (ICU), not byte order: the
    # store must still order like SQLite.
    url = postgres_server.new_database("order", icu_locale="en-US")
    records = ordering_records()
    with Store(tmp_path / "h.sqlite3") as lite, PgStore(url) as pg:
        for r in reversed(records):
            assert lite.upsert(r, r.url.encode()) == pg.upsert(r, r.url.encode()) == "inserted"
        for r in records[::5]:
            lite.mark_removed(r.site, r.url, "2026-11-20T00:00:00+00:00")
            pg.mark_removed(r.site, r.url, "2026-11-20T00:00:00+00:00")
        with psycopg.connect(url) as conn:  # the collation really differs from byte order here
            words = [r[0] for r in conn.execute(
                "SELECT w FROM unnest(ARRAY['study-a','studyA','Z','z']) w ORDER BY w")]
            assert words != sorted(words)
        for include_removed in (True, False):
            want = [(s.record.model_dump_json(), s.removed_at)
                    for s in lite.iter_sources(include_removed=include_removed)]
            got = [(s.record.model_dump_json(), s.removed_at)
                   for s in pg.iter_sources(include_removed=include_removed)]
            assert got == want
            assert len(want) == (len(records) if include_removed else len(records) - len(records[::5]))
        keys = [(s.record.nct_id is None, s.record.nct_id or "", s.record.site, s.record.url)
                for s in pg.iter_sources()]
        assert keys == sorted(keys, key=lambda k: (k[0], k[1].encode(), k[2].encode(), k[3].encode()))


def test_iter_sources_streams_through_a_server_side_cursor(pg_url):
    with PgStore(pg_url) as pg:
        for i in range(30):
            pg.upsert(rec(url=f"https://x/{i:02d}", nct=f"NCT{i:08d}"))
        it = pg.iter_sources(itersize=7)
        first = next(it)
        assert first.record.nct_id == "NCT00000000"
        # The iterating connection holds an open cursor and has fetched one batch.
        rows = pg.conn.execute(
            "SELECT state, query FROM pg_stat_activity WHERE query LIKE 'FETCH FORWARD 7 FROM%%'"
        ).fetchall()
        assert rows and rows[0][0] == "idle in transaction", rows
        # The store itself stays usable while a consumer iterates.
        assert pg.upsert(rec(url="https://x/zz", nct=None)) == "inserted"
        rest = list(it)
        assert len(rest) == 29  # one snapshot: the row written meanwhile is not in it
        it.close()


WORKER = r"""
import json, sys, time
from datetime import datetime, timezone
from harvester.store import open_store
from items import SourceRecord
from pipelines.validate import content_hash

url, me, start_at, n, hot, rounds = sys.argv[1], sys.argv[2], float(sys.argv[3]), *map(int, sys.argv[4:])
T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)

def rec(url, title):
    r = SourceRecord(site="veeva", url=url, fetched_at=T0, nct_id="NCT02186860", brief_title=title)
    r.content_hash = content_hash(r)
    return r

time.sleep(max(0.0, start_at - time.time()))
store = open_store(url)  # both create the schema at once on a fresh database
outcomes = {"started": time.time()}
def put(kind, u, title):
    outcome = store.upsert(rec(u, title), title.encode())
    outcomes[f"{kind}/{outcome}"] = outcomes.get(f"{kind}/{outcome}", 0) + 1
for i in range(n):
    j = i if me == "w1" else n - 1 - i  # the two walk the shared pages from opposite ends
    put("own", f"https://x/{me}/{i}", f"own {me} {i}")    # only this worker
    put("same", f"https://x/same/{j}", f"same {j}")        # both, same content
    put("diff", f"https://x/diff/{j}", f"diff {me} {j}")   # both, different content
for r in range(rounds):                                    # a few pages both rewrite again and again
    for h in range(hot):
        put("hot", f"https://x/hot/{h}", f"hot {me} {r}")
outcomes["ended"] = time.time()
store.close()
print(json.dumps(outcomes))
"""


def test_concurrent_upserts_from_two_processes_lose_nothing(pg_url):
    n, hot, rounds = 300, 10, 60
    start_at = time.time() + 4  # both processes import (slow on a loaded machine), then start together
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, pg_url, me, str(start_at), str(n), str(hot),
                               str(rounds)],
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for me in ("w1", "w2")]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-3000:]
        results.append(json.loads(out))
    # both really wrote at the same time
    assert max(r["started"] for r in results) < min(r["ended"] for r in results), results
    total = {}
    for r in results:
        for k, v in r.items():
            if k not in ("started", "ended"):
                total[k] = total.get(k, 0) + v
    # every row written by each worker is there
    assert total["own/inserted"] == 2 * n
    # a page both wrote: exactly one of them inserted it, the other saw it
    # (no duplicate-key error, no double insert)
    assert total.get("same/inserted", 0) == n and total.get("same/unchanged", 0) == n, total
    assert total.get("diff/inserted", 0) == n and total.get("diff/updated", 0) == n, total
    # every rewrite of a hot page was applied as one: never "unchanged" (each
    # write differs from whatever is stored), one insert per page
    assert total.get("hot/inserted", 0) == hot, total
    assert total.get("hot/updated", 0) == 2 * hot * rounds - hot and "hot/unchanged" not in total, total
    with PgStore(pg_url) as pg:
        assert pg.count() == 4 * n + hot
        for i in range(n):
            for me in ("w1", "w2"):
                assert pg.get("veeva", f"https://x/{me}/{i}").record.brief_title == f"own {me} {i}"
            # the surviving version of a contested page is one writer's whole
            # row, record and body together
            title = pg.get("veeva", f"https://x/diff/{i}").record.brief_title
            assert title in (f"diff w1 {i}", f"diff w2 {i}")
            assert pg.get_body("veeva", f"https://x/diff/{i}") == title.encode()
        for h in range(hot):
            # the last write wins: a hot page holds one writer's last round,
            # never an older write applied late
            title = pg.get("veeva", f"https://x/hot/{h}").record.brief_title
            assert title in (f"hot w1 {rounds - 1}", f"hot w2 {rounds - 1}")
            assert pg.get_body("veeva", f"https://x/hot/{h}") == title.encode()


def reconcile_records() -> list[tuple[SourceRecord, bytes | None]]:
    """Real CT.gov records (the bundled API bodies, through the ctgov parser),
    mirror pages that agree or disagree with them, NCT-less pages for the
    linker, and many trials whose keys sort differently by locale."""
    from spiders.ctgov import parse_study

    out = []
    # one body per study: the real_<NCT>_<date> files are two versions of one study
    for path in sorted(p for p in CTGOV_SRC.glob("*NCT*.json") if not p.name.startswith("real_")):
        body = path.read_bytes()
        r = parse_study(json.loads(body), fetched=T0)
        r.content_hash = content_hash(r)
        out.append((r, body))
        title = r.brief_title
        out.append((rec(url=f"https://ctv.veeva.com/study/{r.nct_id.lower()}", nct=r.nct_id, title=title), None))
        # a mirror that prints another title: a conflict
        out.append((rec(url=f"https://trial.medpath.com/clinical-trial/{r.nct_id}", nct=r.nct_id,
                        title=f"{title} (as printed elsewhere)", site="medpath"), None))
        # the same trial without its NCT ID: for the linker
        out.append((rec(url=f"https://clinconnect.io/trials/{r.nct_id[-4:]}", nct=None, title=title,
                        site="clinconnect"), None))
    for i in range(60):
        nct = f"NCT0{(i * 7919) % 100000:07d}"
        for site, url in (("ctgov", f"https://clinicaltrials.gov/api/v2/studies/{nct}"),
                          ("veeva", f"https://ctv.veeva.com/study/Trial-{i}"),
                          ("veeva", f"https://ctv.veeva.com/study/trial_{i}")):
            out.append((rec(url=url, nct=nct, title=f"Trial {i}" if site == "ctgov" else f"trial {i}", site=site),
                        None))
    out.append((rec(url="https://clinconnect.io/trials/nobody-knows", nct=None, title="Unmatched study",
                    site="clinconnect"), None))
    return out


def test_reconcile_gives_byte_identical_jsonl_from_either_store(tmp_path, postgres_server):  # noqa: F811
    pg_url = postgres_server.new_database("reconcile", icu_locale="en-US")
    records = reconcile_records()
    with Store(tmp_path / "harvest.sqlite3") as lite, PgStore(pg_url) as pg:
        for r, body in records:
            lite.upsert(r, body)
        for r, body in reversed(records):  # insertion order must not matter
            pg.upsert(r, body)
        gone = records[5][0]
        lite.mark_removed(gone.site, gone.url, "2026-11-20T00:00:00+00:00")
        pg.mark_removed(gone.site, gone.url, "2026-11-20T00:00:00+00:00")
    outputs = {}
    for name, db in (("sqlite", str(tmp_path / "harvest.sqlite3")), ("postgresql", pg_url)):
        run = scrapy(["reconcile", "-O", f"{name}/canonical.jsonl"], tmp_path, offline=False,
                     extra_env={"HARVEST_DB": db})
        assert run.returncode == 0, run.stderr[-3000:]
        outputs[name] = [(tmp_path / name / f).read_bytes() for f in ("canonical.jsonl", "unlinked.jsonl")]
    assert outputs["postgresql"] == outputs["sqlite"]
    canonical, unlinked = outputs["sqlite"]
    trials = [json.loads(line) for line in canonical.splitlines()]
    # a real reconciliation, not an empty one: every trial, conflicts, an unlinked page
    assert len(trials) == 64
    assert any(t["conflicts"] for t in trials)
    assert unlinked.strip()
