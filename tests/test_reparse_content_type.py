"""`scrapy reparse` reads a page as it was served: the store keeps the
Content-Type header with each body, so a page whose charset is declared only
in the HTTP header (no <meta charset>, no BOM) decodes on re-parse as it did
on the crawl, and a body stored before the header was kept is read with a
guessed one, counted (`reparse/content_type_guessed`).

The pages are real pages of the bundled cassettes (the seed texts: see
cassettes/README.md) with their `<meta charset="utf-8">` taken out and
encoded in windows-1252, served by a local site with
`Content-Type: text/html; charset=windows-1252`; characters windows-1252
cannot hold ("≥", "≤") are written as HTML character references, as a page
in that charset must. Their text renderings, which cannot write a character
reference, are served as `text/plain; charset=gb18030`. The expected strings are read by hand from the seed
texts (`seeds/002_...`: "Guillain-Barré"; `seeds/000_...`: "it’s"; the
MedPath reference text: "1.5×ULN")."""
from __future__ import annotations

import shutil
import sqlite3
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from _fakesite import FakeSite, Reply, crawl
from _project import scrapy
from _servers import postgres_server  # noqa: F401  (fixture)
from harvester.store import SCHEMA_VERSION, Store, open_store

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "cassettes" / "src"
DATA = REPO / "tests" / "data"
SERVED_AS = "text/html; charset=windows-1252"

GBS = ("Hematopoietic stem cell transplantation within 6 months prior to screening. Active autoimmune or "
       "inflammatory neurological diseases (e.g., Guillain-Barré syndrome (GBS), amyotrophic lateral sclerosis "
       "(ALS)) and clinically significant active cerebrovascular disease (e.g., cerebral edema, posterior "
       "reversible encephalopathy syndrome (PRES)).")
OPPORTUNITY = ("If you or a loved one is considering this trial, it’s an opportunity to help researchers learn more "
               "about CAR-T therapy and its potential benefits for treating challenging blood cancers.")
BILIRUBIN = "Total bilirubin≤1.5×ULN"

# a text rendering must hold "≥" and "≤" as characters: served in an encoding of all of Unicode
TEXT_AS = "text/plain; charset=gb18030"

# case -> (spider, its page, served as, the path it is served at, the field read, the exact text it must hold)
PAGES = {
    "veeva": ("veeva", "veeva/seed002.html", SERVED_AS, "/study/seed-002-cd7-car-t",
              lambda r: r.eligibility.exclusion, GBS),
    "clinconnect": ("clinconnect", "clinconnect/seed-000.html", SERVED_AS, "/trials/seed-000",
                    lambda r: [r.lay_summary], OPPORTUNITY),
    # the same pages as text renderings (cassettes/README.md: the test forms, the Veeva texts)
    "clinconnect-text": ("clinconnect", "clinconnect/forms/seed-000.txt", TEXT_AS, "/trials/seed-000",
                         lambda r: [r.lay_summary], OPPORTUNITY),
    "veeva-text": ("veeva", "veeva/text/seed002.txt", TEXT_AS, "/study/seed-002-cd7-car-t",
                   lambda r: r.eligibility.exclusion, GBS),
    "medpath": ("medpath", "medpath/NCT04691349.html", SERVED_AS,
                "/clinical-trial/50b4028075e01462/chimeric-antigen-receptor-t-cells-therapy-children-tumors",
                lambda r: r.eligibility.inclusion, BILIRUBIN),
}


def encoded(source: str, served_as: str) -> bytes:
    """The page in the charset of `served_as`, without a <meta charset>."""
    text = (SRC / source).read_text(encoding="utf-8")
    if source.endswith(".html"):
        assert text.count('<meta charset="utf-8">') == 1
        text = text.replace('<meta charset="utf-8">', "")
    charset = served_as.partition("charset=")[2]
    body = text.encode(charset, "xmlcharrefreplace" if source.endswith(".html") else "strict")
    assert b"charset" not in body.lower() and not body.isascii()  # the header alone says how to read it
    return body


def crawl_one(case: str, tmp_path: Path, settings: dict | None = None) -> str:
    """Crawl the page of `case` from a local site serving it as its case says; its path."""
    spider, source, served_as, path, _, _ = PAGES[case]
    site = FakeSite()
    try:
        site.script(path, Reply(body=encoded(source, served_as), content_type=served_as))
        run = crawl(spider, tmp_path, "-a", f"base_url={site.url('')}", "-a", f"urls={site.url(path)}",
                    settings=settings)
    finally:
        site.close()
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stats["store/inserted"] == 1
    return path


