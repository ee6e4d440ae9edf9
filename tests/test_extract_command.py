"""`scrapy extract <site> <file> [--url URL]`: a site's parser on a saved file,
offline, run as a user runs it (a subprocess in the project directory)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from _loopback import offline_env
from spiders.veeva import VeevaSpider, parse_veeva

REPO = Path(__file__).resolve().parents[1]
VEEVA = REPO / "cassettes" / "src" / "veeva"
CTGOV_STUDY = REPO / "cassettes" / "src" / "ctgov" / "study_NCT02513394.json"  # a real API v2 body
URL_003 = ("https://ctv.veeva.com/study/chimeric-antigen-receptor-car-modified-t-cell-therapy-in-"
           "treating-patients-with-acute-lymphoblastic-leukemia")


def extract(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = offline_env(tmp_path)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "scrapy", "extract", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_the_veeva_spider_reads_its_site_from_the_registry():
    from harvester.sites import site

    assert VeevaSpider.site_entry is site("veeva")
    assert VeevaSpider.name == "veeva" and VeevaSpider.allowed_domains == ["ctv.veeva.com"]


def test_extract_veeva_html_page(tmp_path):
    page = tmp_path / "page.html"
    shutil.copy(VEEVA / "seed003.html", page)
    proc = extract(tmp_path, "veeva", str(page), "--url", URL_003)
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)  # stdout is the record and nothing else
    assert record["site"] == "veeva" and record["url"] == URL_003
    assert record["nct_id"] == "NCT02186860"
    assert record["lead_sponsor"] == {"name": "Affiliated Hospital to Academy of Military Medical Sciences",
                                      "class": "OTHER"}  # by alias
    assert record["enrollment"] == {"count": 5, "type": "ESTIMATED"}
    assert len(record["eligibility"]["inclusion"]) == 12
    assert len(record["eligibility"]["exclusion"]) == 7
    assert "parsed" in proc.stderr  # logs go to stderr
    assert proc.stdout.startswith("{\n  \"site\"")  # indent 2


def test_extract_veeva_text_file_defaults_to_the_file_url(tmp_path):
    page = tmp_path / "seed002.txt"
    shutil.copy(VEEVA / "text" / "seed002.txt", page)
    proc = extract(tmp_path, "veeva", str(page))
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert record["url"] == page.resolve().as_uri()
    assert record["nct_id"] is None
    assert record["enrollment"] == {"count": 28, "type": None}
    assert {"field": "enrollment", "kind": "in_page_disagreement"} in [
        {"field": n["field"], "kind": n["kind"]} for n in record["notes"]]


def test_extract_ctgov_study_body(tmp_path):
    study = json.loads(CTGOV_STUDY.read_text(encoding="utf-8"))
    proto = study["protocolSection"]
    small = {"protocolSection": {k: proto[k] for k in (
        "identificationModule", "statusModule", "sponsorCollaboratorsModule", "conditionsModule",
        "designModule", "eligibilityModule")}, "hasResults": True}
    body = tmp_path / "NCT02513394.json"
    body.write_text(json.dumps(small, indent=2), encoding="utf-8")
    proc = extract(tmp_path, "ctgov", str(body))
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    # values as the saved API body prints them
    assert record["site"] == "ctgov"
    assert record["nct_id"] == "NCT02513394"
    assert record["url"] == "https://clinicaltrials.gov/api/v2/studies/NCT02513394"
    assert record["brief_title"] == "PALbociclib CoLlaborative Adjuvant Study"
    assert record["overall_status"] == "ACTIVE_NOT_RECRUITING"
    assert record["phases"] == ["PHASE3"]
    assert record["enrollment"] == {"count": 5796, "type": "ACTUAL"}
    assert record["lead_sponsor"] == {"name": "Alliance Foundation Trials, LLC.", "class": "OTHER"}
    assert {"id": "AFT-05", "kind": "ORG", "domain": "Alliance Foundation Trials, LLC."} in record["secondary_ids"]


def test_parse_error_exits_1_with_the_reason(tmp_path):
    proc = extract(tmp_path, "veeva", str(VEEVA / "not-a-study-page.html"))
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "not a Veeva study page" in proc.stderr


def test_bad_arguments_exit_1(tmp_path):
    proc = extract(tmp_path, "no-such-site", str(VEEVA / "seed003.html"))
    assert proc.returncode == 1 and "unknown site 'no-such-site'" in proc.stderr and "veeva" in proc.stderr
    proc = extract(tmp_path, "veeva", str(tmp_path / "missing.html"))
    assert proc.returncode == 1 and "no such file" in proc.stderr
    proc = extract(tmp_path, "veeva")
    assert proc.returncode != 0 and "<site> <file>" in proc.stderr
