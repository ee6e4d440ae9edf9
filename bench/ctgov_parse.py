"""API v2 study JSON -> SourceRecord throughput, beside the plain JSON-parse
rate of the same bytes, in one run, on one core.

    python bench/ctgov_parse.py [--seconds 3]

Corpus: the studies in the ctgov cassette sources: the real PALLAS study
(1.5 MB, 437 locations, results) and the three records assembled from page
text (3-4 KB each, the size of a typical study's protocolSection). Rates are
printed per corpus, because one PALLAS weighs as much as ~400 typical studies.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spiders.ctgov import parse_study  # noqa: E402

SRC = ROOT / "cassettes" / "src" / "ctgov"
FETCHED = "2026-11-23T09:00:00Z"


def rate(fn, bodies: list[bytes], seconds: float) -> float:
    n, start = 0, time.perf_counter()
    while True:
        for body in bodies:
            fn(body)
        n += len(bodies)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n / elapsed


def full(body: bytes):
    return parse_study(orjson.loads(body), fetched=FETCHED)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    corpora = {
        "typical (3 assembled studies)": [p.read_bytes() for p in sorted(SRC.glob("assembled_*.json"))],
        "PALLAS (1.5 MB, real)": [(SRC / "study_NCT02513394.json").read_bytes()],
    }
    print(f"{'corpus':32} {'json.loads/s':>13} {'orjson/s':>10} {'-> SourceRecord/s':>18} {'ratio':>6}")
    for name, bodies in corpora.items():
        plain = rate(json.loads, bodies, args.seconds)
        fast = rate(orjson.loads, bodies, args.seconds)
        parsed = rate(full, bodies, args.seconds)
        print(f"{name:32} {plain:13,.0f} {fast:10,.0f} {parsed:18,.0f} {parsed / fast:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
