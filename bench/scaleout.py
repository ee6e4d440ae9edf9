"""Scale-out benchmark: one vs two `scrapy crawl ctgov` workers on one Redis
queue, writing to one PostgreSQL store.

    python bench/scaleout.py                      # 20,000 pages, 1 then 2 workers
    python bench/scaleout.py --pages 5000 --workers 1 2 3

Needs `redis-server` and PostgreSQL's server binaries (Debian packages
`redis-server`, `postgresql`) and the test extra (it starts them the way the
tests do, `tests/_servers.py`, on free loopback ports in temporary
directories), or `--redis-url` and `--db` for servers of your own.

What runs is the real thing, as a user runs it, with nothing mocked:
`HARVEST_BACKEND=redis scrapy crawl ctgov` workers (the scrapy-redis
scheduler and dupefilter, `RedisFeed`), the ctgov parser, the validation and
store pipelines into PostgreSQL (`HARVEST_DB=postgresql://...`), and
`scrapy enqueue ctgov -` pushing the NCT IDs. Pages are served from a vcrpy
cassette (`VcrCassetteMiddleware`) of N study responses generated from the
bundled CT.gov study `cassettes/src/ctgov/assembled_NCT04008524.json`, one
NCT ID each; no network. Politeness delays are off (`DOWNLOAD_DELAY=0`, no
AutoThrottle), since the point is what the crawler itself can do.

Each worker loads the whole cassette before it asks Redis for work (every
worker can be handed any URL), and the work is pushed only once all workers
wait on the key, so cassette loading and process start-up are not timed. The
rate is pages / (last response of any worker - first response of any worker).
Checks: every page fetched exactly once across workers, one stored row each.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
API = "https://clinicaltrials.gov/api/v2/studies"
DATE = "Mon, 23 Nov 2026 09:00:00 GMT"
STAGING_KEY = "bench:staging"


# --------------------------------------------------------------------------
# Worker side: an extension that records when responses arrived.
class Timing:
    def __init__(self, path: str):
        self.path = path
        self.first = self.last = None
        self.responses = 0

    @classmethod
    def from_crawler(cls, crawler):
        from scrapy import signals

        ext = cls(crawler.settings.get("BENCH_TIMING_FILE"))
        crawler.signals.connect(ext.response_received, signal=signals.response_received)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        ext.stats = crawler.stats
        return ext

    def response_received(self, response, request, spider):
        now = time.time()
        if self.first is None:
            self.first = now
            self.cpu_first = _own_cpu()
        self.last = now
        self.cpu_last = _own_cpu()
        self.responses += 1

    def spider_closed(self, spider, reason):
        stats = {k: v for k, v in self.stats.get_stats().items() if isinstance(v, (int, float))}
        import resource

        Path(self.path).write_text(json.dumps({
            "first": self.first, "last": self.last, "responses": self.responses, "reason": reason,
            "cpu": self.cpu_last - self.cpu_first if self.first else 0.0,
            "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "stats": stats,
        }))


def _own_cpu() -> float:
    usage = os.times()
    return usage.user + usage.system


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def machine_busy() -> float:
    """CPU seconds all processes on the machine have used (not idle)."""
    import psutil

    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0)


def server_cpu(pid: int) -> float:
    """CPU seconds used so far by a server process and all its children,
    the exited ones included (PostgreSQL's backends end with their connection)."""
    import psutil

    proc = psutil.Process(pid)
    t = proc.cpu_times()
    total = t.user + t.system + t.children_user + t.children_system
    for child in proc.children(recursive=True):
        try:
            c = child.cpu_times()
            total += c.user + c.system
        except psutil.NoSuchProcess:
            pass
    return total


# --------------------------------------------------------------------------
# Driver side
def ncts(n: int) -> list[str]:
    return [f"NCT9{i:07d}" for i in range(n)]


def build_cassette(folder: Path, n: int) -> Path:
    from vcr.serializers import yamlserializer

    from harvester.cassette import AtomicFilesystemPersister

    template = json.loads((ROOT / "cassettes/src/ctgov/assembled_NCT04008524.json").read_text())
    requests, responses = [], []
    from vcr.request import Request as VcrRequest

    for i, nct in enumerate(ncts(n)):
        study = copy.deepcopy(template)
        ident = study["protocolSection"]["identificationModule"]
        ident["nctId"] = nct
        ident["briefTitle"] = f"{ident['briefTitle']} (copy {i})"
        requests.append(VcrRequest("GET", f"{API}/{nct}", None, {}))
        responses.append({"status": {"code": 200, "message": "OK"},
                          "headers": {"Content-Type": ["application/json"], "Date": [DATE]},
                          "body": {"string": json.dumps(study).encode()}})
    path = folder / "ctgov.yaml"
    AtomicFilesystemPersister.save_cassette(path, {"requests": requests, "responses": responses}, yamlserializer)
    return folder


def worker_env(tmp: Path, redis_url: str, db: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCRAPY_")}
    env.update(
        SCRAPY_SETTINGS_MODULE="harvester.settings",
        PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "bench"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS="",
        TLDEXTRACT_CACHE=str(tmp / "tldextract-cache"),
        HARVEST_BACKEND="redis", REDIS_URL=redis_url, HARVEST_DB=db,
    )
    return env


def run_round(k: int, n: int, cassettes: Path, tmp: Path, redis_url: str, db: str,
              concurrency: int, profile: Path | None = None, server_pids: dict | None = None) -> dict:
    import redis

    tmp.mkdir(parents=True)
    env = worker_env(tmp, redis_url, db)
    # `scrapy enqueue` pushes the NCT IDs to a staging key first, so that its
    # own run does not compete with the timed crawl for the CPUs.
    pushed = subprocess.run([sys.executable, "-m", "scrapy", "enqueue", "ctgov", "-",
                             "-s", f"REDIS_START_URLS_KEY={STAGING_KEY}"],
                            input="\n".join(ncts(n)) + "\n", cwd=tmp, env=env, capture_output=True,
                            text=True, timeout=600)
    if pushed.returncode:
        raise SystemExit(f"enqueue failed: {pushed.stderr[-2000:]}")
    extensions = json.dumps({"harvester.extensions.RunReport": 500, "scaleout.Timing": 900})
    procs, logs = [], []
    for w in range(k):
        wdir = tmp / f"w{w}"
        wdir.mkdir()
        log = open(wdir / "stderr.log", "w")
        logs.append(log)
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "scrapy", "crawl", "ctgov",
             *(["--profile", str(profile / f"{k}-workers-w{w}.prof")] if profile else []),
             "-s", f"VCR_CASSETTE={cassettes}", "-s", "ROBOTSTXT_OBEY=False",
             "-s", "DOWNLOAD_DELAY=0", "-s", "AUTOTHROTTLE_ENABLED=False",
             "-s", f"CONCURRENT_REQUESTS={concurrency}", "-s", f"CONCURRENT_REQUESTS_PER_DOMAIN={concurrency}",
             "-s", "MAX_IDLE_TIME_BEFORE_CLOSE=3", "-s", "HARVEST_REDIS_POLL_INTERVAL=0.2",
             "-s", f"EXTENSIONS={extensions}", "-s", f"BENCH_TIMING_FILE={wdir / 'timing.json'}",
             "-s", f"HARVEST_REPORT_DIR={wdir / 'reports'}", "-s", "LOG_LEVEL=INFO"],
            cwd=wdir, env=env, stdout=subprocess.DEVNULL, stderr=log))
    try:
        deadline = time.monotonic() + 600
        while not all("reading requests from redis key" in (tmp / f"w{w}" / "stderr.log").read_text()
                      for w in range(k)):
            if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
                raise SystemExit("a worker did not start:\n" + "\n".join(
                    (tmp / f"w{w}" / "stderr.log").read_text()[-2000:] for w in range(k)))
            time.sleep(0.2)
        cpu0 = {name: server_cpu(pid) for name, pid in (server_pids or {}).items()}
        busy0, wall0 = machine_busy(), time.time()
        # workers' CPU from now to their exit: their lifetime total (counted for
        # waited-for children) minus what they had used by now
        import psutil

        children0 = _children_cpu() + sum(sum(psutil.Process(p.pid).cpu_times()[:2]) for p in procs)
        with redis.Redis.from_url(redis_url) as r:
            r.rename(STAGING_KEY, "ctgov:start_urls")  # all the work at once
        for p in procs:
            p.wait(timeout=3600)
        cpu = {name: server_cpu(pid) - cpu0[name] for name, pid in (server_pids or {}).items()}
        busy, wall = machine_busy() - busy0, time.time() - wall0
        workers_cpu = _children_cpu() - children0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        for log in logs:
            log.close()
    timings = [json.loads((tmp / f"w{w}" / "timing.json").read_text()) for w in range(k)]
    per_worker = [t["responses"] for t in timings]
    played = sum(t["stats"].get("vcr/played", 0) for t in timings)
    errors = sum(t["stats"].get("log_count/ERROR", 0) for t in timings)
    inserted = sum(t["stats"].get("store/inserted", 0) for t in timings)
    with redis.Redis.from_url(redis_url) as r:
        fingerprints = r.scard("ctgov:dupefilter")
    if sum(per_worker) != n or played != n or inserted != n or fingerprints != n or errors:
        for w in range(k):
            for line in (tmp / f"w{w}" / "stderr.log").read_text().splitlines():
                if "ERROR" in line or "Error" in line:
                    print(f"w{w}: {line[:1000]}", file=sys.stderr)
        raise SystemExit(f"{k} worker(s): not every page fetched exactly once: responses {per_worker}, "
                         f"played {played}, stored {inserted}, fingerprints {fingerprints}, errors {errors}")
    first = min(t["first"] for t in timings)
    last = max(t["last"] for t in timings)
    return {"workers": k, "pages": n, "seconds": last - first, "rate": n / (last - first),
            "per_worker": per_worker,
            "spans": [(round(t["first"] - first, 2), round(t["last"] - first, 2)) for t in timings],
            "cpu_ms_per_page": {"workers": 1000 * sum(t["cpu"] for t in timings) / n,
                                **{name: 1000 * seconds / n for name, seconds in cpu.items()}},
            "max_rss_mb": max(t["max_rss_mb"] for t in timings),
            # CPU used by anything else on the machine meanwhile (other users'
            # jobs): cores busy minus the workers' and the servers'.
            "other_cores": max(0.0, (busy - workers_cpu - sum(cpu.values())) / wall)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=20_000, help="pages to crawl per round (default 20000)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts (default 1 2)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="rounds of each worker count; the best counts (default 1)")
    parser.add_argument("--concurrency", type=int, default=16, help="CONCURRENT_REQUESTS per worker (default 16)")
    parser.add_argument("--profile", type=Path, help="write each worker's cProfile stats to this directory")
    parser.add_argument("--redis-url", help="a Redis of your own (default: start one)")
    parser.add_argument("--db", help="a PostgreSQL server URL of your own, without the database "
                                     "(default: start one); a database per round is created on it")
    args = parser.parse_args(argv)
    sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

    servers, server_pids = [], {}
    try:
        if args.redis_url:
            redis_url = args.redis_url
        else:
            from _servers import RedisServer

            servers.append(RedisServer(Path(tempfile.mkdtemp(prefix="bench-redis-"))))
            redis_url = servers[-1].url
            server_pids["redis"] = servers[-1].proc.pid
        if args.db:
            import psycopg

            def new_db(name: str) -> str:
                with psycopg.connect(args.db, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
                    conn.execute(f'CREATE DATABASE "{name}"')
                return args.db.rstrip("/").rsplit("/", 1)[0] + f"/{name}"
        else:
            from _servers import PostgresServer

            servers.append(PostgresServer())
            new_db = servers[-1].new_database
            server_pids["postgres"] = int((servers[-1].data / "postmaster.pid").read_text().split()[0])
        with tempfile.TemporaryDirectory(prefix="bench-scaleout-") as tmp_name:
            tmp = Path(tmp_name)
            started = time.perf_counter()
            cassettes = build_cassette(tmp / "cassettes", args.pages)
            print(f"cassette: {args.pages} study responses, "
                  f"{(cassettes / 'ctgov.yaml').stat().st_size / 1e6:.0f} MB, "
                  f"built in {time.perf_counter() - started:.0f}s", flush=True)
            results: dict[int, list[dict]] = {k: [] for k in args.workers}
            for round_no, k in ((r, k) for r in range(1, args.rounds + 1) for k in args.workers):
                import redis

                with redis.Redis.from_url(redis_url) as r:
                    r.delete("ctgov:start_urls", "ctgov:requests", "ctgov:dupefilter")
                result = run_round(k, args.pages, cassettes, tmp / f"round-{round_no}-{k}", redis_url,
                                   new_db(f"scaleout_{round_no}_{k}"), args.concurrency, args.profile,
                                   server_pids)
                results[k].append(result)
                print(f"round {round_no}, {k} worker(s): {result['rate']:7.0f} pages/s ({result['pages']} pages in "
                      f"{result['seconds']:.1f}s; per worker {result['per_worker']}, active {result['spans']})",
                      flush=True)
                print("    CPU ms per page: " + ", ".join(f"{name} {ms:.2f}" for name, ms in
                                                         result["cpu_ms_per_page"].items())
                      + f"; worker max RSS {result['max_rss_mb']:.0f} MB; other load on the machine "
                        f"{result['other_cores']:.2f} cores", flush=True)
    finally:
        for server in servers:
            server.stop()
    best = {k: max(rs, key=lambda r: r["rate"]) for k, rs in results.items()}
    first = args.workers[0]
    for k in args.workers:
        print(f"best of {args.rounds}, {k} worker(s): {best[k]['rate']:.0f} pages/s "
              f"(other load then {best[k]['other_cores']:.2f} cores)")
    for k in args.workers[1:]:
        print(f"ratio {k} vs {first} worker(s): {best[k]['rate'] / best[first]['rate']:.2f}")
    print(f"machine: {os.cpu_count()} CPU(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
