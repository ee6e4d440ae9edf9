"""Reconcile benchmark: a synthetic store of N trials -> canonical JSONL.

    python bench/reconcile.py                  # 500,000 trials
    python bench/reconcile.py --trials 20000   # a quick run
    python bench/reconcile.py --db big.sqlite3 --keep   # reuse the store next time

Generates (untimed, bulk inserts in one transaction) a SQLite store in the
project's schema with up to four sources per trial -- ctgov always, veeva,
medpath and clinconnect each on a share of the trials -- with the
disagreements real sites have: the sponsor spelled differently (case, legal
suffix, parenthesised place), a planned enrollment against CT.gov's actual
one, a field a site does not print, a different phase on some pages, partial
dates. About 0.1% extra pages carry no NCT ID (half of them copies of a known
trial's title, sponsor and conditions, half unrelated) so linking runs too.

Then times `harvester.reconciliation.reconcile` over the store into a JSONL
file (in a subprocess, so the figures are the reconcile's alone) and prints
wall time, peak RSS, output size and the summary. Targets for 500,000
trials on a 2-core machine: <= 5 minutes, <= 1.5 GB.
"""
from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGET_SECONDS = 300
TARGET_RSS_MB = 1536

FETCHED = {
    "ctgov": "2026-11-20T08:00:00Z",
    "veeva": "2026-11-21T09:30:00Z",
    "medpath": "2026-11-19T14:00:00Z",
    "clinconnect": "2026-11-22T07:15:00Z",
}
# A Zipf-distributed vocabulary, like titles and conditions are: a few words
# in many trials ("cancer", "cells"), most in a handful.
_SYLLABLES = ("ba ce di fo gu ka le mi no pu ra se ti vo zu lym pho ma cyt tum or gen vir "
              "cell ox an ter mab nib zol tin pro lin dex cor neu rho hep").split()
WORDS = sorted({"".join(random.Random(i).choices(_SYLLABLES, k=random.Random(-i).randint(2, 4)))
                for i in range(40_000)})
_CUM = list(itertools.accumulate(1.0 / (r + 1) for r in range(len(WORDS))))
GENERIC = "a study of in with for the and patients phase trial treatment to".split()
SPONSORS = ["PersonGen BioTherapeutics (Suzhou) Co., Ltd.", "Shanxi Bethune Hospital",
            "Institute of Hematology & Blood Diseases Hospital",
            "Affiliated Hospital to Academy of Military Medical Sciences", "Alliance Foundation Trials, LLC."]
SPONSORS += [" ".join(random.Random(f"s{i}").sample(WORDS[:3000], 2)).title() + " " +
             random.Random(f"t{i}").choice(["University", "Hospital", "Pharmaceuticals", "Inc.", "Research Center"])
             for i in range(6000)]
_SPONSOR_CUM = list(itertools.accumulate(1.0 / (r + 1) for r in range(len(SPONSORS))))
STATUS = ["RECRUITING", "COMPLETED", "UNKNOWN", "ACTIVE_NOT_RECRUITING", "NOT_YET_RECRUITING", "TERMINATED"]
PHASES = [["PHASE1"], ["PHASE2"], ["PHASE1", "PHASE2"], ["PHASE3"], ["EARLY_PHASE1"], []]


def words(rng: random.Random, n: int) -> list[str]:
    return rng.choices(WORDS, cum_weights=_CUM, k=n)


def sponsor(rng: random.Random) -> str:
    return rng.choices(SPONSORS, cum_weights=_SPONSOR_CUM, k=1)[0]


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(words(rng, n)).capitalize() + "."


def paragraph(rng: random.Random, sentences: int) -> str:
    return " ".join(sentence(rng, rng.randint(8, 20)) for _ in range(sentences))


