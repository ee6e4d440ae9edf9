"""A fifth site that touches nothing else: `tests/fifth_site/` declares
ClinicalTrials.gov's classic study page (its page object, its registry
entry, its spider), this file builds its cassette from the real page text
of seed 001, and `scrapy extract` and `scrapy harvest --offline` run it with
`-s SPIDER_MODULES=spiders,fifth_site`, no file outside tests/ edited.

Expected values read by hand from `tests/fifth_site/seed001.txt`:
"ClinicalTrials.gov Identifier: NCT04008524", "Expanded Access Status :
Available", "Study Type : | Expanded Access |", "Sexes Eligible for Study: |
All |", "Last Update Posted : August 3, 2022", "Other Study ID Numbers: |
HY001502 |", four exclusion criteria."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from vcr.persisters.filesystem import FilesystemPersister
from vcr.request import Request
from vcr.serializers import yamlserializer

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
PAGE = TESTS / "fifth_site" / "seed001.txt"
URL = "https://classic.clinicaltrials.gov/ct2/show/NCT04008524"
TITLE = "A Clinical Study of CAR-T Cells in the Treatment of Relapsed and Refractory Hematological Malignancies"

_spec = importlib.util.spec_from_file_location("cassette_build", REPO / "cassettes" / "build.py")
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)


def cassettes_with_the_fifth_site(tmp: Path) -> Path:
    """The bundled cassettes, and the fifth site's: its study page served as
    the plain text it was saved as, with the replay date every cassette has."""
    folder = tmp / "cassettes"
    folder.mkdir()
    for yaml_file in (REPO / "cassettes").glob("*.yaml"):
        shutil.copy(yaml_file, folder)
    responses = [{"status": {"code": 200, "message": "OK"},
                  "headers": {"Date": [build.REPLAY_DATE], "Content-Type": ["text/plain; charset=utf-8"]},
                  "body": {"string": PAGE.read_bytes()}}]
    FilesystemPersister.save_cassette(folder / "ctgov_classic.yaml",
                                      {"requests": [Request("GET", URL, None, {})], "responses": responses},
                                      yamlserializer)
    return folder


def scrapy(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCRAPY_") and k != "HARVEST_DB"}
    env.update(SCRAPY_SETTINGS_MODULE="harvester.settings", HARVEST_DB=str(tmp / "harvest.sqlite3"),
               PYTHONPATH=os.pathsep.join([str(REPO), str(TESTS), env.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "scrapy", *args, "-s", "SPIDER_MODULES=spiders,fifth_site",
                           "-s", f"HARVEST_REPORT_DIR={tmp / 'reports'}"],
                          cwd=tmp, env=env, capture_output=True, text=True, timeout=300)


def test_the_fifth_site_is_in_the_registry_only_when_its_module_is_named():
    from scrapy.settings import Settings

    from harvester.sites import default_precedence, sites

    assert "ctgov_classic" not in sites()
    registry = sites(Settings({"SPIDER_MODULES": ["spiders", "fifth_site"]}))
    assert list(registry)[-1] == "ctgov_classic"  # rank 40: after the four sites
    assert default_precedence(registry)["*"][-1] == "ctgov_classic"


def test_scrapy_extract_reads_the_fifth_site(tmp_path):
    run = scrapy(tmp_path, "extract", "ctgov_classic", str(PAGE), "--url", URL)
    assert run.returncode == 0, run.stderr[-3000:]
    r = json.loads(run.stdout)
    assert (r["site"], r["nct_id"], r["brief_title"]) == ("ctgov_classic", "NCT04008524", TITLE)
    assert r["official_title"] == TITLE
    assert (r["overall_status"], r["study_type"]) == ("AVAILABLE", "EXPANDED_ACCESS")
    assert r["eligibility"]["sex"] == "ALL"
    assert r["last_update_posted"] == "2022-08-03"
    assert r["secondary_ids"] == [{"id": "HY001502", "kind": "ORG", "domain": None}]
    assert len(r["eligibility"]["exclusion"]) == 4
    assert r["eligibility"]["exclusion"][0] == ("Patients who are positive for any of HIV antibody, TP antibody, "
                                               "HBsAg and HCV antibody.")
    assert r["raw"] == {"overall_status": "Available"} and r["notes"] == []


def test_the_offline_harvest_crawls_and_reconciles_the_fifth_site(tmp_path):
    cassettes = cassettes_with_the_fifth_site(tmp_path)
    run = scrapy(tmp_path, "harvest", "--offline", "-O", "canonical.jsonl", "-s", f"VCR_CASSETTE={cassettes}")
    assert run.returncode == 0, run.stderr[-3000:]
    trials = {t["nct_id"]: t for t in map(json.loads, (tmp_path / "canonical.jsonl").read_text().splitlines())}
    trial = trials["NCT04008524"]
    sources = {s["site"]: s["url"] for s in trial["sources"]}
    assert sources["ctgov_classic"] == URL and "ctgov" in sources
    # the registry of record still comes first; the classic page agrees with it
    assert trial["overall_status"]["site"] == "ctgov" and trial["overall_status"]["value"] == "AVAILABLE"
    assert not [c for c in trial["conflicts"] if c["field"] in ("overall_status", "study_type", "brief_title")]
    report = json.loads((tmp_path / "reports" / "ctgov_classic-latest.json").read_text())
    assert not report["failed"] and report["items"] == 1