def contains(texts, expected: str) -> bool:
    return any(expected in (t or "") for t in texts)


@pytest.mark.parametrize("case", sorted(PAGES))
def test_a_page_with_its_charset_only_in_the_header_reparses_unchanged(tmp_path, case):
    _, _, served_as, _, read, expected = PAGES[case]
    crawl_one(case, tmp_path)
    with Store(tmp_path / "harvest.sqlite3") as store:
        [crawled] = [s.record for s in store.iter_sources()]
    assert contains(read(crawled), expected)  # the crawl read the header's charset

    run = scrapy(["reparse"], tmp_path, offline=False)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "reparse: 1 pages: 0 changed, 1 unchanged, 0 failed" in run.stderr
    stats = run.stats("reparse")
    assert stats["reparse/unchanged"] == 1 and "reparse/changed" not in stats
    assert "reparse/content_type_guessed" not in stats
    with Store(tmp_path / "harvest.sqlite3") as store:
        [stored] = list(store.iter_sources())
        assert [v["seq"] for v in store.versions(url=stored.record.url)] == [1]  # nothing written
        [page] = list(store.iter_bodies())
    assert contains(read(stored.record), expected)
    assert stored.record.content_hash == crawled.content_hash
    assert page.content_type == served_as  # the header as served, kept with the body


