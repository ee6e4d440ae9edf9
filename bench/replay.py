"""Replay benchmark: VcrCassetteMiddleware against Scrapy's own ceiling.

    python bench/replay.py                 # 2,000 interactions, 3 rounds
    python bench/replay.py --n 5000 --rounds 3

Generates a cassette of N interactions with 20-50 KB HTML bodies in a temporary
directory, then crawls all N URLs twice through the whole Scrapy stack, each
crawl in its own subprocess (one reactor per process):

* ``vcr``: VcrCassetteMiddleware at 950, ``VCR_RECORD_MODE=none``;
* ``canned``: a trivial middleware at 950 returning the same bodies from a dict,
  no vcrpy (what Scrapy itself can do per second on this machine).

The rate counts responses from the spider's start to its last callback, so the
cassette load (at spider_opened) is excluded; it is printed separately. The
best round of each is compared; the target is vcr/canned >= 0.8.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

HOST = "https://bench.example"
MIDDLEWARE_PRIORITY = 950
WORDS = (
    "trial study phase recruiting completed arm placebo cohort enrollment outcome "
    "primary secondary endpoint sponsor investigator eligibility criteria inclusion "
    "exclusion intervention drug device biological dose randomized masked open label"
).split()


def url(i: int) -> str:
    return f"{HOST}/study/NCT{i:08d}?view=full"


def body(i: int, base: str) -> bytes:
    """A deterministic HTML page of 20-50 KB."""
    size = 20_000 + (i * 7919) % 30_000
    start = (i * 104_729) % (len(base) - size)
    return (
        f"<!doctype html><html><head><title>NCT{i:08d}</title></head><body><main><h1>Study {i}</h1><p>"
        + base[start : start + size]
        + "</p></main></body></html>"
    ).encode("utf-8")


def base_text() -> str:
    import random

    rng = random.Random(42)
    return " ".join(rng.choice(WORDS) for _ in range(20_000))  # ~180 KB


def generate_cassette(path: Path, n: int) -> None:
    from vcr.request import Request as VcrRequest
    from vcr.serializers import yamlserializer

    from harvester.cassette import AtomicFilesystemPersister

    base = base_text()
    requests, responses = [], []
    for i in range(n):
        page = body(i, base)
        requests.append(VcrRequest("GET", url(i), None, {"Accept": "text/html", "User-Agent": "bench"}))
        responses.append(
            {
                "status": {"code": 200, "message": "OK"},
                "headers": {
                    "Content-Type": ["text/html; charset=utf-8"],
                    "Content-Length": [str(len(page))],
                    "Date": ["Mon, 23 Nov 2026 09:00:00 GMT"],
                    "Server": ["bench"],
                    "Cache-Control": ["max-age=600"],
                },
                "body": {"string": page},
            }
        )
    AtomicFilesystemPersister.save_cassette(
        path, {"requests": requests, "responses": responses}, yamlserializer
    )


# --------------------------------------------------------------------------
# Worker side (runs in a subprocess)


class CannedResponseMiddleware:
    """Returns a prebuilt body for every URL: no cassette, no vcrpy."""

    def __init__(self, n: int):
        from scrapy.http import HtmlResponse

        self._cls = HtmlResponse
        base = base_text()
        self.bodies = {url(i): body(i, base) for i in range(n)}

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler.settings.getint("BENCH_N"))

    def process_request(self, request):
        return self._cls(
            url=request.url,
            status=200,
            headers={"Content-Type": "text/html; charset=utf-8"},
            body=self.bodies[request.url],
            request=request,
            flags=["canned"],
        )


def worker(kind: str, cassette: str, n: int, out: str) -> None:
    import scrapy
    from scrapy.crawler import CrawlerProcess

    timing = {"start": None, "end": None, "responses": 0}

    class BenchSpider(scrapy.Spider):
        name = "bench"

        async def start(self):
            timing["start"] = time.perf_counter()
            for i in range(n):
                yield scrapy.Request(url(i), callback=self.parse)

        def parse(self, response):
            timing["responses"] += 1
            timing["end"] = time.perf_counter()

    settings = {
        "LOG_LEVEL": "WARNING",
        "ROBOTSTXT_OBEY": False,
        "HTTPCACHE_ENABLED": False,
        "DOWNLOAD_DELAY": 0,
        "AUTOTHROTTLE_ENABLED": False,
        "CONCURRENT_REQUESTS": 32,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 32,
        "TELNETCONSOLE_ENABLED": False,
        "BENCH_N": n,
    }
    if kind == "vcr":
        settings["DOWNLOADER_MIDDLEWARES"] = {"harvester.middlewares.VcrCassetteMiddleware": MIDDLEWARE_PRIORITY}
        settings["VCR_CASSETTE"] = cassette
        settings["VCR_RECORD_MODE"] = "none"
    else:
        settings["DOWNLOADER_MIDDLEWARES"] = {f"{__name__}.CannedResponseMiddleware": MIDDLEWARE_PRIORITY}

    process = CrawlerProcess(settings=settings)
    crawler = process.create_crawler(BenchSpider)
    process.crawl(crawler)
    process.start()

    load_seconds = 0.0
    for mw in crawler.engine.downloader.middleware.middlewares:
        load_seconds = getattr(mw, "load_seconds", load_seconds)
    stats = crawler.stats.get_stats()
    elapsed = timing["end"] - timing["start"]
    result = {
        "kind": kind,
        "responses": timing["responses"],
        "seconds": elapsed,
        "rate": timing["responses"] / elapsed,
        "load_seconds": load_seconds,
        "played": stats.get("vcr/played", 0),
        "miss": stats.get("vcr/miss", 0),
        "errors": stats.get("log_count/ERROR", 0),
    }
    try:
        import resource

        result["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    except ImportError:  # pragma: no cover - not on POSIX
        pass
    Path(out).write_text(json.dumps(result), encoding="utf-8")


def run_worker(kind: str, cassette: Path, n: int, tmp: Path) -> dict:
    out = tmp / f"{kind}-{time.monotonic_ns()}.json"
    env = dict(os.environ, TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS="")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), str(ROOT / "bench"), env.get("PYTHONPATH")]))
    cmd = [sys.executable, "-c", "import replay, sys; replay.worker(*sys.argv[1:3], int(sys.argv[3]), sys.argv[4])"]
    subprocess.run([*cmd, kind, str(cassette), str(n), str(out)], env=env, check=True, cwd=tmp)
    result = json.loads(out.read_text(encoding="utf-8"))
    if result["responses"] != n or result["errors"] or (kind == "vcr" and result["played"] != n):
        raise SystemExit(f"{kind} crawl did not answer every request: {result}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000, help="interactions in the cassette (default 2000)")
    parser.add_argument("--rounds", type=int, default=3, help="crawls of each kind; the best counts (default 3)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp_name:
        tmp = Path(tmp_name)
        cassette = tmp / "bench.yaml"
        started = time.perf_counter()
        generate_cassette(cassette, args.n)
        size_mb = cassette.stat().st_size / 1e6
        print(f"cassette: {args.n} interactions, {size_mb:.1f} MB, generated in {time.perf_counter() - started:.1f}s")

        results: dict[str, list[dict]] = {"vcr": [], "canned": []}
        for round_no in range(1, args.rounds + 1):
            for kind in ("vcr", "canned"):
                r = run_worker(kind, cassette, args.n, tmp)
                results[kind].append(r)
                extra = f", cassette load {r['load_seconds']:.2f}s" if kind == "vcr" else ""
                print(
                    f"round {round_no} {kind:6s}: {r['rate']:7.0f} responses/s "
                    f"({r['responses']} in {r['seconds']:.2f}s{extra}, max RSS {r.get('max_rss_mb', 0):.0f} MB)"
                )

    vcr_best = max(results["vcr"], key=lambda r: r["rate"])
    canned_best = max(results["canned"], key=lambda r: r["rate"])
    ratio = vcr_best["rate"] / canned_best["rate"]
    print(f"vcr replay : {vcr_best['rate']:.0f} responses/s (cassette load {vcr_best['load_seconds']:.2f}s, excluded)")
    print(f"canned     : {canned_best['rate']:.0f} responses/s (Scrapy ceiling, no vcrpy)")
    print(f"ratio      : {ratio:.2f} (target >= 0.80) {'OK' if ratio >= 0.8 else 'BELOW TARGET'}")
    median_ratio = statistics.median(r["rate"] for r in results["vcr"]) / statistics.median(
        r["rate"] for r in results["canned"]
    )
    print(f"median-round ratio: {median_ratio:.2f}")
    return 0 if ratio >= 0.8 else 1


if __name__ == "__main__":
    sys.exit(main())
