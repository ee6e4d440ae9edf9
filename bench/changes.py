"""Change-feed benchmark: N trials, 5% changed since the previous refresh.

    python bench/changes.py                    # 500,000 trials
    python bench/changes.py --trials 20000     # a quick run
    python bench/changes.py --db big.sqlite3 --keep   # reuse the store next time

1. Generates (untimed, bulk inserts) a versioned SQLite store in the
   project's schema: the trials, pages and disagreements of
   `bench/reconcile.py` (about 2.3 pages per trial, 0.1% pages without an
   NCT ID), every page one version, first seen at the first refresh.
2. A second refresh through the real write path (`Store.upsert`, with the
   integrity gate): a sample of unchanged pages again (must add no version
   and no row), then the CT.gov page of 5% of the trials with one field
   changed (status, enrollment count or a completion date) and a new
   `last_update_posted`. Prints the store's growth per changed page beside
   the average compressed size of one version.
3. Times `scrapy changes --since <between the refreshes> -O changes.jsonl`
   in a subprocess (the real command, its own process: wall time and peak
   RSS are its own) and checks that it wrote one line per changed field.

Targets for 500,000 trials on a 2-core machine: <= 5 minutes, <= 1.5 GB
peak RSS; exit status 1 over them (scaled for --trials) or when a check
fails.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "bench"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import reconcile as corpus  # noqa: E402  (bench/reconcile.py: the same synthetic trials)

TARGET_SECONDS = 300
TARGET_RSS_MB = 1536
FIRST = "2026-11-20T08:00:00.000000+00:00"   # the first refresh
BETWEEN = "2026-11-25T00:00:00+00:00"        # --since
SECOND = "2026-11-27T08:00:00.000000+00:00"  # the second refresh
CHANGED_SHARE = 0.05


def generate(path: Path, trials: int, seed: int = 7) -> tuple[int, list[dict]]:
    """The store after the first refresh; returns (pages, the CT.gov records
    of the trials the second refresh changes)."""
    from harvester.store import Store

    rng = random.Random(seed)
    pick = random.Random(seed + 1)
    store = Store(path)
    conn = store.conn
    rows = 0
    sources: list[tuple] = []
    versions: list[tuple] = []
    changed: list[dict] = []
    kept: list[dict] = []

    def add(rec: dict) -> None:
        nonlocal rows
        blob = zlib.compress(orjson.dumps(rec))
        # the store's layout: the record lives in its version, `sources` points at it
        sources.append((rec["site"], rec["url"], rec["nct_id"], rec["fetched_at"], rec["content_hash"], b"",
                        1, FIRST, FIRST, FIRST))
        versions.append((rec["site"], rec["url"], 1, rec["nct_id"], rec["fetched_at"], rec["content_hash"], blob,
                         FIRST, FIRST, FIRST))
        rows += 1
        if len(sources) >= 20_000:
            flush()

    def flush() -> None:
        conn.executemany("INSERT INTO sources (site, url, nct_id, fetched_at, content_hash, record, version,"
                         " first_seen_at, last_seen_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)", sources)
        conn.executemany("INSERT INTO versions (site, url, seq, nct_id, fetched_at, content_hash, record,"
                         " first_seen_at, last_seen_at, current_from) VALUES (?,?,?,?,?,?,?,?,?,?)", versions)
        sources.clear()
        versions.clear()

    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    for n in range(1, trials + 1):
        t = corpus.base_trial(rng, 1_000_000 + n * 7)
        records = corpus.site_records(rng, t)
        for rec in records:
            add(rec)
        if pick.random() < CHANGED_SHARE:
            changed.append(records[0])
        if rng.random() < 0.0005:
            kept.append(t)
    for i in range(max(2, trials // 1000)):
        add(corpus.nctless_record(rng, i, kept[i % len(kept)] if kept and i % 2 == 0 else None))
    flush()
    conn.execute("COMMIT")
    store.close()
    return rows, changed


def change_one(rng: random.Random, rec: dict) -> tuple[dict, str]:
    """The record with one field changed, as the registry would publish it."""
    rec = orjson.loads(orjson.dumps(rec))
    kind = rng.choice(["overall_status", "enrollment", "completion_date"])
    if kind == "overall_status":
        rec["overall_status"] = "COMPLETED" if rec["overall_status"] != "COMPLETED" else "TERMINATED"
        field = "overall_status"
    elif kind == "enrollment":
        rec["enrollment"] = {"count": rec["enrollment"]["count"] + rng.randint(1, 50), "type": rec["enrollment"]["type"]}
        field = "enrollment.count"
    else:
        year = int(rec["completion_date"][:4]) + 1
        rec["completion_date"] = f"{year}{rec['completion_date'][4:]}"
        field = "completion_date.date"  # a date with its type: the date part changed
    rec["last_update_posted"] = "2026-11-29"  # the generator never picks a day after the 28th
    return rec, field


def refresh(path: Path, changed: list[dict], unchanged_sample: int) -> dict:
    """The second refresh through the real write path."""
    from harvester.store import Store
    from items import SourceRecord
    from pipelines.validate import content_hash

    rng = random.Random(11)
    out = {}
    with Store(path) as store:
        store.clock = lambda: SECOND
        versions_before, rows_before = store.count("versions"), store.count()
        # unchanged pages served again: no version, no row, only last-seen moves
        t0 = time.perf_counter()
        n = 0
        for item in store.iter_sources():
            if n >= unchanged_sample:
                break
            r = item.record
            assert store.upsert(r) == "unchanged", r.url
            n += 1
        out["unchanged_pages"] = n
        out["unchanged_s"] = round(time.perf_counter() - t0, 1)
        out["unchanged_added_versions"] = store.count("versions") - versions_before
        out["unchanged_added_rows"] = store.count() - rows_before
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size_before = path.stat().st_size
        versions_before = store.count("versions")
        t0 = time.perf_counter()
        sizes = []
        fields: dict[str, int] = {}
        for rec in changed:
            new, field = change_one(rng, rec)
            record = SourceRecord.model_validate(new)
            record.content_hash = content_hash(record)
            assert store.upsert(record) == "updated", record.url
            sizes.append(len(zlib.compress(orjson.dumps(record.model_dump(mode="json", by_alias=True)))))
            fields[field] = fields.get(field, 0) + 1
        out["changed_pages"] = len(changed)
        out["changed_s"] = round(time.perf_counter() - t0, 1)
        out["changed_added_versions"] = store.count("versions") - versions_before
        out["changed_fields"] = fields
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        growth = path.stat().st_size - size_before
        out["growth_bytes_per_changed_page"] = round(growth / max(1, len(changed)))
        out["compressed_version_bytes"] = round(sum(sizes) / max(1, len(sizes)))
    return out


def run_changes(db: Path, out: Path) -> dict:
    env = dict(os.environ, HARVEST_DB=str(db), SCRAPY_SETTINGS_MODULE="harvester.settings",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, "-m", "scrapy", "changes", "--since", BETWEEN, "--until", SECOND, "-O", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=str(ROOT), env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"wall_s": round(wall, 1), "peak_rss_mb": round(peak_kb / 1024), "stderr": proc.stderr.strip()[-300:]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=500_000)
    ap.add_argument("--db", help="store path (default: a temporary file)")
    ap.add_argument("--keep", action="store_true", help="keep the store and the output")
    ap.add_argument("--unchanged-sample", type=int, default=20_000)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-changes-"))
    db = Path(args.db) if args.db else tmp / "store.sqlite3"
    if db.exists():
        raise SystemExit(f"{db} exists: this benchmark writes a second refresh into its store")
    t0 = time.perf_counter()
    rows, changed = generate(db, args.trials)
    print(f"generated {args.trials:,} trials, {rows:,} pages in {time.perf_counter() - t0:.0f} s "
          f"({db.stat().st_size / 2**20:.0f} MB)", flush=True)
    r = refresh(db, changed, args.unchanged_sample)
    print(f"unchanged refresh of {r['unchanged_pages']:,} pages ({r['unchanged_s']} s): "
          f"{r['unchanged_added_versions']} versions and {r['unchanged_added_rows']} rows added", flush=True)
    print(f"changed refresh of {r['changed_pages']:,} pages ({r['changed_s']} s): "
          f"{r['changed_added_versions']:,} versions added; growth {r['growth_bytes_per_changed_page']:,} bytes "
          f"per changed page, one compressed version {r['compressed_version_bytes']:,} bytes "
          f"(ratio {r['growth_bytes_per_changed_page'] / max(1, r['compressed_version_bytes']):.2f})", flush=True)
    out = tmp / "changes.jsonl"
    c = run_changes(db, out)
    lines = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    got = {}
    for line in lines:
        if line["field"] != "last_update_posted":
            got[line["field"]] = got.get(line["field"], 0) + 1
    updates = sum(1 for line in lines if line["field"] == "last_update_posted")
    print(f"scrapy changes: {c['wall_s']} s wall, peak RSS {c['peak_rss_mb']} MB, {len(lines):,} lines "
          f"({out.stat().st_size / 2**20:.1f} MB); {c['stderr']}")
    scale = args.trials / 500_000
    checks = {
        "unchanged refresh adds nothing": r["unchanged_added_versions"] == 0 and r["unchanged_added_rows"] == 0,
        "one version per changed page": r["changed_added_versions"] == r["changed_pages"],
        "one line per changed field": got == r["changed_fields"] and updates == r["changed_pages"],
        "time": c["wall_s"] <= TARGET_SECONDS * max(scale, 0.05),
        "memory": c["peak_rss_mb"] <= TARGET_RSS_MB,
    }
    for name, ok in checks.items():
        print(f"  {'ok' if ok else 'FAILED'}: {name}")
    if not args.keep:
        for p in (out, db, Path(str(db) + "-wal"), Path(str(db) + "-shm")):
            if p.exists():
                p.unlink()
        try:
            tmp.rmdir()
        except OSError:
            pass
    else:
        print(f"kept {db} and {out}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