def test_the_ctgov_body_is_stored_as_json(tmp_path):
    # one study as served (the cassette's header: application/json), and the
    # studies of a search page, each stored as its own JSON
    run = scrapy(["crawl", "ctgov", "-a", "nct=NCT02513394"], tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    search = scrapy(["crawl", "ctgov", "-a", "cond=cancer", "-a", "page_size=3"], tmp_path)
    assert search.returncode == 0, search.stderr[-3000:]
    with Store(tmp_path / "harvest.sqlite3") as store:
        pages = list(store.iter_bodies())
    assert len(pages) > 1
    assert {p.content_type for p in pages} == {"application/json"}
    assert all(p.body.startswith(b"{") for p in pages)
    run = scrapy(["reparse"], tmp_path, offline=False)
    assert run.returncode == 0, run.stderr[-3000:]
    stats = run.stats("reparse")
    assert stats["reparse/unchanged"] == len(pages) and "reparse/content_type_guessed" not in stats


def _schema_4_rows(conn) -> dict:
    """Every row of the store's tables but meta, the columns schema 4 has."""
    out = {}
    for table, key in (("sources", "site, url"), ("versions", "site, url, seq"), ("gone", "site, url, gone_at"),
                       ("rejects", "id"), ("watermarks", "source")):
        cols = {"sources": "site, url, nct_id, fetched_at, content_hash, body_hash, record, body, first_seen_at,"
                           " last_seen_at, updated_at, removed_at, version, contract, link_fields",
                "versions": "site, url, seq, nct_id, fetched_at, content_hash, body_hash, record, body,"
                            " first_seen_at, last_seen_at, current_from, quarantine, accepted_at, contract,"
                            " link_fields"}.get(table, "*")
        out[table] = [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
                      for row in conn.execute(f"SELECT {cols} FROM {table} ORDER BY {key}").fetchall()]
    return out


def _check_upgraded_then_reparsed(target: str, before: dict, connect, tmp_path: Path) -> None:
    with open_store(target) as store:  # opening upgrades it in place
        assert store.get_meta("schema_version") == str(SCHEMA_VERSION) == "5"
        bodies = [p for p in store.iter_bodies() if p.body is not None]
        assert bodies and all(p.content_type is None for p in bodies)  # never stored: not made up
        pages, removed = store.count("sources"), sum(1 for p in store.iter_bodies() if p.removed_at)
    with connect() as conn:
        assert _schema_4_rows(conn) == before  # every row kept, byte for byte
    run = scrapy(["reparse"], tmp_path, offline=False, extra_env={"HARVEST_DB": target})
    assert run.returncode == 0, run.stderr[-3000:]
    stats = run.stats("reparse")
    # the store of commit f982bee's offline harvest: 11 pages, none gone; today's
    # parser reads the same bodies alike (its pages declare their charset in
    # <meta charset> or are JSON), so nothing changes
    assert pages == 11 and removed == 0
    assert stats["reparse/content_type_guessed"] == 11 == stats["reparse/unchanged"]
    assert f"reparse: {pages} pages read with a guessed Content-Type" in run.stderr
    with connect() as conn:
        assert _schema_4_rows(conn) == before  # an unchanged re-read writes nothing
    # the same crawl again: each page is served the body it was stored with,
    # so its version gets the header beside that body (the cassettes' headers:
    # cassettes/src/*/interactions.yaml); NCT04637503's two real versions are
    # served one after the other in one harvest, so it gets two new ones
    latest = "SELECT url, MAX(seq) FROM versions GROUP BY url"
    with connect() as conn:
        seqs = dict(conn.execute(latest).fetchall())
    run = scrapy(["harvest", "--offline", "-O", "canonical.jsonl"], tmp_path, extra_env={"HARVEST_DB": target})
    assert run.returncode == 0, run.stderr[-3000:]
    with open_store(target) as store:
        served = {p.url: p.content_type for p in store.iter_bodies()}
        assert store.count("versions") == 14
    with connect() as conn:
        now = dict(conn.execute(latest).fetchall())
    twice = "https://clinicaltrials.gov/api/v2/studies/NCT04637503"
    assert now.pop(twice) == seqs.pop(twice) + 2 and now == seqs and len(now) == 10
    assert len(served) == 11
    assert {t for u, t in served.items() if "clinicaltrials.gov" in u} == {"application/json"}
    assert {t for u, t in served.items() if "clinicaltrials.gov" not in u} == {"text/html; charset=utf-8"}
    again = scrapy(["reparse"], tmp_path, offline=False, extra_env={"HARVEST_DB": target})
    assert again.returncode == 0, again.stderr[-3000:]
    stats = again.stats("reparse")
    assert stats["reparse/unchanged"] == 11 and "reparse/content_type_guessed" not in stats


def test_a_schema_4_sqlite_store_upgrades_in_place_and_reparse_counts_the_guesses(tmp_path):
    path = tmp_path / "harvest.sqlite3"
    shutil.copy(DATA / "store-v4.sqlite3", path)
    con = sqlite3.connect(path)
    assert con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == ("4",)
    assert "content_type" not in {r[1] for r in con.execute("PRAGMA table_info(versions)")}
    before = _schema_4_rows(con)
    con.close()
    assert len(before["versions"]) == 12 and len(before["sources"]) == 11
    _check_upgraded_then_reparsed(str(path), before, lambda: sqlite3.connect(path), tmp_path)


def test_a_schema_4_postgresql_store_upgrades_in_place_and_reparse_counts_the_guesses(
        tmp_path, postgres_server):  # noqa: F811
    url = postgres_server.new_database("v4")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute((DATA / "store-v4.pg.sql").read_text())
        conn.execute("SELECT pg_catalog.set_config('search_path', 'public', false)")
        assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == ("4",)
        before = _schema_4_rows(conn)
    assert len(before["versions"]) == 12 and len(before["sources"]) == 11
    _check_upgraded_then_reparsed(url, before, lambda: psycopg.connect(url), tmp_path)


def test_a_page_with_its_charset_only_in_the_header_reparses_unchanged_on_postgresql(
        tmp_path, postgres_server):  # noqa: F811
    url = postgres_server.new_database("ctype")
    _, _, _, _, read, expected = PAGES["clinconnect"]
    crawl_one("clinconnect", tmp_path, settings={"HARVEST_DB": url})
    with open_store(url) as store:
        [page] = list(store.iter_bodies())
        assert page.content_type == SERVED_AS
    run = scrapy(["reparse"], tmp_path, offline=False, extra_env={"HARVEST_DB": url})
    assert run.returncode == 0, run.stderr[-3000:]
    assert "reparse: 1 pages: 0 changed, 1 unchanged, 0 failed" in run.stderr
    assert "reparse/content_type_guessed" not in run.stats("reparse")
    with open_store(url) as store:
        [stored] = list(store.iter_sources())
    assert contains(read(stored.record), expected)


def _stored(body: bytes, content_type: str | None, url: str = "https://ctv.veeva.com/study/seed-002-cd7-car-t"):
    from harvester.store_base import StoredBody

    return StoredBody("veeva", url, "2026-11-23T09:00:00+00:00", "hash", None, body, None, content_type)


class CountedStats(Counter):
    """What `ReparseSpider.reparse` counts into, read back as a Counter."""

    def inc_value(self, key, count=1):
        self[key] += count


def test_the_rebuilt_response_is_the_one_the_downloader_made():
    from scrapy.http import HtmlResponse, TextResponse

    from harvester.reparse import stored_response

    page = encoded("veeva/text/seed002.txt", TEXT_AS)
    served = stored_response(_stored(page, TEXT_AS))
    assert type(served) is TextResponse and served.encoding == "gb18030"
    assert served.headers[b"Content-Type"] == TEXT_AS.encode()
    assert "Guillain-Barré syndrome" in served.text
    # served with no Content-Type at all (stored as ""): none now either, the
    # class from the body as the downloader picks it, and the charset detected alike
    html = (SRC / "veeva" / "seed002.html").read_bytes()
    bare = stored_response(_stored(html, ""))
    assert type(bare) is HtmlResponse and b"Content-Type" not in bare.headers
    # stored before the header was kept: today's guess
    guessed = stored_response(_stored(html, None))
    assert type(guessed) is HtmlResponse and b"Content-Type" not in guessed.headers
    assert guessed.text == bare.text


def test_only_a_body_stored_without_its_header_counts_as_guessed():
    from harvester.reparse import ReparseSpider, parsers_by_site

    parse = parsers_by_site(None)["veeva"]
    html = (SRC / "veeva" / "seed002.html").read_bytes()
    counted = {}
    for content_type in ("text/html; charset=utf-8", "", None):
        stats = CountedStats()
        item = ReparseSpider().reparse(_stored(html, content_type), parse, stats)
        assert item is not None and item.content_type == content_type  # changed ("hash"): kept as it was
        counted[content_type] = stats["reparse/content_type_guessed"]
    assert counted == {"text/html; charset=utf-8": 0, "": 0, None: 1}


def test_a_guessed_page_that_reads_only_by_its_lost_header_keeps_its_record(tmp_path):
    # The ClinConnect page served as windows-1252 with no <meta charset>, in a
    # store that lost its header (as a store of schema 4 never had it): the
    # guess reads "it’s" as something else, so the new record is not stored.
    path = crawl_one("clinconnect", tmp_path)
    db = tmp_path / "harvest.sqlite3"
    with Store(db) as store:
        [crawled] = [s.record for s in store.iter_sources()]
    assert contains([crawled.lay_summary], OPPORTUNITY)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE sources SET content_type = NULL")
        conn.execute("UPDATE versions SET content_type = NULL")

    run = scrapy(["reparse"], tmp_path, offline=False)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "reparse: 1 pages: 0 changed, 0 unchanged, 0 failed (skipped: 1 charset unknown)" in run.stderr
    assert f"{path}: stored without its Content-Type" in run.stderr
    stats = run.stats("reparse")
    assert stats["reparse/content_type_guessed"] == 1 and stats["reparse/charset_unknown"] == 1
    assert "reparse/changed" not in stats
    with Store(db) as store:
        [stored] = list(store.iter_sources())
        assert [v["seq"] for v in store.versions(url=stored.record.url)] == [1]  # nothing written
    assert stored.record.content_hash == crawled.content_hash and contains([stored.record.lay_summary], OPPORTUNITY)


def test_only_bytes_that_read_one_way_are_re_read_with_a_guess():
    from harvester.reparse import ReparseSpider, parsers_by_site, reads_one_way

    utf8 = (SRC / "veeva" / "seed002.html").read_text(encoding="utf-8").replace('<meta charset="utf-8">', "")
    cp1252 = encoded("veeva/seed002.html", SERVED_AS)
    assert reads_one_way(utf8.encode("utf-8"))  # UTF-8 bytes, no charset declared
    assert reads_one_way(b"\xef\xbb\xbf" + cp1252)  # a BOM says how to read it
    assert reads_one_way(cp1252.replace(b"<head>", b'<head><meta charset="windows-1252">', 1))
    assert not reads_one_way(cp1252)  # "Barr\xe9": only the lost header said windows-1252
    parse = parsers_by_site(None)["veeva"]
    for content_type, stored in ((None, False), (SERVED_AS, True)):
        stats = CountedStats()
        item = ReparseSpider().reparse(_stored(cp1252, content_type), parse, stats)  # changed ("hash")
        assert (item is not None) is stored
        assert stats["reparse/charset_unknown"] == (0 if stored else 1)
        assert stats["reparse/changed"] == (1 if stored else 0)
