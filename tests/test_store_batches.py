"""Batched store writes and the one serialization of a record.

The kill -9 / JOBDIR resume guarantee with batches on is proved end to end by
tests/test_resume.py (the store pipeline batches by default); here: what a
batch writes and when, that one bad record costs only itself, and that a
JOBDIR request is acknowledged only after every item it yielded went through
the pipelines."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from scrapy import Request, Spider, signals
from scrapy.http import TextResponse
from scrapy.utils.test import get_crawler

from _servers import postgres_server  # noqa: F401  (fixture)

from harvester.frontier import FRONTIER_ID, FrontierAck, before_request_done, request_done
from harvester.store import Store
from harvester.store_base import record_json
from items import RecordWithBody
from pipelines.store import StorePipeline, flush_store
from pipelines.validate import ValidationPipeline, content_hash
from spiders.ctgov import parse_study

SRC = Path(__file__).resolve().parents[1] / "cassettes" / "src" / "ctgov"
FETCHED = "2026-11-23T09:00:00Z"


def studies() -> list[dict]:
    out = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(SRC.glob("*NCT*.json"))]
    for page in sorted(SRC.glob("studies_page*.json")):
        out.extend(json.loads(page.read_text(encoding="utf-8"))["studies"])
    return out


def validated(crawler) -> list[RecordWithBody]:
    pipeline = ValidationPipeline.from_crawler(crawler)
    out = []
    for i, study in enumerate(studies()):
        study["protocolSection"]["identificationModule"]["nctId"] = f"NCT0820{i:04d}"
        out.append(pipeline.process_item(RecordWithBody(parse_study(study, fetched=FETCHED), b"{}")))
    return out


class S(Spider):
    name = "s"


@pytest.fixture
def crawler(tmp_path):
    crawler = get_crawler(S, {"HARVEST_DB": str(tmp_path / "h.sqlite3"), "HARVEST_STORE_BATCH_SIZE": 3})
    crawler.stats.open_spider()
    return crawler


def test_the_validated_record_is_serialized_once_as_the_store_would(crawler):
    items = validated(crawler)
    assert len(items) >= 7
    for item in items:
        assert item.record_json == record_json(item.record)
        assert item.record.content_hash == content_hash(item.record)
        assert json.loads(item.record_json)["content_hash"] == item.record.content_hash


def test_records_are_written_in_batches_and_whatever_waits_at_a_request_done(crawler, tmp_path):
    items = validated(crawler)[:7]
    pipeline = StorePipeline.from_crawler(crawler)
    pipeline.open_spider()
    db = tmp_path / "h.sqlite3"
    out = [pipeline.process_item(items[0]), pipeline.process_item(items[1])]
    assert out[0]["nct_id"] == items[0].record.nct_id  # the feed gets the record's JSON at once
    with Store(db) as store:
        assert store.count() == 0  # waiting in the batch
    pipeline.process_item(items[2])  # the batch is full: written
    with Store(db) as store:
        assert store.count() == 3
    assert crawler.stats.get_value("store/inserted") == 3
    pipeline.process_item(items[3])
    crawler.signals.send_catch_log(signal=before_request_done, request=Request("http://127.0.0.1/p"))
    with Store(db) as store:
        assert store.count() == 4
    pipeline.process_item(items[4])
    crawler.signals.send_catch_log(signal=flush_store)
    with Store(db) as store:
        assert store.count() == 5
    pipeline.process_item(items[5])
    pipeline.process_item(items[0])  # the same page again, in the same batch
    pipeline.close_spider()
    with Store(db) as store:
        assert store.count() == 6
    assert crawler.stats.get_value("store/inserted") == 6
    assert crawler.stats.get_value("store/unchanged") == 1


def test_a_record_the_store_refuses_costs_only_itself(crawler, tmp_path):
    items = validated(crawler)[:3]
    bad = RecordWithBody(items[1].record.model_copy(update={"content_hash": None}), b"{}")
    pipeline = StorePipeline.from_crawler(crawler)
    pipeline.open_spider()
    for item in (items[0], bad, items[2]):
        pipeline.process_item(item)
    pipeline.close_spider()
    with Store(tmp_path / "h.sqlite3") as store:
        assert {s.record.nct_id for s in store.iter_sources()} == {items[0].record.nct_id, items[2].record.nct_id}
    assert crawler.stats.get_value("store/errors") == 1
    assert crawler.stats.get_value("store/inserted") == 2


def test_a_jobdir_request_is_done_only_after_its_items_went_through_the_pipelines(crawler):
    ack = FrontierAck.from_crawler(crawler)
    events = []
    crawler.signals.connect(lambda request: events.append(("flush", request.url)), signal=before_request_done,
                            weak=False)
    crawler.signals.connect(lambda request: events.append(("done", request.url)), signal=request_done,
                            weak=False)
    request = Request("http://127.0.0.1/page", meta={FRONTIER_ID: 7})
    response = TextResponse(request.url, body=b"{}", request=request)
    next_page = Request("http://127.0.0.1/page?2")
    output = list(ack.process_spider_output(response, iter([{"n": 1}, next_page, {"n": 2}])))
    assert output[1] is next_page
    assert events == []  # consumed, but its two items are not through the pipelines yet
    crawler.signals.send_catch_log(signal=signals.item_scraped, item={"n": 1}, response=response, spider=None)
    assert events == []
    crawler.signals.send_catch_log(signal=signals.item_dropped, item={"n": 2}, response=response,
                                   exception=Exception("dropped"), spider=None)
    assert events == [("flush", request.url), ("done", request.url)]
    # a callback with no items is done when its output is consumed
    quiet = Request("http://127.0.0.1/quiet", meta={FRONTIER_ID: 8})
    list(ack.process_spider_output(TextResponse(quiet.url, body=b"", request=quiet), iter([])))
    assert events[-1] == ("done", quiet.url)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_upsert_many_is_one_transaction_with_the_outcomes_in_order(backend, crawler, tmp_path, request):
    from harvester.store import open_store

    items = validated(crawler)[:4]
    if backend == "postgresql":
        target = request.getfixturevalue("postgres_server").new_database("batches")
    else:
        target = str(tmp_path / "many.sqlite3")
    pairs = [(i.record, i.body, i.record_json) for i in reversed(items)] + [(items[0].record, items[0].body)]
    with open_store(target) as store:
        assert store.upsert_many(pairs) == ["inserted"] * 4 + ["unchanged"]
        assert store.count() == 4
        assert store.get(items[2].record.site, items[2].record.url).record == items[2].record
        # the second write (in page order) fails inside the transaction, a body
        # that is not bytes: the first one, already written, is undone
        changed = items[0].record.model_copy(update={"content_hash": "0" * 64, "brief_title": "Changed"})
        failing = items[1].record.model_copy(update={"content_hash": "1" * 64})
        assert changed.url < failing.url
        with pytest.raises(TypeError):
            store.upsert_many([(failing, "not bytes"), (changed, None)])
        assert store.get(changed.site, changed.url).record == items[0].record
        assert len(store.versions(site=changed.site, url=changed.url)) == 1
