"""Linking pages without an NCT ID to trials: above and below the threshold,
generic and shared titles, the CT.gov candidate lookup (a fake callable, and
the real HTTP client against a local server), and the index that keeps
linking from scoring every trial.

The NCT-less page is seed 000 (ClinConnect): "Clinical Study of CAR-T
Technology for the Treatment of Relapsed Refractory Malignant Haematological
Tumours", launched by SHANXI BETHUNE HOSPITAL, patients aged 14 to 70. Its
real NCT ID is not on the page; NCT09990001 below is a made-up ID standing
for "the registry record of that trial".
"""
from __future__ import annotations

import io
import random
import tempfile
import threading
import time
from datetime import datetime, timezone

import orjson
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

import harvester.reconciliation.scoring as scoring
from harvester.reconciliation import (CtgovCandidateClient, LinkIndex, LinkKeys, Linker, ReconcileConfig,
                                      fold_words, reconcile, record_keys)
from harvester.store import Store, StoredSource
from items import SourceRecord
from pipelines.validate import content_hash

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)
T1 = datetime(2026, 11, 22, 7, 15, tzinfo=timezone.utc)

TITLE_000 = ("Clinical Study of CAR-T Technology for the Treatment of Relapsed Refractory Malignant "
             "Haematological Tumours")
TITLE_001 = "A Clinical Study of CAR-T Cells in the Treatment of Relapsed and Refractory Hematological Malignancies"
CC_URL = "https://clinconnect.io/trials/clinical-study-of-car-t-technology-for-the-treatment-of-relapsed"
MADE_UP = "NCT09990001"


def rec(site, url, fetched=T0, **fields) -> SourceRecord:
    return SourceRecord(site=site, url=url, fetched_at=fetched, **fields)


def ctgov(nct, **fields) -> SourceRecord:
    return rec("ctgov", f"https://clinicaltrials.gov/api/v2/studies/{nct}", nct_id=nct, **fields)


def seed_000(**over) -> SourceRecord:
    fields = dict(brief_title=TITLE_000, lead_sponsor={"name": "SHANXI BETHUNE HOSPITAL"},
                  overall_status="RECRUITING",
                  eligibility={"sex": "ALL", "min_age_years": 14.0, "max_age_years": 70.0,
                               "age_text": "aged 14 to 70 years (inclusive)"},
                  lay_summary="This clinical trial is studying a new treatment called CAR-T technology for "
                              "patients with certain types of blood cancers.")
    fields.update(over)
    return rec("clinconnect", CC_URL, T1, **fields)


def registry_000(nct=MADE_UP, **over) -> SourceRecord:
    fields = dict(brief_title=TITLE_000, lead_sponsor={"name": "Shanxi Bethune Hospital", "class": "OTHER"},
                  conditions=["Malignant Haematological Tumours"], overall_status="RECRUITING",
                  eligibility={"sex": "ALL", "min_age_years": 14.0, "max_age_years": 70.0,
                               "age_text": "14 Years to 70 Years"})
    fields.update(over)
    return ctgov(nct, **fields)


def seed_001() -> SourceRecord:
    # NCT04008524 as assembled from seed 001: no sponsor, no numeric ages
    return ctgov("NCT04008524", brief_title=TITLE_001, official_title=TITLE_001,
                 conditions=["Relapsed and Refractory Hematological Malignancies"],
                 overall_status="AVAILABLE", study_type="EXPANDED_ACCESS")


class ListStore:
    def __init__(self, records):
        self.records = sorted(records, key=lambda r: (r.nct_id is None, r.nct_id or "", r.site, r.url))

    def iter_sources(self):
        for r in self.records:
            yield StoredSource(r, None)


def run(records, settings=None, candidate_source=None):
    out, unlinked = io.BytesIO(), io.BytesIO()
    summary = reconcile(ListStore(records), out, unlinked, settings, candidate_source)
    online = bool((settings or {}).get("HARVEST_LINK_ONLINE"))
    if candidate_source is None and not online and len({(r.site, r.url) for r in records}) == len(records):
        _same_through_store(records, settings)
    trials = {t["nct_id"]: t for t in map(orjson.loads, out.getvalue().splitlines())}
    return trials, [orjson.loads(x) for x in unlinked.getvalue().splitlines()], summary


