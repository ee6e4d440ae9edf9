"""HTML page -> SourceRecord throughput of the site parsers, on one core.

    python bench/html_parse.py [--seconds 2] [--rounds 3] [--min-rate 300]

Corpus: the study pages of each site's cassette (`cassettes/src/<site>/`,
pages assembled from real page text; see cassettes/README.md). Each page is
parsed again and again, in this process only, through the same pure function
the spider calls (`parse_medpath`, `parse_clinconnect`, and `parse_veeva`
when `spiders/veeva.py` exists), from a prebuilt Scrapy response, so the rate
is parsing alone: no network, no Scrapy engine, no store.

Prints pages/s per site (one core), the best and the median of `--rounds`
timed rounds, and exits with status 1 when a site's best round is below
`--min-rate` (the target: 300 pages/s per core). On a shared machine the
median moves with the other processes' load; the best round is the closest
to the parser's own cost.
"""
from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scrapy.http import HtmlResponse  # noqa: E402

SRC = ROOT / "cassettes" / "src"
DATE = "Mon, 23 Nov 2026 09:00:00 GMT"
# site -> (module, parse function)
PARSERS = {
    "medpath": ("spiders.medpath", "parse_medpath"),
    "clinconnect": ("spiders.clinconnect", "parse_clinconnect"),
    "veeva": ("spiders.veeva", "parse_veeva"),
}


def pages(site: str) -> list[HtmlResponse]:
    """The cassette's HTML study pages (status 200, text/html, not sitemaps)."""
    entries = yaml.safe_load((SRC / site / "interactions.yaml").read_text(encoding="utf-8")) or []
    out = []
    for entry in entries:
        if int(entry.get("status", 200)) != 200 or "html" not in (entry.get("content_type") or ""):
            continue
        if "body_file" not in entry:
            continue
        body = (SRC / site / entry["body_file"]).read_bytes()
        out.append(HtmlResponse(url=entry["url"], body=body,
                                headers={"Content-Type": entry["content_type"], "Date": DATE}))
    return out


def rate(parse, responses, seconds: float, rounds: int) -> tuple[list[float], int]:
    ok = 0
    for r in responses:  # warm-up, and count the pages that parse
        try:
            parse(r)
            ok += 1
        except ValueError:  # a page that is not a study (a reject); still parsed
            pass
    rates = []
    for _ in range(rounds):
        n, start = 0, time.perf_counter()
        while True:
            for r in responses:
                try:
                    parse(r)
                except ValueError:
                    pass
            n += len(responses)
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                rates.append(n / elapsed)
                break
    return rates, ok


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="time per round (default 2)")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds per site (default 3)")
    ap.add_argument("--min-rate", type=float, default=300.0, help="target pages/s per core (default 300)")
    args = ap.parse_args(argv)
    below = []
    print(f"{'site':<12} {'pages':>5} {'KB/page':>8} {'best pages/s':>13} {'median':>7}   (one core)")
    for site, (module_name, fn) in PARSERS.items():
        if not (ROOT / (module_name.replace(".", "/") + ".py")).exists() or not (SRC / site).exists():
            continue
        parse = getattr(importlib.import_module(module_name), fn)
        responses = pages(site)
        if not responses:
            continue
        rates, ok = rate(parse, responses, args.seconds, max(1, args.rounds))
        per_s, median = max(rates), statistics.median(rates)
        kb = sum(len(r.body) for r in responses) / len(responses) / 1024
        print(f"{site:<12} {len(responses):>5} {kb:>8.1f} {per_s:>13.0f} {median:>7.0f}"
              + ("" if ok == len(responses) else f"   ({len(responses) - ok} not a study page)"))
        if per_s < args.min_rate:
            below.append(site)
    if below:
        print(f"below {args.min_rate:.0f} pages/s: {', '.join(below)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