def base_trial(rng: random.Random, n: int) -> dict:
    nct = f"NCT{n:08d}"
    title = " ".join(w for pair in zip(words(rng, rng.randint(4, 8)), rng.choices(GENERIC, k=8)) for w in pair)
    title = title.title()
    start = f"{rng.randint(2005, 2025)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    lo = rng.choice([None, 18.0, 14.0, 3.0, 0.5])
    hi = rng.choice([None, 65.0, 70.0, 85.0, 18.0]) if lo is None or lo < 18 else rng.choice([None, 65.0, 85.0])
    inclusion = [sentence(rng, rng.randint(6, 18)) for _ in range(rng.randint(4, 10))]
    exclusion = [sentence(rng, rng.randint(6, 18)) for _ in range(rng.randint(3, 8))]
    return {
        "nct_id": nct,
        "brief_title": title,
        "official_title": title + " " + sentence(rng, 6),
        "overall_status": rng.choice(STATUS),
        "phases": rng.choice(PHASES),
        "study_type": "INTERVENTIONAL",
        "enrollment": {"count": rng.randint(5, 900), "type": rng.choice(["ACTUAL", "ESTIMATED"])},
        "conditions": sorted({" ".join(words(rng, 2)).title() for _ in range(rng.randint(1, 3))}),
        "interventions": [{"type": "BIOLOGICAL", "name": words(rng, 1)[0].upper() + "-T cells"}],
        "lead_sponsor": {"name": sponsor(rng), "class": "OTHER"},
        "collaborators": [],
        "start_date": start,
        "primary_completion_date": f"{int(start[:4]) + 2}-{start[5:7]}",
        "completion_date": f"{int(start[:4]) + 3}-{start[5:7]}",
        "eligibility": {
            "sex": "ALL", "min_age_years": lo, "max_age_years": hi,
            "age_text": f"{lo or 'N/A'} Years to {hi or 'N/A'} Years", "healthy_volunteers": False,
            "inclusion": inclusion, "exclusion": exclusion,
            "criteria_text": "Inclusion Criteria:\n" + "\n".join(inclusion) + "\nExclusion Criteria:\n" + "\n".join(exclusion),
        },
        "locations": [{"facility": sponsor(rng), "city": rng.choice(["Suzhou", "Tianjin", "Boston", "Paris"]),
                       "state": None, "country": rng.choice(["China", "United States", "France"]), "status": None}
                      for _ in range(rng.randint(1, 4))],
        "brief_summary": paragraph(rng, 3),
        "detailed_description": paragraph(rng, 5) if rng.random() < 0.6 else None,
        "primary_outcomes": [{"measure": sentence(rng, 4), "time_frame": "3 months", "description": sentence(rng, 10)}],
        "secondary_outcomes": [{"measure": sentence(rng, 4), "time_frame": "1 year", "description": None}],
        "last_update_posted": f"{rng.randint(2019, 2026)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "secondary_ids": [{"id": f"ORG-{n}", "kind": "ORG", "domain": None}],
    }


