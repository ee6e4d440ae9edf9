"""A full-registry CT.gov refresh, measured: how fast the crawler turns
1,000-study API pages into stored records, beside the rate at which the
same bytes can merely be read, in one run.

    python bench/ctgov_refresh.py                    # 5,000 studies, SQLite and PostgreSQL
    python bench/ctgov_refresh.py --studies 10000 --db sqlite
    python bench/ctgov_refresh.py --profile prof/    # cProfile of each crawl, top functions printed

Corpus: the real study bodies in `../shared/reference/ctgov/real/` (relative
to the repository; `--shared` names another folder) and the real PALLAS body
with results (`study_NCT02513394_with_results.json`, 1.5 MB), each study used
in turn, every copy under its own NCT ID (NCT9 followed by a serial number)
so that each is a different record. Pages of `--page-size` studies (1,000,
the API's maximum) are served compact (as the API serves them) from memory
by a threaded HTTP server on 127.0.0.1, with `nextPageToken` and, on the
first page, `totalCount`, as `GET /api/v2/studies?countTotal=true` answers.

Rows, timed in this one process run (the machine may be shared: compare the
ratios of a run, not rates across runs):

* `orjson.loads` of every page (reading the bytes): studies/s and MB/s;
* `spiders.ctgov.parse_study` on every study of those pages (parsing only);
* `scrapy crawl ctgov -a base_url=...` into a fresh store (the whole stack:
  download, the spider, validation, the store), in a subprocess, once per
  store (SQLite; PostgreSQL started as the tests start it, `tests/_servers.py`,
  or `--pg-url`), with politeness delays off. Its rate is studies over the
  crawl's own duration (the run report's `duration_s`), and over its CPU time
  (user + system of the process, which a shared machine does not inflate as
  much); peak RSS is the process's own high-water mark (`VmHWM`).

Printed: each row, the ratios against the targets (whole stack >= 0.6 x
orjson.loads on SQLite, PostgreSQL >= 0.8 x SQLite, parser >= 0.7 x, peak RSS
<= 500 MB), and the whole-registry time (570,000 studies) each rate implies,
beside the network's share at one request a second. Exit status 1 when a
target is missed.
"""
from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

REGISTRY = 570_000  # studies in ClinicalTrials.gov, about
DATE = "Mon, 23 Nov 2026 09:00:00 GMT"
TARGETS = {"stack_sqlite": 0.6, "pg_vs_sqlite": 0.8, "parser": 0.7, "rss_mb": 500}


# --- corpus ---------------------------------------------------------------------------
def real_bodies(shared: Path) -> list[dict]:
    ref = shared / "reference" / "ctgov"
    paths = sorted((ref / "real").glob("NCT*.json")) + [ref / "study_NCT02513394_with_results.json"]
    bodies = [orjson.loads(p.read_bytes()) for p in paths]
    return [b for b in bodies if isinstance(b.get("protocolSection"), dict)]


def studies(bodies: list[dict], n: int) -> list[dict]:
    out = []
    for i in range(n):
        study = copy.deepcopy(bodies[i % len(bodies)])
        ident = study["protocolSection"].setdefault("identificationModule", {})
        ident["nctId"] = f"NCT9{i:07d}"
        out.append(study)
    return out


def pages(corpus: list[dict], size: int) -> list[bytes]:
    out = []
    for k, start in enumerate(range(0, len(corpus), size)):
        page: dict = {"studies": corpus[start:start + size]}
        if start + size < len(corpus):
            page["nextPageToken"] = f"p{k + 1}"
        if k == 0:
            page["totalCount"] = len(corpus)
        out.append(orjson.dumps(page))
    return out


