"""Export benchmark: the reconcile benchmark's store of N trials -> Parquet tables.

    python bench/export.py                       # 500,000 trials
    python bench/export.py --trials 20000        # a quick run
    python bench/export.py --db big.sqlite3 --keep   # reuse (or keep) the store
    python bench/export.py --db big.sqlite3 --compare  # also time reconcile alone, same run

Generates the store with `bench/reconcile.py`'s generator (untimed) unless
`--db` names an existing one, then runs `harvester.export.export(...,
"parquet", ...)` over it in a fresh subprocess (so the figures are its own:
reconciliation, DuckDB and pyarrow in one process) and prints wall time,
CPU time and peak RSS (`ru_maxrss`) of the reconciling process and of the
loader process (DuckDB and pyarrow; their sum bounds the peak of both), the size of every
table file against the size of the canonical JSONL, and the row counts.
`--compare` first times `scrapy reconcile`'s path into canonical JSONL in
another subprocess, so the export's overhead is a ratio measured within one
run. Targets for 500,000 trials on a 2-core machine: <= 5 minutes,
<= 1.5 GB peak RSS; exit status 1 over target.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (str(ROOT), str(ROOT / "bench")):
    if p not in sys.path:
        sys.path.insert(0, p)

TARGET_SECONDS = 300
TARGET_RSS_MB = 1536


def _cpu(who) -> float:
    r = resource.getrusage(who)
    return round(r.ru_utime + r.ru_stime, 1)


def child_export(db: str, out: str) -> dict:
    from harvester.export import export

    start = time.perf_counter()
    summary = export({"HARVEST_DB": db}, "parquet", out)
    wall = time.perf_counter() - start
    me, loader = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    # the loader process is this process's child: its figures are RUSAGE_CHILDREN's
    return {"wall_s": round(wall, 1), "peak_rss_mb": round(me.ru_maxrss / 1024),
            "loader_peak_rss_mb": round(loader.ru_maxrss / 1024),
            "cpu_s": _cpu(resource.RUSAGE_SELF), "loader_cpu_s": _cpu(resource.RUSAGE_CHILDREN),
            "rows": summary.rows, "jsonl_bytes": summary.jsonl_bytes}


def child_reconcile(db: str, out: str) -> dict:
    from harvester.reconciliation import reconcile
    from harvester.store import Store

    start = time.perf_counter()
    with Store(db) as store, open(out, "wb") as fh, open(out + ".unlinked", "wb") as uf:
        reconcile(store, fh, uf, None)
    wall = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"wall_s": round(wall, 1), "peak_rss_mb": round(peak_kb / 1024), "cpu_s": _cpu(resource.RUSAGE_SELF)}


def run_child(kind: str, db: Path, out: Path) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps([kind, str(db), str(out)])],
                          capture_output=True, text=True, cwd=str(ROOT))
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        raise SystemExit(proc.returncode)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=500_000)
    ap.add_argument("--db", help="store path (default: a temporary file)")
    ap.add_argument("--keep", action="store_true", help="keep the store and the output")
    ap.add_argument("--compare", action="store_true", help="also time reconcile alone into JSONL")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, db, out = json.loads(args.child)
        print(json.dumps((child_export if kind == "export" else child_reconcile)(db, out)))
        return 0

    tmp = Path(tempfile.mkdtemp(prefix="bench-export-"))
    db = Path(args.db) if args.db else tmp / "store.sqlite3"
    if not db.exists():
        import reconcile as bench_reconcile

        t0 = time.perf_counter()
        rows = bench_reconcile.generate(db, args.trials)
        print(f"generated {args.trials:,} trials, {rows:,} pages in {time.perf_counter() - t0:.0f} s "
              f"({db.stat().st_size / 2**20:.0f} MB)", flush=True)
    else:
        print(f"reusing {db}", flush=True)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)

    jsonl = tmp / "canonical.jsonl"
    baseline = None
    if args.compare:
        baseline = run_child("reconcile", db, jsonl)
        print(f"reconcile alone -> JSONL: {baseline['wall_s']} s wall, {baseline['cpu_s']} s CPU, "
              f"peak RSS {baseline['peak_rss_mb']} MB, "
              f"{jsonl.stat().st_size / 2**20:,.0f} MB", flush=True)
    out = tmp / "tables"
    result = run_child("export", db, out)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"export -> Parquet: {result['wall_s']} s wall; reconciling process {result['cpu_s']} s CPU, "
          f"peak RSS {result['peak_rss_mb']} MB; loader process {result['loader_cpu_s']} s CPU, "
          f"peak RSS {result['loader_peak_rss_mb']} MB (both: <= {result['peak_rss_mb'] + result['loader_peak_rss_mb']} MB)")
    if baseline:
        print(f"  export / reconcile alone: {result['wall_s'] / baseline['wall_s']:.2f}")
    total = 0
    for f in sorted(out.iterdir()):
        size = f.stat().st_size
        total += size
        print(f"  {f.name:28} {size / 2**20:10,.1f} MB  {result['rows'][f.stem]:>12,} rows")
    print(f"  {'all tables':28} {total / 2**20:10,.1f} MB")
    size = result["jsonl_bytes"]  # what reconcile wrote: canonical.jsonl's size
    print(f"  {'canonical.jsonl':28} {size / 2**20:10,.1f} MB  (Parquet / JSONL: {total / size:.3f})")
    limit = TARGET_SECONDS * args.trials / 500_000
    ok = result["wall_s"] <= limit and result["peak_rss_mb"] + result["loader_peak_rss_mb"] <= TARGET_RSS_MB
    print("within target" if ok else "OVER TARGET", f"(<= {limit:.0f} s, <= {TARGET_RSS_MB} MB)")
    if not args.keep:
        shutil.rmtree(out, ignore_errors=True)
        for p in (jsonl, Path(str(jsonl) + ".unlinked")):
            p.unlink(missing_ok=True)
        if not args.db:
            for p in (db, Path(str(db) + "-wal"), Path(str(db) + "-shm")):
                p.unlink(missing_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
