"""The SQLite store: upsert per (site, url), rejects kept, gone pages marked,
watermarks, streaming order."""
from datetime import datetime, timezone

from harvester.store import Store
from items import SourceRecord
from pipelines.validate import content_hash

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
T1 = datetime(2026, 11, 2, tzinfo=timezone.utc)


def rec(url="https://ctv.veeva.com/study/a", nct="NCT02186860", title="A", fetched=T0, site="veeva"):
    r = SourceRecord(site=site, url=url, fetched_at=fetched, nct_id=nct, brief_title=title)
    r.content_hash = content_hash(r)
    return r


def test_upsert_inserts_then_leaves_unchanged_then_updates(tmp_path):
    with Store(tmp_path / "h.sqlite3") as store:
        assert store.upsert(rec(), b"<html>1</html>") == "inserted"
        # same content fetched later: nothing rewritten
        assert store.upsert(rec(fetched=T1), b"<html>1</html>") == "unchanged"
        assert store.get("veeva", "https://ctv.veeva.com/study/a").record.fetched_at == T0
        assert store.upsert(rec(title="B", fetched=T1), b"<html>2</html>") == "updated"
        stored = store.get("veeva", "https://ctv.veeva.com/study/a")
        assert stored.record.brief_title == "B" and stored.record.fetched_at == T1
        assert store.get_body("veeva", "https://ctv.veeva.com/study/a") == b"<html>2</html>"
        assert store.count() == 1


def test_content_hash_ignores_fetch_time_only():
    assert content_hash(rec(fetched=T0)) == content_hash(rec(fetched=T1))
    assert content_hash(rec(title="A")) != content_hash(rec(title="B"))


def test_rejects_are_kept_with_their_error(tmp_path):
    with Store(tmp_path / "h.sqlite3") as store:
        store.reject("ctgov", "https://x/1", "parse", "JSONDecodeError: Unterminated string", b'{"stud')
        assert store.count("rejects") == 1
        (row,) = store.rejects()
        assert row["stage"] == "parse" and "Unterminated" in row["error"]


def test_gone_page_is_marked_not_deleted_and_comes_back(tmp_path):
    with Store(tmp_path / "h.sqlite3") as store:
        store.upsert(rec())
        assert store.mark_removed("veeva", "https://ctv.veeva.com/study/a", "2026-11-20T00:00:00+00:00")
        assert store.get("veeva", "https://ctv.veeva.com/study/a").removed_at == "2026-11-20T00:00:00+00:00"
        assert not store.mark_removed("veeva", "https://never/stored")
        assert store.upsert(rec()) == "unchanged"
        assert store.get("veeva", "https://ctv.veeva.com/study/a").removed_at is None


def test_watermarks(tmp_path):
    with Store(tmp_path / "h.sqlite3") as store:
        assert store.get_watermark("ctgov") is None
        store.set_watermark("ctgov", "2026-11-01")
        store.set_watermark("ctgov", "2026-11-20")
        assert store.get_watermark("ctgov") == "2026-11-20"


def test_iter_sources_orders_by_nct_then_site_with_nct_less_last(tmp_path):
    with Store(tmp_path / "h.sqlite3") as store:
        store.upsert(rec(url="u3", nct=None, site="clinconnect"))
        store.upsert(rec(url="u2", nct="NCT04691349", site="medpath"))
        store.upsert(rec(url="u1", nct="NCT04691349", site="ctgov"))
        store.upsert(rec(url="u0", nct="NCT02186860", site="veeva"))
        order = [(s.record.nct_id, s.record.site) for s in store.iter_sources()]
        assert order == [("NCT02186860", "veeva"), ("NCT04691349", "ctgov"),
                         ("NCT04691349", "medpath"), (None, "clinconnect")]


def test_store_persists_across_connections(tmp_path):
    path = tmp_path / "h.sqlite3"
    with Store(path) as store:
        store.upsert(rec())
    with Store(f"sqlite:///{path}") as store:
        assert store.count() == 1


def test_sources_for_finds_the_records_of_given_nct_ids(tmp_path):
    with Store(tmp_path / "h.sqlite3") as store:
        store.upsert(rec(url="u2", nct="NCT04691349", site="medpath"))
        store.upsert(rec(url="u1", nct="NCT04691349", site="ctgov"))
        store.upsert(rec(url="u0", nct="NCT02186860", site="veeva"))
        store.upsert(rec(url="u3", nct=None, site="clinconnect"))
        got = [(s.record.nct_id, s.record.site) for s in store.sources_for(["NCT04691349", "NCT00000001"])]
        assert got == [("NCT04691349", "ctgov"), ("NCT04691349", "medpath")]
        assert store.sources_for([]) == []