def record(site: str, url: str, fields: dict, notes=()) -> dict:
    out = {
        "site": site, "url": url, "fetched_at": FETCHED[site], "nct_id": None, "secondary_ids": [],
        "brief_title": None, "official_title": None, "overall_status": None, "phases": [], "study_type": None,
        "enrollment": None, "conditions": [], "interventions": [], "lead_sponsor": None, "collaborators": [],
        "start_date": None, "primary_completion_date": None, "completion_date": None,
        "eligibility": {"sex": None, "min_age_years": None, "max_age_years": None, "age_text": None,
                        "healthy_volunteers": None, "inclusion": [], "exclusion": [], "criteria_text": None},
        "locations": [], "brief_summary": None, "detailed_description": None, "lay_summary": None,
        "primary_outcomes": [], "secondary_outcomes": [], "last_update_posted": None, "raw": {},
        "notes": list(notes), "content_hash": None,
    }
    for k, v in fields.items():
        if k == "eligibility":
            out["eligibility"].update(v)
        else:
            out[k] = v
    out["content_hash"] = hashlib.sha256(orjson.dumps(out, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return out


def respell(rng: random.Random, name: str) -> str:
    return rng.choice([name.upper(), name + " Co., Ltd.", name.replace(" (", " ("), name + " (Beijing)", name])


def site_records(rng: random.Random, t: dict) -> list[dict]:
    nct = t["nct_id"]
    elig = t["eligibility"]
    out = [record("ctgov", f"https://clinicaltrials.gov/api/v2/studies/{nct}", t)]
    if rng.random() < 0.6:
        enrollment = dict(t["enrollment"])
        if rng.random() < 0.3:  # the site shows the planned figure next to CT.gov's actual one
            enrollment = {"count": enrollment["count"] + rng.randint(1, 20), "type": "ESTIMATED"}
        fields = {k: t[k] for k in ("nct_id", "brief_title", "overall_status", "study_type", "conditions",
                                    "interventions", "brief_summary", "detailed_description")}
        fields["phases"] = t["phases"] if rng.random() < 0.9 else []  # a field the page does not print
        fields["lead_sponsor"] = {"name": respell(rng, t["lead_sponsor"]["name"]), "class": None}
        fields["enrollment"] = enrollment
        fields["secondary_ids"] = [{"id": nct, "kind": "NCT", "domain": None}, t["secondary_ids"][0]]
        fields["eligibility"] = {k: elig[k] for k in ("sex", "min_age_years", "max_age_years", "inclusion",
                                                      "exclusion", "healthy_volunteers")}
        fields["eligibility"]["age_text"] = f"{elig['min_age_years']} to {elig['max_age_years']} years old"
        slug = "-".join(t["brief_title"].lower().split()[:8])
        out.append(record("veeva", f"https://ctv.veeva.com/study/{slug}-{nct[-5:]}", fields))
    if rng.random() < 0.4:
        phases = t["phases"]
        if rng.random() < 0.05:  # a different phase on the page
            phases = ["PHASE2"] if phases != ["PHASE2"] else ["PHASE3"]
        fields = {k: t[k] for k in ("nct_id", "brief_title", "overall_status", "study_type", "conditions",
                                    "brief_summary", "primary_outcomes", "locations")}
        fields.update(phases=phases, lead_sponsor=t["lead_sponsor"],
                      enrollment={"count": t["enrollment"]["count"], "type": None},
                      start_date=t["start_date"][:7])
        fields["eligibility"] = {"min_age_years": elig["min_age_years"], "max_age_years": elig["max_age_years"],
                                 "inclusion": elig["inclusion"], "exclusion": elig["exclusion"]}
        out.append(record("medpath", f"https://trial.medpath.com/clinical-trial/{nct.lower()}/x", fields))
    if rng.random() < 0.3:
        fields = {k: t[k] for k in ("nct_id", "brief_title", "overall_status")}
        fields.update(lay_summary=paragraph(rng, 4), lead_sponsor={"name": t["lead_sponsor"]["name"].upper(), "class": None},
                      start_date=t["start_date"])
        fields["eligibility"] = {"sex": "ALL", "min_age_years": elig["min_age_years"], "max_age_years": elig["max_age_years"]}
        notes = [{"field": "enrollment", "kind": "in_page_disagreement", "detail": "20 in the text, 28 in the design"}] \
            if rng.random() < 0.05 else []
        out.append(record("clinconnect", f"https://clinconnect.io/trials/{nct}", fields, notes))
    return out


def nctless_record(rng: random.Random, i: int, known: dict | None) -> dict:
    if known:  # a page of a known trial that does not print its NCT ID
        fields = {"brief_title": known["brief_title"], "lead_sponsor": known["lead_sponsor"],
                  "conditions": known["conditions"], "overall_status": known["overall_status"],
                  "eligibility": {"min_age_years": known["eligibility"]["min_age_years"],
                                  "max_age_years": known["eligibility"]["max_age_years"]},
                  "lay_summary": paragraph(rng, 3)}
    else:
        fields = {"brief_title": "A Study of " + words(rng, 1)[0].title(),
                  "lead_sponsor": {"name": sponsor(rng), "class": None}, "lay_summary": paragraph(rng, 3)}
    return record("clinconnect", f"https://clinconnect.io/trials/nctless-{i}", fields)


def generate(path: Path, trials: int, seed: int = 7) -> int:
    from harvester.store import Store
    from harvester.store_base import compress, link_fields_json, record_contract, record_json
    from items import SourceRecord

    rng = random.Random(seed)
    contract = record_contract()
    store = Store(path)
    conn = store.conn
    now = "2026-11-23T09:00:00+00:00"
    rows = 0
    batch: list[tuple] = []
    kept: list[dict] = []

    def add(rec: dict) -> None:
        # stored as the store writes a record: validated, serialized, under today's contract
        nonlocal rows
        validated = SourceRecord.model_validate(rec)
        batch.append((rec["site"], rec["url"], rec["nct_id"], rec["fetched_at"], rec["content_hash"], None,
                      compress(record_json(validated)), None, now, now, now, None, contract,
                      link_fields_json(validated)))
        rows += 1
        if len(batch) >= 20_000:
            flush()

    def flush() -> None:
        conn.executemany("INSERT INTO sources (site, url, nct_id, fetched_at, content_hash, body_hash, record,"
                         " body, first_seen_at, last_seen_at, updated_at, removed_at, contract, link_fields)"
                         " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", batch)
        batch.clear()

    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    for n in range(1, trials + 1):
        t = base_trial(rng, 1_000_000 + n * 7)
        for rec in site_records(rng, t):
            add(rec)
        if rng.random() < 0.0005:
            kept.append(t)
    for i in range(max(2, trials // 1000)):
        add(nctless_record(rng, i, kept[i % len(kept)] if kept and i % 2 == 0 else None))
    flush()
    conn.execute("COMMIT")
    store.close()
    return rows


def run_reconcile(db: str, out: str, unlinked: str) -> dict:
    """In this (fresh) process: time reconcile, report peak RSS."""
    from harvester.reconciliation import reconcile
    from harvester.store import Store

    start = time.perf_counter()
    with Store(db) as store, open(out, "wb") as fh, open(unlinked, "wb") as uf:
        summary = reconcile(store, fh, uf, None)
    wall = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"wall_s": round(wall, 1), "peak_rss_mb": round(peak_kb / 1024), "summary": summary.as_stats()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=500_000)
    ap.add_argument("--db", help="store path (default: a temporary file)")
    ap.add_argument("--keep", action="store_true", help="keep the store and the output")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        db, out, unlinked = json.loads(args.child)
        print(json.dumps(run_reconcile(db, out, unlinked)))
        return 0

    tmp = Path(tempfile.mkdtemp(prefix="bench-reconcile-"))
    db = Path(args.db) if args.db else tmp / "store.sqlite3"
    if not db.exists():
        t0 = time.perf_counter()
        rows = generate(db, args.trials)
        print(f"generated {args.trials:,} trials, {rows:,} pages in {time.perf_counter() - t0:.0f} s "
              f"({db.stat().st_size / 2**20:.0f} MB)", flush=True)
    else:
        print(f"reusing {db}", flush=True)
    out, unlinked = tmp / "canonical.jsonl", tmp / "unlinked.jsonl"
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps([str(db), str(out), str(unlinked)])],
                          capture_output=True, text=True, cwd=str(ROOT))
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        return proc.returncode
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"reconcile: {result['wall_s']} s wall, peak RSS {result['peak_rss_mb']} MB, "
          f"output {out.stat().st_size / 2**20:.0f} MB")
    for k, v in result["summary"].items():
        print(f"  {k}: {v:,}")
    ok = result["wall_s"] <= TARGET_SECONDS * args.trials / 500_000 and result["peak_rss_mb"] <= TARGET_RSS_MB
    print("within target" if ok else "OVER TARGET", f"(<= {TARGET_SECONDS * args.trials / 500_000:.0f} s, "
          f"<= {TARGET_RSS_MB} MB)")
    if not args.keep:
        for p in (out, unlinked) + (() if args.db else (db, Path(str(db) + "-wal"), Path(str(db) + "-shm"))):
            if p.exists():
                p.unlink()
        if not args.db:
            try:
                tmp.rmdir()
            except OSError:
                pass
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
