"""Criteria splitting and prose cleaning on the texts of the 116 real studies,
optionally head to head with an older commit's code in the same process.

    python bench/normalize_text.py [--against REV] [--passes 40]

The texts are those of `tests/data/ctgov_real/` that the CT.gov page object
hands to `harvester/normalize/criteria.py` and `text.py`: every eligibility
criteria block (`split_criteria`, the `inclusion`/`exclusion` fields; and
`clean_prose(unescape_ctgov(...))`, the `criteria_text` field), detailed
description, brief summary and outcome description. Each case prints the
best process time of one pass over its texts (`time.process_time`, best of
--passes). With --against, that commit's two modules are loaded beside the
current ones, passes alternate between them, the ratio new/old is printed,
and the outputs of both are compared (exit status 1 if any differs).
"""
from __future__ import annotations

import argparse
import gc
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import harvester.normalize.criteria as new_criteria  # noqa: E402
import harvester.normalize.text as new_text  # noqa: E402

REAL = ROOT / "tests" / "data" / "ctgov_real"


def _load_old(rev: str, where: Path):
    """The two modules as they were at `rev`, as a package of their own."""
    pkg = where / "normalize_old"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for name in ("text", "criteria"):
        src = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:harvester/normalize/{name}.py"],
                             check=True, capture_output=True, text=True).stdout
        (pkg / f"{name}.py").write_text(src)
    sys.path.insert(0, str(where))
    return importlib.import_module("normalize_old.criteria"), importlib.import_module("normalize_old.text")


def _texts() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"criteria": [], "detailed_description": [], "brief_summary": [],
                                 "outcome_description": []}
    for path in sorted(REAL.glob("NCT*.json")):
        p = orjson.loads(path.read_bytes()).get("protocolSection") or {}
        if c := (p.get("eligibilityModule") or {}).get("eligibilityCriteria"):
            out["criteria"].append(c)
        d = p.get("descriptionModule") or {}
        for key, field in (("detailedDescription", "detailed_description"), ("briefSummary", "brief_summary")):
            if d.get(key):
                out[field].append(d[key])
        for kind in ("primaryOutcomes", "secondaryOutcomes", "otherOutcomes"):
            for o in (p.get("outcomesModule") or {}).get(kind) or []:
                if o.get("description"):
                    out["outcome_description"].append(o["description"])
    return out


def _cases(criteria, text, texts):
    def prose(values):
        return lambda: [text.clean_prose(text.unescape_ctgov(v)) for v in values]
    return {
        "split_criteria (inclusion)": lambda: [criteria.split_criteria(v) for v in texts["criteria"]],
        "criteria_text": prose(texts["criteria"]),
        "detailed_description": prose(texts["detailed_description"]),
        "brief_summary": prose(texts["brief_summary"]),
        "outcome descriptions": prose(texts["outcome_description"]),
    }


def _best(fn, best: float) -> float:
    t = time.process_time()
    fn()
    return min(best, time.process_time() - t)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--against", metavar="REV", help="an older commit whose two modules run beside these")
    ap.add_argument("--passes", type=int, default=40)
    args = ap.parse_args()
    texts = _texts()
    new = _cases(new_criteria, new_text, texts)
    with tempfile.TemporaryDirectory() as tmp:
        old = _cases(*_load_old(args.against, Path(tmp)), texts) if args.against else None
        print(f"{len(texts['criteria'])} criteria blocks, {len(texts['detailed_description'])} detailed "
              f"descriptions, {len(texts['brief_summary'])} brief summaries, "
              f"{len(texts['outcome_description'])} outcome descriptions")
        print(f"{'case':28} {'now ms':>8}" + (f" {args.against[:12]:>12} {'ratio':>6}" if old else ""))
        differ = 0
        gc.disable()  # a collection landing in one pass is noise, not the code's cost
        try:
            for name, fn in new.items():
                b_new = b_old = float("inf")
                for _ in range(args.passes):
                    b_new = _best(fn, b_new)
                    if old:
                        b_old = _best(old[name], b_old)
                line = f"{name:28} {b_new * 1e3:8.3f}"
                if old:
                    same = fn() == old[name]()
                    differ += not same
                    line += f" {b_old * 1e3:12.3f} {b_new / b_old:6.3f}" + ("" if same else "  OUTPUT DIFFERS")
                print(line)
        finally:
            gc.enable()
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
