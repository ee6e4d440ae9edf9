"""Distributed crawling on a real Redis (and a real PostgreSQL store): two
`scrapy crawl ctgov` workers share one queue and one dupefilter, replaying a
cassette, and between them fetch every page once; `scrapy enqueue` turns NCT
IDs and URLs into the requests the spider itself would make."""
from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from _servers import postgres_server, redis_server  # noqa: F401  (fixtures)

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
SRC = REPO / "cassettes" / "src" / "ctgov"
API = "https://clinicaltrials.gov/api/v2/studies"
DATE = "Mon, 23 Nov 2026 09:00:00 GMT"

# `scrapy` in a subprocess with the test network guard installed: a worker
# that reaches for anything but loopback exits 97.
GUARDED_SCRAPY = """
import atexit, os, sys
from _loopback import NetworkGuard
guard = NetworkGuard().install()
def report():
    if guard.violations:
        sys.stderr.write("NETWORK VIOLATIONS: " + "; ".join(guard.violations) + "\\n")
        sys.stderr.flush()
        os._exit(97)
atexit.register(report)
sys.argv = ["scrapy", *sys.argv[1:]]
from scrapy.cmdline import execute
execute()
"""


def env_for(tmp: Path, redis_url: str | None = None, db: str | None = None, backend: str | None = "redis"):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SCRAPY_") and k not in ("HARVEST_BACKEND", "REDIS_URL", "HARVEST_DB")}
    env.update(
        SCRAPY_SETTINGS_MODULE="harvester.settings",
        PYTHONPATH=os.pathsep.join([str(REPO), str(TESTS), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS="",
        TLDEXTRACT_CACHE=str(tmp / "tldextract-cache"),
        HARVEST_DB=db or str(tmp / "harvest.sqlite3"),
    )
    if backend:
        env["HARVEST_BACKEND"] = backend
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def scrapy_cmd(*args: str) -> list[str]:
    return [sys.executable, "-c", GUARDED_SCRAPY, *args]


def run_scrapy(args: list[str], tmp: Path, env: dict, stdin: str | None = None) -> subprocess.CompletedProcess:
    tmp.mkdir(parents=True, exist_ok=True)
    return subprocess.run(scrapy_cmd(*args), cwd=tmp, env=env, input=stdin, capture_output=True, text=True,
                          timeout=120)


# ------------------------------------------------------------------ the cassette
def study(template: dict, nct: str, i: int) -> dict:
    s = copy.deepcopy(template)
    ident = s["protocolSection"]["identificationModule"]
    ident["nctId"] = nct
    ident["briefTitle"] = f"{ident['briefTitle']} (copy {i})"
    return s


def build_cassette(tmp: Path, studies: list[str], pages: int, per_page: int) -> tuple[Path, list[str]]:
    """ctgov.yaml: one API response per study in `studies`, and a search
    (`-a cond=scaleout -a page_size=<per_page>`) of `pages` pages, each
    listing `per_page` other studies and the token of the next page."""
    from urllib.parse import urlencode

    from vcr.persisters.filesystem import FilesystemPersister
    from vcr.request import Request as VcrRequest
    from vcr.serializers import yamlserializer

    template = json.loads((SRC / "assembled_NCT04008524.json").read_text())
    entries = [(f"{API}/{nct}", json.dumps(study(template, nct, i)).encode()) for i, nct in enumerate(studies)]
    for p in range(pages):
        params = {"format": "json", "pageSize": str(per_page), "query.cond": "scaleout"}
        if p:
            params["pageToken"] = f"tok{p}"
        else:
            params["countTotal"] = "true"  # a search's first page asks the API to count
        listed = [study(template, f"NCT8{p:04d}{k:03d}", k) for k in range(per_page)]
        page = {"studies": listed}
        if p + 1 < pages:
            page["nextPageToken"] = f"tok{p + 1}"
        entries.append((f"{API}?{urlencode(params)}", json.dumps(page).encode()))
    reqs = [VcrRequest("GET", url, None, {}) for url, _ in entries]
    resps = [{"status": {"code": 200, "message": "OK"},
              "headers": {"Content-Type": ["application/json"], "Date": [DATE]},
              "body": {"string": body}} for _, body in entries]
    path = tmp / "cassettes" / "ctgov.yaml"
    FilesystemPersister.save_cassette(path, {"requests": reqs, "responses": resps}, yamlserializer)
    return path.parent, [url for url, _ in entries]


CRAWLED = re.compile(r"Crawled \((\d+)\) <GET ([^>]+)>")


def crawled(log: str) -> list[str]:
    return [url for status, url in CRAWLED.findall(log)]


# ------------------------------------------------------------------------ tests
def test_two_workers_split_one_queue_each_page_fetched_once(tmp_path, redis_server, postgres_server):  # noqa: F811
    redis_server.flush()
    db = postgres_server.new_database("dist")
    ncts = [f"NCT9{i:07d}" for i in range(300)]
    pages, per_page = 10, 5
    cassettes, all_urls = build_cassette(tmp_path, ncts, pages, per_page)
    env = env_for(tmp_path, redis_server.url, db)
    worker_settings = [
        "-s", f"VCR_CASSETTE={cassettes}", "-s", "ROBOTSTXT_OBEY=False",
        "-s", "DOWNLOAD_DELAY=0", "-s", "AUTOTHROTTLE_ENABLED=False",
        # Idle time: long enough that the workers, up before any work exists,
        # still wait while `scrapy enqueue` starts on a loaded machine.
        "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=8", "-s", "MAX_IDLE_TIME_BEFORE_CLOSE=8",
        "-s", "HARVEST_REDIS_POLL_INTERVAL=0.2", "-s", "LOG_LEVEL=DEBUG",
    ]
    workers, logs = [], []
    for w in ("w1", "w2"):
        wdir = tmp_path / w
        wdir.mkdir()
        log = open(wdir / "stderr.log", "w+")
        logs.append(log)
        workers.append(subprocess.Popen(
            # Workers get the search's -a arguments: ctgov builds the next page's
            # URL from them (spider state), not from the page it read.
            scrapy_cmd("crawl", "ctgov", "-a", "cond=scaleout", "-a", f"page_size={per_page}",
                       *worker_settings, "-s", f"HARVEST_REPORT_DIR={wdir / 'reports'}"),
            cwd=wdir, env=env, stdout=subprocess.DEVNULL, stderr=log, text=True))
    try:
        # Both workers up and waiting on the empty key before any work exists.
        deadline = time.monotonic() + 60
        while not all("reading requests from redis key 'ctgov:start_urls'" in (tmp_path / w / "stderr.log").read_text()
                      for w in ("w1", "w2")):
            assert all(p.poll() is None for p in workers), [(tmp_path / w / "stderr.log").read_text()[-3000:]
                                                            for w in ("w1", "w2")]
            assert time.monotonic() < deadline, "workers did not start"
            time.sleep(0.1)
        # Work arrives: NCT IDs and a paged search through `scrapy enqueue`, a
        # few NCT IDs pushed raw (as `redis-cli rpush` would), one bad entry.
        run = run_scrapy(["enqueue", "ctgov", "-", "-a", "cond=scaleout", "-a", f"page_size={per_page}"],
                         tmp_path / "enqueue", env, stdin="\n".join(ncts[:-10]) + "\n")
        assert run.returncode == 0, run.stderr[-3000:]
        assert "pushed 291 request(s) to ctgov:start_urls" in run.stdout
        with redis_server.client() as r:
            r.rpush("ctgov:start_urls", *ncts[-10:], "no such thing")
        for p in workers:
            p.wait(timeout=90)
    finally:
        for p in workers:
            if p.poll() is None:
                p.kill()
        for log in logs:
            log.close()
    texts = [(tmp_path / w / "stderr.log").read_text() for w in ("w1", "w2")]
    for p, text in zip(workers, texts):
        assert p.returncode == 0, text[-3000:]
    reports = [json.loads((tmp_path / w / "reports" / "ctgov-latest.json").read_text()) for w in ("w1", "w2")]
    fetched = [crawled(t) for t in texts]
    print("pages fetched per worker:", [len(f) for f in fetched])

    # Every page fetched, none twice, by one worker or the other.
    assert sorted(fetched[0] + fetched[1]) == sorted(all_urls)
    assert all(f for f in fetched), "one worker did all the work"
    for report in reports:
        assert report["finish_reason"] == "finished"
        assert report["cassette_misses"] == 0
    stats = [r["stats"] for r in reports]
    assert sum(s.get("vcr/played", 0) for s in stats) == len(all_urls)
    assert sum(s.get("redis/bad_entries", 0) for s in stats) == 1
    # Both workers stored into the one PostgreSQL store: one row per study.
    assert sum(s.get("store/inserted", 0) for s in stats) == len(ncts) + pages * per_page
    from harvester.store import open_store

    with open_store(db) as store:
        assert store.count() == len(ncts) + pages * per_page
        stored = {s.record.nct_id for s in store.iter_sources()}
    assert stored == set(ncts) | {f"NCT8{p:04d}{k:03d}" for p in range(pages) for k in range(per_page)}
    # Redis: the key and the queue drained; one fingerprint per page, kept for the crawl.
    with redis_server.client() as r:
        assert r.llen("ctgov:start_urls") == 0
        assert r.zcard("ctgov:requests") == 0
        assert r.scard("ctgov:dupefilter") == len(all_urls)


def test_enqueue_turns_ncts_and_urls_into_the_spiders_requests(tmp_path, redis_server):  # noqa: F811
    redis_server.flush()
    env = env_for(tmp_path, redis_server.url)
    run = run_scrapy(["enqueue", "ctgov", "NCT02513394", "nct04008524",
                      f"{API}/NCT02186860"], tmp_path, env)
    assert run.returncode == 0, run.stderr[-3000:]
    with redis_server.client() as r:
        pushed = [json.loads(x) for x in r.lrange("ctgov:start_urls", 0, -1)]
    # what `scrapy crawl ctgov -a nct=...` requests: the study's API URL, read by parse_one
    assert pushed == [{"url": f"{API}/{n}", "callback": "parse_one", "errback": "on_error"}
                      for n in ("NCT02513394", "NCT04008524", "NCT02186860")]

    # Sites whose URLs do not follow from an NCT ID refuse it; nothing is pushed.
    run = run_scrapy(["enqueue", "medpath", "NCT02513394"], tmp_path, env)
    assert run.returncode == 2
    assert "spider 'medpath' cannot build a request from an NCT ID" in run.stderr
    run = run_scrapy(["enqueue", "veeva", "https://ctv.veeva.com/study/a-study", "NCT02513394"], tmp_path, env)
    assert run.returncode == 2 and "1 argument(s) refused" in run.stderr
    assert "spider 'veeva' cannot build a request from an NCT ID" in run.stderr
    with redis_server.client() as r:
        assert r.llen("veeva:start_urls") == 0 and r.llen("medpath:start_urls") == 0

    # Their page URLs go in as the spider's own study requests.
    run = run_scrapy(["enqueue", "veeva", "https://ctv.veeva.com/study/a-study"], tmp_path, env)
    assert run.returncode == 0, run.stderr[-3000:]
    with redis_server.client() as r:
        (entry,) = [json.loads(x) for x in r.lrange("veeva:start_urls", 0, -1)]
        assert entry["url"] == "https://ctv.veeva.com/study/a-study" and entry["callback"] == "parse_study"
        # --reset forgets a crawl: its shared queue and dupefilter
        r.sadd("ctgov:dupefilter", "fp")
        r.zadd("ctgov:requests", {"req": 0})
    run = run_scrapy(["enqueue", "ctgov", "--reset"], tmp_path, env)
    assert run.returncode == 0, run.stderr[-3000:]
    with redis_server.client() as r:
        assert not r.exists("ctgov:dupefilter") and not r.exists("ctgov:requests")
        assert r.llen("ctgov:start_urls") == 3


SHOW_SETTINGS = """
import json
from scrapy.utils.project import get_project_settings
s = get_project_settings()
print(json.dumps({k: str(s.getdict(k) if k == "SPIDER_MIDDLEWARES" else s.get(k)) for k in ("SCHEDULER", "DUPEFILTER_CLASS", "SPIDER_MIDDLEWARES",
                                              "SCHEDULER_PERSIST", "REDIS_URL")}))
"""


def test_default_settings_run_alone_redis_settings_switch_the_scheduler(tmp_path):
    def settings(backend: str | None) -> dict:
        env = env_for(tmp_path, "redis://127.0.0.1:1/0", backend=backend)
        run = subprocess.run([sys.executable, "-c", SHOW_SETTINGS], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr[-2000:]
        return json.loads(run.stdout)

    alone = settings(None)
    assert alone["SCHEDULER"] == "scrapy.core.scheduler.Scheduler"
    assert alone["DUPEFILTER_CLASS"] == "scrapy.dupefilters.RFPDupeFilter"
    assert "RedisFeed" not in alone["SPIDER_MIDDLEWARES"]
    shared = settings("redis")
    assert shared["SCHEDULER"] == "harvester.distributed.RedisScheduler"
    assert shared["DUPEFILTER_CLASS"] == "scrapy_redis.dupefilter.RFPDupeFilter"
    assert "harvester.distributed.RedisFeed" in shared["SPIDER_MIDDLEWARES"]
    assert shared["SCHEDULER_PERSIST"] == "True"
    assert shared["REDIS_URL"] == "redis://127.0.0.1:1/0"