def _same_through_store(records, settings) -> None:
    """The pages in a SQLite store (read as stored JSON, the linking index
    built from it) link and reconcile to the same bytes as the records."""
    hashed = [r.model_copy(update={"content_hash": content_hash(r)}) for r in records]
    outputs = []
    with tempfile.TemporaryDirectory() as tmp, Store(f"{tmp}/h.sqlite3") as store:
        for r in hashed:
            store.upsert(r)
        for source in (ListStore(hashed), store):
            out, unlinked = io.BytesIO(), io.BytesIO()
            reconcile(source, out, unlinked, settings)
            outputs.append((out.getvalue(), unlinked.getvalue()))
    assert outputs[0] == outputs[1]


def page_source(trial: dict, url: str) -> dict:
    return next(s for s in trial["sources"] if s["url"] == url)


# --- above and below the threshold ---------------------------------------------------

def test_page_above_threshold_links_with_method_score_and_evidence():
    trials, unlinked, summary = run([seed_001(), registry_000(), seed_000()])
    assert unlinked == []
    t = trials[MADE_UP]
    link = page_source(t, CC_URL)["link"]
    assert link["method"] == "fuzzy_store" and link["score"] == 1.0
    ev = link["evidence"]
    assert ev["fields"] == {"title": 1.0, "sponsor": 1.0, "ages": 1.0}  # the page gives no conditions
    assert ev["agreeing"] == ["ages", "sponsor", "title"] and ev["title_generic"] is False
    assert ev["runner_up"] == "NCT04008524" and ev["margin"] >= 0.1
    # the linked page contributes field by field: the lay summary is ClinConnect's
    assert t["lay_summary"]["site"] == "clinconnect" and t["brief_title"]["site"] == "ctgov"
    assert len(trials["NCT04008524"]["sources"]) == 1
    assert summary.linked == {"nct_id": 2, "fuzzy_store": 1}


def test_page_below_threshold_goes_to_unlinked_with_its_candidates():
    # only NCT04008524 is known: a similar CAR-T title, nothing else to compare
    trials, unlinked, summary = run([seed_001(), seed_000()])
    assert list(trials) == ["NCT04008524"] and len(trials["NCT04008524"]["sources"]) == 1
    (line,) = unlinked
    assert line["url"] == CC_URL and line["site"] == "clinconnect"
    assert line["brief_title"] == TITLE_000 and line["lead_sponsor"] == "SHANXI BETHUNE HOSPITAL"
    assert line["reason"] == "below_threshold" and line["identifiers"] == []
    (cand,) = line["candidates"]
    assert cand["nct_id"] == "NCT04008524" and cand["source"] == "store"
    assert 0.7 < cand["score"] < 0.8 and cand["evidence"]["fields"] == {"title": cand["score"]}
    assert summary.unlinked == 1


def test_a_different_sponsor_keeps_a_similar_page_apart():
    trials, unlinked, _ = run([registry_000(lead_sponsor={"name": "Shanxi Provincial People's Hospital"}),
                               seed_000()])
    # same title, same ages: enough score, but the registry names another sponsor
    assert unlinked[0]["reason"] == "sponsor_differs" and unlinked[0]["candidates"][0]["score"] >= 0.8
    assert unlinked[0]["candidates"][0]["evidence"]["fields"]["sponsor"] < 0.85
    assert len(trials[MADE_UP]["sources"]) == 1


def test_a_specific_title_alone_never_links():
    trials, unlinked, _ = run([registry_000(), seed_000(lead_sponsor=None, eligibility={})])
    assert unlinked[0]["reason"] == "insufficient_evidence"
    assert unlinked[0]["candidates"][0]["score"] == 1.0  # a perfect title, and still not enough


# --- generic and shared titles ---------------------------------------------------------

def test_placeholder_title_alone_never_links():
    known = registry_000(brief_title="A Study of CAR-T Cells")
    trials, unlinked, _ = run([known, seed_000(brief_title="A Study of CAR-T Cells", lead_sponsor=None,
                                               eligibility={})])
    assert unlinked[0]["reason"] in {"below_threshold", "insufficient_evidence"}
    assert unlinked[0]["candidates"][0]["evidence"]["title_generic"] is True
    # "A Study of ..." as a site prints a cut title: no content at all
    trials, unlinked, _ = run([known, seed_000(brief_title="A Study of …", lead_sponsor=None, eligibility={})])
    assert len(unlinked) == 1 and len(trials[MADE_UP]["sources"]) == 1


