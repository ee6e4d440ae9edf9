"""The CT.gov candidate lookup that online linking uses: offline it never
leaves the process (replayed from the cassette, or a counted miss), online it
honours Retry-After and backs off, and a recorded lookup replays. Servers are
real, on 127.0.0.1."""
from __future__ import annotations

import json
import subprocess
import sys
import urllib.error

import pytest
from _fakesite import GUARDED_SCRAPY, REPO, env_for
from pytest_httpserver import HTTPServer
from test_linking import API_CANDIDATE, STUDY_JSON, TITLE_000, run, seed_000, seed_001
from werkzeug import Response

from harvester.reconciliation.ctgov_candidates import CtgovCandidateClient


@pytest.fixture
def httpserver():
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    try:
        yield server
    finally:
        server.clear()
        server.stop()


def test_offline_harvest_with_online_linking_sends_nothing_off_the_machine(tmp_path):
    # GUARDED_SCRAPY exits 97 at any connection or name lookup off loopback
    cmd = [sys.executable, "-c", GUARDED_SCRAPY, "harvest", "--offline", "-O", str(tmp_path / "canonical.jsonl"),
           "-s", "HARVEST_LINK_ONLINE=1", "-s", f"HARVEST_REPORT_DIR={tmp_path / 'reports'}",
           "-s", f"HARVEST_BASELINE_DIR={tmp_path / 'baselines'}"]
    proc = subprocess.run(cmd, cwd=REPO, env=env_for(tmp_path), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    unlinked = {row["url"]: row["reason"] for row in map(json.loads, (tmp_path / "unlinked.jsonl").open())}
    # the bundled clinconnect page printing no NCT ID: its lookup is not recorded, so it stays unlinked, saying why
    reason = unlinked["https://clinconnect.io/trials/seed-000"]
    assert "CT.gov candidate lookup failed: the candidate lookup is not in the cassette" in reason
    assert "(record mode none)" in reason


def test_a_recorded_lookup_replays_from_the_cassette_without_the_server(httpserver, tmp_path):
    httpserver.expect_request("/api/v2/studies").respond_with_json(STUDY_JSON)
    cassette = tmp_path / "ctgov.yaml"
    recording = {"HARVEST_LINK_ONLINE": True, "HARVEST_LINK_API_URL": httpserver.url_for("/api/v2/studies"),
                 "VCR_CASSETTE": str(tmp_path) + "/", "VCR_RECORD_MODE": "new_episodes",
                 "USER_AGENT": "harvester/0.1 (+mailto:ops@example.org)"}
    trials, unlinked, _ = run([seed_001(), seed_000()], recording)
    assert unlinked == [] and trials["NCT03000000"]["sources"][0]["link"]["method"] == "fuzzy_api"
    assert len(httpserver.log) == 1
    text = cassette.read_text(encoding="utf-8")
    assert "query.titles=" in text and "NCT03000000" in text
    assert "ops@example.org" not in text and "User-Agent" not in text  # the contact is never stored

    httpserver.clear()  # any request now would get a 500 and be logged
    replaying = {**recording, "VCR_RECORD_MODE": "none"}
    trials, unlinked, summary = run([seed_001(), seed_000()], replaying)
    assert unlinked == [] and trials["NCT03000000"]["sources"][0]["link"]["method"] == "fuzzy_api"
    assert httpserver.log == [] and summary.api_errors == 0


def test_live_lookup_waits_retry_after_then_backs_off_then_reads(httpserver):
    url = httpserver.url_for("/api/v2/studies")
    httpserver.expect_ordered_request("/api/v2/studies").respond_with_response(
        Response("slow down", status=429, headers={"Retry-After": "7"}))
    httpserver.expect_ordered_request("/api/v2/studies").respond_with_response(Response("down", status=503))
    httpserver.expect_ordered_request("/api/v2/studies").respond_with_json(STUDY_JSON)
    waits = []
    client = CtgovCandidateClient(url, timeout=5, retries=3, backoff_base=0.5, retry_after_max=120,
                                  sleep=waits.append)
    assert client(TITLE_000, "SHANXI BETHUNE HOSPITAL") == [API_CANDIDATE]
    assert client.requests == 3
    assert waits[0] == 7.0  # the server's Retry-After
    assert 0.75 <= waits[1] <= 1.25  # no Retry-After: backoff 0.5 x 2 for the 2nd retry, with jitter
    httpserver.check_assertions()


def test_live_lookup_gives_up_after_its_retries_and_never_retries_a_404(httpserver):
    url = httpserver.url_for("/api/v2/studies")
    httpserver.expect_request("/api/v2/studies", query_string={"format": "json", "pageSize": "10",
                                                              "fields": CtgovCandidateClient.FIELDS,
                                                              "query.titles": "gone"}
                              ).respond_with_response(Response("no", status=404))
    httpserver.expect_request("/api/v2/studies").respond_with_response(
        Response("busy", status=429, headers={"Retry-After": "600"}))
    waits = []
    client = CtgovCandidateClient(url, timeout=5, retries=2, retry_after_max=30, sleep=waits.append)
    with pytest.raises(urllib.error.HTTPError) as err:
        client("gone", None)
    assert err.value.code == 404 and waits == [] and client.requests == 1
    with pytest.raises(urllib.error.HTTPError) as err:
        client(TITLE_000, None)
    assert err.value.code == 429 and waits == [30.0, 30.0]  # Retry-After capped at HARVEST_RETRY_AFTER_MAX


def test_live_lookups_are_spaced_by_the_link_delay(httpserver):
    httpserver.expect_request("/api/v2/studies").respond_with_json(STUDY_JSON)
    waits = []
    client = CtgovCandidateClient(httpserver.url_for("/api/v2/studies"), timeout=5, delay=5.0, sleep=waits.append)
    client("a", None)
    client("b", None)
    assert len(waits) == 1 and 4.0 < waits[0] <= 5.0
