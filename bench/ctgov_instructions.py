"""Instructions per pass of the CT.gov parser, counted by valgrind: the one
figure a shared machine does not disturb.

    python bench/ctgov_instructions.py [--corpus real] [--passes 5] [--against REV ...]

Each tree is run twice under `valgrind --tool=cachegrind --cache-sim=no`:
once with no measured pass and once with --passes passes of exactly what
`bench/ctgov_parse.py` times (`orjson.loads` + `parse_study` of each body, one
warm pass first in both runs). The difference of the two "I refs" totals over
--passes is what one pass costs, imports and start-up taken out. PYTHONHASHSEED
is fixed, so a tree gives the same count run after run (to a few thousand
instructions).

With --against, each REV is checked out in a temporary worktree and counted the
same way, on this tree's corpus (an older commit may not have
`tests/data/ctgov_real/`); only its `spiders.ctgov.parse_study` is called.
`--plain` counts `orjson.loads` alone (the bench ratio's denominator).
`--cold` empties, before each pass, everything the converters remember (each
`cache_clear` in `spiders.*` and `harvester.normalize.*`): the bench rereads
the same studies, so from its second pass on every cleaned string, date and
age is a hit, which a crawl of new studies does not get.

Instructions are not time: memory traffic (a garbage collection walking the
heap, cache misses) costs more per instruction than the converters' loops.
Quote both: this for a change too small for the noise of process time, and
`bench/ctgov_parse.py` for the rate. Needs valgrind (`apt install valgrind`);
one count of the real corpus takes about a minute.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from ctgov_parse import CORPORA, FETCHED  # noqa: E402  (the bench's own corpora, beside this script)

# Run by valgrind's python: TREE N CORPUS_DIR PATTERN PLAIN FETCHED COLD
RUNNER = """
import sys
from pathlib import Path
tree, n, where, pattern, plain, fetched, cold = (sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4],
                                                 sys.argv[5] == "1", sys.argv[6], sys.argv[7] == "1")
sys.path.insert(0, tree)
import orjson
from spiders.ctgov import parse_study
bodies = [p.read_bytes() for p in sorted(where.glob(pattern))]
if plain:
    def one(body):
        orjson.loads(body)
else:
    def one(body):
        parse_study(orjson.loads(body), fetched=fetched)
for body in bodies:
    one(body)
forget = []
if cold:
    # What the converters remember (lru_cache, or anything else with a
    # cache_clear), found once so that a pass pays only for emptying it.
    for name, module in list(sys.modules.items()):
        if name.startswith(("spiders.", "harvester.normalize.")):
            for value in vars(module).values():
                clear = None if isinstance(value, type) else getattr(value, "cache_clear", None)
                if callable(clear) and clear not in forget:
                    forget.append(clear)
    print("forgotten before each pass:", len(forget), file=sys.stderr)
for _ in range(n):
    for clear in forget:
        clear()
    for body in bodies:
        one(body)
"""

_IREFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def count(tree: Path, passes: int, corpus: str, plain: bool, cold: bool = False) -> int:
    _, where, pattern = CORPORA[corpus]
    env = dict(os.environ, PYTHONHASHSEED="0")
    totals = []
    for n in (0, passes):
        run = subprocess.run(
            ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
             sys.executable, "-c", RUNNER, str(tree), str(n), str(where), pattern, "1" if plain else "0", FETCHED,
             "1" if cold else "0"],
            capture_output=True, text=True, env=env)
        m = _IREFS.search(run.stderr)
        if run.returncode or not m:
            sys.exit(f"valgrind run of {tree} failed (exit {run.returncode}):\n{run.stderr[-2000:]}")
        totals.append(int(m.group(1).replace(",", "")))
    return (totals[1] - totals[0]) // passes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", choices=sorted(CORPORA), default="real")
    ap.add_argument("--passes", type=int, default=5)
    ap.add_argument("--against", action="append", default=[], metavar="REV",
                    help="also count this commit (repeatable)")
    ap.add_argument("--plain", action="store_true", help="orjson.loads alone, no parse")
    ap.add_argument("--cold", action="store_true",
                    help="every value the converters remember forgotten before each pass")
    args = ap.parse_args()
    if not shutil.which("valgrind"):
        sys.exit("valgrind is not installed (apt install valgrind)")
    rows = [("this tree", ROOT)]
    with tempfile.TemporaryDirectory() as tmp:
        for rev in args.against:
            where = Path(tmp) / re.sub(r"\W", "_", rev)
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(where), rev],
                           check=True, capture_output=True)
            rows.append((rev, where))
        try:
            print(f"{'tree':20} {'instructions a pass':>20}  ({args.corpus}, "
                  f"{'orjson.loads' if args.plain else 'orjson.loads + parse_study'}{', cold' if args.cold else ''})")
            for name, tree in rows:
                print(f"{name:20} {count(tree, args.passes, args.corpus, args.plain, args.cold):20,}", flush=True)
        finally:
            for name, tree in rows[1:]:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                               capture_output=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