def test_placeholder_title_links_on_two_other_fields():
    known = registry_000(brief_title="A Study of CAR-T Cells")
    trials, unlinked, _ = run([known, seed_000(brief_title="A Study of CAR-T Cells")])
    assert unlinked == []
    link = page_source(trials[MADE_UP], CC_URL)["link"]
    assert link["evidence"]["title_generic"] is True
    assert link["evidence"]["agreeing"] == ["ages", "sponsor"]  # the title is not counted


def test_title_shared_by_two_known_trials_never_links_on_title_alone():
    a = registry_000("NCT09990001", lead_sponsor={"name": "Shanxi Bethune Hospital"})
    b = registry_000("NCT09990002", lead_sponsor={"name": "Henan Cancer Hospital"},
                     eligibility={"min_age_years": 18.0, "max_age_years": 65.0})
    trials, unlinked, _ = run([a, b, seed_000(lead_sponsor=None, eligibility={})])
    (line,) = unlinked
    assert line["candidates"][0]["evidence"]["title_generic"] is True
    assert {c["nct_id"] for c in line["candidates"]} == {"NCT09990001", "NCT09990002"}
    # with the sponsor and the ages the page tells them apart
    trials, unlinked, _ = run([a, b, seed_000()])
    assert unlinked == []
    link = page_source(trials["NCT09990001"], CC_URL)["link"]
    assert link["evidence"]["agreeing"] == ["ages", "sponsor"] and link["evidence"]["runner_up"] == "NCT09990002"


def test_two_equally_good_candidates_are_ambiguous():
    a = registry_000("NCT09990001")
    b = registry_000("NCT09990002")  # the same trial registered twice, as happens
    trials, unlinked, _ = run([a, b, seed_000()])
    assert unlinked[0]["reason"] == "ambiguous"
    assert [c["score"] for c in unlinked[0]["candidates"]] == [1.0, 1.0]


# --- the CT.gov candidate lookup ---------------------------------------------------------

API_CANDIDATE = {"nct_id": "NCT03000000", "brief_title": TITLE_000, "official_title": None,
                 "lead_sponsor": "Shanxi Bethune Hospital", "conditions": ["Hematologic Neoplasms"],
                 "min_age_years": 14.0, "max_age_years": 70.0}


def test_api_candidates_link_when_the_store_has_none_and_keep_the_output_sorted():
    calls = []

    def fake(title, sponsor):
        calls.append((title, sponsor))
        return [API_CANDIDATE, {**API_CANDIDATE, "nct_id": "NCT03000001", "brief_title": "Another trial",
                                "lead_sponsor": "Someone Else"}]

    records = [seed_001(), registry_000("NCT02186860", brief_title="Unrelated", lead_sponsor={"name": "X"}),
               seed_000()]
    trials, unlinked, summary = run(records, {"HARVEST_LINK_ONLINE": True}, fake)
    assert calls == [(TITLE_000, "SHANXI BETHUNE HOSPITAL")]
    assert list(trials) == ["NCT02186860", "NCT03000000", "NCT04008524"]
    t = trials["NCT03000000"]
    (src,) = t["sources"]
    assert src["link"]["method"] == "fuzzy_api" and src["link"]["score"] == 1.0
    assert t["brief_title"]["site"] == "clinconnect" and t["identifiers"] == []
    assert unlinked == [] and summary.linked["fuzzy_api"] == 1 and summary.api_calls == 1


def test_api_is_not_asked_offline():
    def never(title, sponsor):
        raise AssertionError("asked the API with HARVEST_LINK_ONLINE off")

    _, unlinked, summary = run([seed_001(), seed_000()], None, never)
    assert len(unlinked) == 1 and summary.api_calls == 0


def test_api_failure_leaves_the_page_unlinked():
    def broken(title, sponsor):
        raise TimeoutError("timed out")

    _, unlinked, summary = run([seed_001(), seed_000()], {"HARVEST_LINK_ONLINE": "1"}, broken)
    assert len(unlinked) == 1 and summary.api_errors == 1


@pytest.fixture
def httpserver():
    """A local HTTP server on 127.0.0.1 (never the network)."""
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    try:
        yield server
    finally:
        server.clear()
        server.stop()


