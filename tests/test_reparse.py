"""`scrapy reparse`: every stored page's body through today's parser, no
network, through the validation and store pipelines, counted."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from scrapy.http import HtmlResponse

from _project import scrapy
from _servers import postgres_server  # noqa: F401  (fixture)
from harvester.store import Store
from items import SourceRecord
from pipelines.validate import content_hash
from spiders.ctgov import parse_study, study_url
from spiders.veeva import parse_veeva

REPO = Path(__file__).resolve().parents[1]
PALLAS = REPO / "cassettes" / "src" / "ctgov" / "study_NCT02513394.json"
WITHDRAWN = REPO / "tests" / "data" / "ctgov_real" / "NCT02795884.json"
OBSERVATIONAL = REPO / "tests" / "data" / "ctgov_real" / "NCT01892319.json"
VEEVA_HTML = REPO / "cassettes" / "src" / "veeva" / "seed003.html"
VEEVA_URL = ("https://ctv.veeva.com/study/chimeric-antigen-receptor-car-modified-t-cell-therapy-"
             "in-treating-patients-with-acute-lymphoblastic-leukemia")
FETCHED = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)


def hashed(record: SourceRecord) -> SourceRecord:
    record.content_hash = content_hash(record)
    return record


def as_released(record: SourceRecord) -> SourceRecord:
    """The record the release's parser made of the same body: none of the
    fields added since, dates without their type."""
    data = record.model_dump(mode="json", by_alias=True)
    for name in ("acronym", "why_stopped", "status_verified_date", "study_first_posted", "results_first_posted",
                 "responsible_party", "oversight", "ipd_sharing", "has_results", "results", "last_known_status"):
        data[name] = None
    for name in ("keywords", "arm_groups", "central_contacts", "overall_officials", "references",
                 "other_outcomes", "condition_mesh", "condition_mesh_ancestors", "intervention_mesh",
                 "intervention_mesh_ancestors", "nct_id_aliases"):
        data[name] = []
    data["design"] = {}
    for name in ("start_date", "primary_completion_date", "completion_date"):
        if data[name]:
            data[name] = data[name]["date"]
    data["interventions"] = [{"type": i["type"], "name": i["name"]} for i in data["interventions"]]
    data["locations"] = [{k: loc[k] for k in ("facility", "city", "state", "country", "status")}
                         for loc in data["locations"]]
    return hashed(SourceRecord.model_validate(data))


def stored_ctgov(path: Path) -> tuple[SourceRecord, bytes]:
    body = path.read_bytes()
    return hashed(parse_study(json.loads(body), fetched=FETCHED)), body


def test_reparse_rebuilds_old_records_and_counts_every_page(tmp_path):
    db = tmp_path / "harvest.sqlite3"
    pallas, pallas_body = stored_ctgov(PALLAS)
    withdrawn, withdrawn_body = stored_ctgov(WITHDRAWN)
    observational, observational_body = stored_ctgov(OBSERVATIONAL)
    veeva = hashed(parse_veeva(HtmlResponse(VEEVA_URL, body=VEEVA_HTML.read_bytes(),
                                            headers={"Date": "Mon, 23 Nov 2026 09:00:00 GMT"})))
    with Store(db) as store:
        store.upsert(as_released(pallas), pallas_body)  # stored by the release: to be rebuilt
        store.upsert(withdrawn, withdrawn_body)  # stored by today's parser: unchanged
        store.upsert(veeva, VEEVA_HTML.read_bytes())  # an HTML page, today's parser: unchanged
        # a body the parser cannot read (cut short): the stored record must survive
        broken = hashed(withdrawn.model_copy(update={"url": study_url("NCT09999999"), "nct_id": "NCT09999999"}))
        store.upsert(broken, withdrawn_body[:500])
        # a page that is gone keeps its last record
        store.upsert(as_released(observational), observational_body)
        store.mark_removed("ctgov", observational.url)

    run = scrapy(["reparse"], tmp_path, offline=False)
    assert run.returncode == 1, run.stderr[-3000:]  # one page could not be re-parsed
    assert "reparse: 5 pages: 1 changed, 2 unchanged, 1 failed (skipped: 1 skipped removed)" in run.stderr
    stats = run.stats("reparse")
    assert stats["reparse/changed"] == 1 and stats["store/updated"] == 1
    assert stats.get("downloader/request_count", 0) == 0  # no network
    assert stats["harvester/rejects"] == 1

    with Store(db) as store:
        rebuilt = store.get("ctgov", pallas.url).record
        # PALLAS's body: completion 2025-09 ESTIMATED, the flow's first group
        # 2896 started and 2884 completed, the acronym
        assert rebuilt.completion_date.model_dump() == {"date": "2025-09", "type": "ESTIMATED"}
        assert rebuilt.results.participant_flow[0].started == 2896
        assert rebuilt.results.participant_flow[0].completed == 2884
        assert rebuilt.acronym == "PALLAS"
        assert rebuilt.fetched_at == FETCHED  # re-reading a page is not fetching it
        assert rebuilt.content_hash == pallas.content_hash  # what today's parser makes of the body
        assert [v["seq"] for v in store.versions(url=pallas.url)] == [1, 2]  # the old version is kept
        assert store.get_body("ctgov", pallas.url) == pallas_body
        # the unreadable page: its record as it was, the failure kept with its body
        assert store.get("ctgov", broken.url).record.content_hash == broken.content_hash
        (reject,) = store.rejects()
        assert reject["url"] == broken.url and reject["stage"] == "parse" and reject["error"].startswith("reparse:")
        # the gone page: still gone, still its release record
        gone = store.get("ctgov", observational.url)
        assert gone.removed_at is not None and gone.record.design.observational_model is None

    # a second run: nothing left to change; --site narrows it to one site
    again = scrapy(["reparse", "--site", "veeva"], tmp_path, offline=False)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "reparse: 1 pages: 0 changed, 1 unchanged, 0 failed" in again.stderr


def test_reparse_of_an_unknown_site_fails(tmp_path):
    with Store(tmp_path / "harvest.sqlite3"):
        pass
    run = scrapy(["reparse", "--site", "nosuchsite"], tmp_path, offline=False)
    assert run.returncode == 1
    assert "unknown site 'nosuchsite'" in run.stderr


def _pages(store, n):
    """n stored pages whose URLs sort differently in byte order and in a
    natural-language collation (upper/lower case, punctuation)."""
    withdrawn, body = stored_ctgov(WITHDRAWN)
    urls = [f"https://x.example/{name}" for name in ("B", "a", "a-b", "ab", "A", "_z", "Z")][:n]
    for i, url in enumerate(urls):
        record = hashed(withdrawn.model_copy(update={"url": url, "brief_title": f"page {i}"}))
        store.upsert(record, body + b" " * i)
    return urls, body


def _read_all(store, batch):
    return [(p.site, p.url, len(p.body)) for p in store.iter_bodies(batch=batch)]


def test_iter_bodies_reads_every_page_once_across_batches(tmp_path):
    with Store(tmp_path / "s.sqlite3") as store:
        urls, body = _pages(store, 7)
        got = _read_all(store, batch=2)
        assert sorted(u for _, u, _ in got) == sorted(urls) and len(got) == 7
        assert {n - len(body) for _, _, n in got} == set(range(7))  # each page's own body


def test_iter_bodies_on_postgresql_with_a_natural_language_collation(postgres_server):  # noqa: F811
    from harvester.store_pg import PgStore

    with PgStore(postgres_server.new_database("reparse", icu_locale="en-US")) as store:
        urls, _ = _pages(store, 7)
        got = _read_all(store, batch=2)
        assert sorted(u for _, u, _ in got) == sorted(urls) and len(got) == 7


def test_reparse_of_a_store_written_by_the_release(tmp_path):
    # the release's store (tests/data/README.md): 4 CT.gov studies and 6 HTML
    # pages, one of them marked gone. Today's parsers read more of the same
    # bodies: the whole CT.gov record, and the HTML sites' design, arms,
    # contacts, officials and country codes. The one page that prints none of
    # these (Veeva's NCT03263208 reference text, cut before its trial design)
    # is unchanged
    import shutil

    shutil.copy(REPO / "tests" / "data" / "store-v1.sqlite3", tmp_path / "harvest.sqlite3")
    with Store(tmp_path / "harvest.sqlite3") as store:
        before = {(s.record.site, s.record.url): s.record.content_hash for s in store.iter_sources()}
    run = scrapy(["reparse"], tmp_path, offline=False)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "reparse: 10 pages: 8 changed, 1 unchanged, 0 failed (skipped: 1 skipped removed)" in run.stderr
    with Store(tmp_path / "harvest.sqlite3") as store:
        after = {(s.record.site, s.record.url): s for s in store.iter_sources()}
        changed = sorted(url for (site, url), s in after.items() if s.record.content_hash != before[(site, url)])
        unchanged = {"https://ctv.veeva.com/study/cd19-car-t-cells-for-patients-with-relapse-and-refractory-cd19-b-all"}
        removed = {s.record.url for s in after.values() if s.removed_at}
        assert changed == sorted(url for site, url in after if url not in unchanged | removed)
        assert len(changed) == 8
        medpath = next(s.record for (site, _), s in after.items() if site == "medpath")
        assert medpath.design.intervention_model == "SINGLE_GROUP" and medpath.locations[0].country_code == "CN"
        pallas = after[("ctgov", pallas_url())].record
        assert pallas.results.participant_flow[0].started == 2896 and pallas.acronym == "PALLAS"


def pallas_url() -> str:
    return study_url("NCT02513394")