# --- the API on 127.0.0.1 ---------------------------------------------------------------
class Api:
    def __init__(self, bodies: list[bytes]):
        self.bodies = bodies
        self.served = 0
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802
                url = urlsplit(self.path)
                if url.path == "/api/v2/studies":
                    token = parse_qs(url.query).get("pageToken", ["p0"])[0]
                    body, status = api.bodies[int(token[1:])], 200
                    api.served += 1
                elif url.path == "/api/v2/version":
                    body, status = b'{"apiVersion":"2.0.0","dataTimestamp":"2026-11-23T09:00:00"}', 200
                else:
                    body, status = b"not here", 404
                self.send_response(status)
                self.send_header("Date", DATE)
                self.send_header("Content-Type", "application/json" if status == 200 else "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# --- rows -------------------------------------------------------------------------------
def _clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def time_loads(bodies: list[bytes], rounds: int) -> tuple[float, float]:
    """(wall, CPU) seconds to read every page, page by page as a crawl does
    (each page let go before the next), best of `rounds`."""
    best = (float("inf"), float("inf"))
    for _ in range(rounds):
        gc.collect()
        wall, cpu = _clocks()
        for body in bodies:
            orjson.loads(body)
        now = _clocks()
        best = min(best, (now[0] - wall, now[1] - cpu), key=lambda t: t[1])
    return best


def time_parse(bodies: list[bytes], rounds: int) -> tuple[float, float]:
    """(wall, CPU) seconds `parse_study` takes over every study of the pages
    (the pages read untimed, one at a time), best of `rounds`."""
    from spiders.ctgov import parse_study

    fetched = "2026-11-23T09:00:00Z"
    best = (float("inf"), float("inf"))
    for _ in range(rounds):
        wall = cpu = 0.0
        for body in bodies:
            page = orjson.loads(body)
            gc.collect()
            start = _clocks()
            for study in page["studies"]:
                parse_study(study, fetched=fetched)
            now = _clocks()
            wall, cpu = wall + now[0] - start[0], cpu + now[1] - start[1]
            del page
        best = min(best, (wall, cpu), key=lambda t: t[1])
    return best


def crawl(api: Api, db: str, tmp: Path, profile: Path | None, label: str, extra: list[str] = ()) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCRAPY_")}
    env.update(SCRAPY_SETTINGS_MODULE="harvester.settings", HARVEST_DB=db,
               PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    reports = tmp / f"reports-{label}"
    cmd = [sys.executable]
    if profile is not None:
        profile.mkdir(parents=True, exist_ok=True)
        cmd += ["-m", "cProfile", "-o", str(profile / f"crawl-{label}.prof")]
    cmd += ["-m", "scrapy", "crawl", "ctgov", "-a", f"base_url={api.base}",
            "-s", "DOWNLOAD_DELAY=0", "-s", "AUTOTHROTTLE_ENABLED=False", "-s", "LOG_LEVEL=WARNING",
            "-s", f"HARVEST_REPORT_DIR={reports}", "-s", "HARVEST_BASELINE_DIR=",
            "-s", "HARVEST_CONTACT=bench@localhost", "-s", "DOWNLOAD_WARNSIZE=0"]
    for setting in extra:
        cmd += ["-s", setting]
    api.served = 0
    proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr_chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: stderr_chunks.append(proc.stderr.read()), daemon=True)
    reader.start()
    peak = [0]
    watcher = threading.Thread(target=watch_peak_rss, args=(proc.pid, peak), daemon=True)
    watcher.start()
    _, status, usage = os.wait4(proc.pid, 0)
    watcher.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    reader.join()
    report = json.loads((reports / "ctgov-latest.json").read_text())
    if proc.returncode != 0 or report["failed"]:
        sys.stderr.write(b"".join(stderr_chunks).decode(errors="replace")[-4000:])
        raise SystemExit(f"the {label} crawl failed: {report.get('failure_reasons')}")
    return {"duration": report["duration_s"], "cpu": usage.ru_utime + usage.ru_stime,
            "rss_mb": peak[0] / 1024, "items": report["items"], "pages": api.served,
            "store": report.get("store"), "completeness": report.get("completeness")}


def server_cpu(pid: int | None) -> float:
    """CPU seconds of a PostgreSQL server so far: the postmaster and the
    backends it has reaped (a crawl's connection ends with the crawl)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def watch_peak_rss(pid: int, peak: list) -> None:
    """The process's own peak RSS (VmHWM, kB), read until it exits. Not
    `ru_maxrss`: on Linux that counts the forked copy of this (large) bench
    process from before the crawl's exec."""
    path = Path(f"/proc/{pid}/status")
    while True:
        try:
            for line in path.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak[0] = max(peak[0], int(line.split()[1]))
        except (OSError, ValueError):
            return
        time.sleep(0.05)


def print_profile(path: Path, top: int = 25) -> None:
    stats = pstats.Stats(str(path))
    stats.sort_stats("tottime").print_stats(top)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--studies", type=int, default=5000)
    ap.add_argument("--page-size", type=int, default=1000)
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared",
                    help="the folder holding reference/ctgov/ (default: ../shared beside the repository)")
    ap.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    ap.add_argument("--pg-url", help="a PostgreSQL server of your own (an empty database is created per run)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of the in-process rows (the best is kept)")
    ap.add_argument("-s", "--set", action="append", default=[], metavar="NAME=VALUE",
                    help="a Scrapy setting for the crawls (repeatable)")
    ap.add_argument("--profile", type=Path, help="folder for a cProfile of each crawl")
    args = ap.parse_args(argv)

    bodies = real_bodies(args.shared)
    corpus = studies(bodies, args.studies)
    page_bytes = pages(corpus, args.page_size)
    del corpus
    size = sum(len(b) for b in page_bytes)
    mb = size / 1e6
    print(f"corpus: {args.studies:,} studies from {len(bodies)} real bodies, {len(page_bytes)} pages of "
          f"{args.page_size:,}, {mb:,.1f} MB ({size / args.studies / 1e3:.1f} KB a study, compact)")

    loads = time_loads(page_bytes, args.rounds)
    parse = time_parse(page_bytes, args.rounds)
    gc.collect()
    n = args.studies
    # (name, wall s, CPU s, peak RSS MB)
    rows = [("orjson.loads of the pages", *loads, None), ("spiders.ctgov.parse_study, every study", *parse, None)]

    tmp = Path(tempfile.mkdtemp(prefix="bench-ctgov-refresh-"))
    api = Api(page_bytes)
    crawls: dict[str, dict] = {}
    servers = []
    try:
        if args.db in ("sqlite", "both"):
            crawls["SQLite"] = crawl(api, str(tmp / "harvest.sqlite3"), tmp, args.profile, "sqlite", args.set)
        if args.db in ("postgres", "both"):
            pid = None  # a server of the user's: its CPU time is not counted
            if args.pg_url:
                import psycopg

                name = f"bench_refresh_{os.getpid()}"
                with psycopg.connect(args.pg_url, autocommit=True) as conn:
                    conn.execute(f'CREATE DATABASE "{name}"')
                db = args.pg_url.rsplit("/", 1)[0] + "/" + name
            else:
                sys.path.insert(0, str(ROOT / "tests"))
                from _servers import PostgresServer

                servers.append(PostgresServer())
                db = servers[-1].new_database("bench_refresh")
                pid = int((servers[-1].data / "postmaster.pid").read_text().split()[0])
            before = server_cpu(pid)
            crawls["PostgreSQL"] = crawl(api, db, tmp, args.profile, "postgres", args.set)
            time.sleep(0.5)  # the backend of the crawl's connection is reaped
            # the store's work is the server's too: SQLite does it inside the crawl
            crawls["PostgreSQL"]["server_cpu"] = server_cpu(pid) - before
            crawls["PostgreSQL"]["cpu"] += crawls["PostgreSQL"]["server_cpu"]
    finally:
        api.close()
        for server in servers:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    for name, c in crawls.items():
        if c["items"] != n:
            raise SystemExit(f"the {name} crawl stored {c['items']} of {n} studies: {c['store']}")
        rows.append((f"scrapy crawl ctgov -> {name}", c["duration"], c["cpu"], c["rss_mb"]))
        if c.get("server_cpu"):
            print(f"{name}: the server's CPU time, {c['server_cpu']:.1f} s, is in its CPU column")

    print(f"\n{'row':40} {'studies/s':>10} {'MB/s':>6} {'x loads':>8} | {'CPU: studies/s':>14} {'MB/s':>6} "
          f"{'x loads':>8} {'registry':>9} | {'peak RSS':>9}")
    for name, wall, cpu, rss in rows:
        print(f"{name:40} {n / wall:10,.0f} {mb / wall:6.1f} {loads[0] / wall:8.2f} | {n / cpu:14,.0f} "
              f"{mb / cpu:6.1f} {loads[1] / cpu:8.2f} {REGISTRY / (n / cpu) / 60:8.1f}m | "
              f"{f'{rss:,.0f} MB' if rss else '':>9}")
    net = REGISTRY / args.page_size  # one request a second
    print(f"registry = {REGISTRY:,} studies at the CPU rate on one core; the network at one request a second: "
          f"{net:,.0f} pages, {net / 60:.1f} min")

    # Targets, on CPU time (what the code costs; a shared machine stretches
    # wall time by however long the process waits for a core) and on wall time.
    checks = []
    for clock, k in (("CPU", 1), ("wall", 0)):
        ratio = loads[k] / parse[k]
        checks.append((f"parser >= 0.7 x orjson.loads ({clock})", ratio, ratio >= TARGETS["parser"]))
        if "SQLite" in crawls:
            sq = crawls["SQLite"]["cpu" if k else "duration"]
            checks.append((f"whole stack (SQLite) >= 0.6 x orjson.loads ({clock})", loads[k] / sq,
                           loads[k] / sq >= TARGETS["stack_sqlite"]))
            if "PostgreSQL" in crawls:
                ratio = sq / crawls["PostgreSQL"]["cpu" if k else "duration"]
                checks.append((f"PostgreSQL >= 0.8 x SQLite ({clock})", ratio, ratio >= TARGETS["pg_vs_sqlite"]))
    for name, c in crawls.items():
        checks.append((f"peak RSS ({name}) <= 500 MB", c["rss_mb"], c["rss_mb"] <= TARGETS["rss_mb"]))
    print()
    for what, value, ok in checks:
        print(f"{'ok  ' if ok else 'MISS'} {what}: {value:.2f}")
    if args.profile:
        for label in ("sqlite", "postgres"):
            path = args.profile / f"crawl-{label}.prof"
            if path.exists():
                print(f"\n--- profile of the {label} crawl ({path}) ---")
                print_profile(path)
    return 0 if all(ok for what, _, ok in checks if "(wall)" not in what) else 1


if __name__ == "__main__":
    sys.exit(main())