STUDY_JSON = {"studies": [{"protocolSection": {
    "identificationModule": {"nctId": "NCT03000000", "briefTitle": TITLE_000},
    "sponsorCollaboratorsModule": {"leadSponsor": {"name": "Shanxi Bethune Hospital"}},
    "conditionsModule": {"conditions": ["Hematologic Neoplasms"]},
    "eligibilityModule": {"minimumAge": "14 Years", "maximumAge": "70 Years"}}},
    {"protocolSection": {"identificationModule": {"nctId": "not an id"}}}]}


def test_http_client_queries_titles_and_sponsor_with_its_user_agent(httpserver):
    httpserver.expect_request(
        "/api/v2/studies",
        query_string={"format": "json", "pageSize": "10", "fields": CtgovCandidateClient.FIELDS,
                      "query.titles": TITLE_000, "query.spons": "SHANXI BETHUNE HOSPITAL"},
        headers={"User-Agent": "harvester-test/1.0"},
    ).respond_with_json(STUDY_JSON)
    assert httpserver.url_for("/").startswith("http://127.0.0.1:")
    client = CtgovCandidateClient(httpserver.url_for("/api/v2/studies"), "harvester-test/1.0", timeout=5)
    assert client(TITLE_000, "SHANXI BETHUNE HOSPITAL") == [API_CANDIDATE]
    httpserver.check_assertions()


def test_http_client_times_out(httpserver):
    release = threading.Event()

    def slow(request):
        release.wait(5)
        return Response("{}", content_type="application/json")

    httpserver.expect_request("/api/v2/studies").respond_with_handler(slow)
    client = CtgovCandidateClient(httpserver.url_for("/api/v2/studies"), timeout=0.2)
    with pytest.raises(OSError):  # socket timeouts are OSErrors (TimeoutError, URLError)
        client(TITLE_000, None)
    release.set()
    deadline = time.monotonic() + 5
    while not httpserver.log and time.monotonic() < deadline:  # let the server finish before the next test
        time.sleep(0.01)


def test_online_reconcile_uses_the_http_client_from_settings(httpserver):
    httpserver.expect_request("/api/v2/studies").respond_with_json(STUDY_JSON)
    settings = {"HARVEST_LINK_ONLINE": True, "HARVEST_LINK_API_URL": httpserver.url_for("/api/v2/studies"),
                "USER_AGENT": "harvester-test/1.0"}
    trials, unlinked, _ = run([seed_001(), seed_000()], settings)
    assert unlinked == [] and trials["NCT03000000"]["sources"][0]["link"]["method"] == "fuzzy_api"
    (request, _response), = httpserver.log
    assert request.headers["User-Agent"] == "harvester-test/1.0"


# --- scalability ----------------------------------------------------------------------------

WORDS = ("leukemia lymphoma myeloma carcinoma glioma sarcoma melanoma asthma diabetes hepatitis influenza "
         "pembrolizumab nivolumab rituximab ibrutinib palbociclib cd19 cd7 bcma vaccine stem donor").split()


def _title(i: int) -> str:
    rng = random.Random(i)
    return " ".join(rng.sample(WORDS, 5))


def test_index_scores_only_candidates_sharing_rare_words_or_the_sponsor(monkeypatch):
    index = LinkIndex()
    n = 20_000
    for i in range(n):
        index.add(f"NCT{20_000_000 + i:08d}", LinkKeys((fold_words(_title(i)),), (f"sponsor {i % 500}",), (), (), ()))
    target = 12_345
    page = LinkKeys((fold_words(_title(target)),), (f"sponsor {target % 500}",), (), (), ())
    found = index.candidates(page, limit=50)
    assert target in found
    assert len(found) <= 50 + n // 500  # the top title matches and the sponsor's own trials
    scored = []
    real = scoring.field_scores
    monkeypatch.setattr(scoring, "field_scores", lambda *a: scored.append(1) or real(*a))
    linker = Linker(index, ReconcileConfig.from_settings(None))
    page_record = rec("clinconnect", "https://clinconnect.io/trials/x", brief_title=_title(target),
                      lead_sponsor={"name": page.sponsors[0]})
    decision = linker.link(page_record)
    assert decision.nct_id == f"NCT{20_000_000 + target:08d}", decision
    assert len(scored) == len(found) < n / 100


def test_record_keys_fold_titles_sponsors_and_ages():
    keys = record_keys([seed_000()])
    assert keys.titles == (fold_words(TITLE_000),)
    assert keys.sponsors == ("shanxi bethune hospital",)
    assert (keys.min_ages, keys.max_ages) == ((14.0,), (70.0,))
