"""Faults that used to pass silently, on real servers on 127.0.0.1: bodies
too large (a decompression bomb, a body past DOWNLOAD_MAXSIZE announced or
streamed), redirects off the site, and `scrapy crawl`'s exit status."""
from __future__ import annotations

import gzip
import os
import subprocess
from datetime import datetime, timezone

import pytest
from _fakesite import (FakeSite, Reply, crawl, ctgov_json, ctgov_study, env_for, medpath_page, medpath_path,
                       scrapy_cmd, sitemap_urlset)

from _servers import postgres_server  # noqa: F401  (fixture)

from harvester.store import Store

API = "/api/v2/studies/"
STUDY_URL = "https://clinicaltrials.gov/api/v2/studies/{}"


@pytest.fixture
def site():
    s = FakeSite()
    yield s
    s.close()


def gzip_bomb(inflated: int) -> bytes:
    """Gzip members of 1 MiB of zeros each: about 1 KB sent per MiB inflated."""
    member = gzip.compress(b"\0" * (1 << 20), 9)
    return member * (inflated >> 20)


def crawl_measured(spider, tmp, *args, settings=None, timeout=120):
    """`scrapy crawl` in a subprocess, with the peak RSS of that process (bytes)."""
    (tmp / "reports").mkdir(parents=True, exist_ok=True)
    with open(tmp / "stderr.log", "w+") as err:
        proc = subprocess.Popen(scrapy_cmd(spider, tmp, *args, settings=settings), cwd=tmp, env=env_for(tmp),
                                stdout=subprocess.DEVNULL, stderr=err)
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            proc.returncode = 0
        err.seek(0)
        log = err.read()
    return os.waitstatus_to_exitcode(status), log, usage.ru_maxrss * 1024


def rejects(db) -> list[dict]:
    with Store(db) as store:
        return store.rejects()


# --- bodies too large --------------------------------------------------------------------------
def test_decompression_bomb_is_a_failed_page_with_its_reason_and_memory_stays_bounded(site, tmp_path):
    ok, bomb = "NCT07100001", "NCT07100002"
    body = gzip_bomb(2 << 30)  # 2 GiB of zeros in ~2 MB of gzip
    assert len(body) < 3 << 20
    site.script(API + ok, Reply(body=ctgov_json(ctgov_study(ok))))
    site.script(API + bomb, Reply(body=body, headers={"Content-Encoding": "gzip"}))
    code, log, rss = crawl_measured("ctgov", tmp_path, "-a", f"base_url={site.base}", "-a", f"nct={ok},{bomb}")
    # ctgov's own limit is 256 MiB: inflating stops there, far from the 2 GiB
    assert rss < 900 << 20, f"peak RSS {rss >> 20} MiB"
    assert code == 1, log[-3000:]
    assert f"page failed {STUDY_URL.format(bomb)}: body larger than the download limit when decompressed" in log
    assert "DOWNLOAD_MAXSIZE (256.0 MiB)" in log
    from _fakesite import Crawl
    report = Crawl(code, log, tmp_path, "ctgov").report
    assert report["failed"] and report["items"] == 1
    assert report["stats"]["harvester/failed_pages/too_large"] == 1
    assert "1 failed pages" in report["failure_reasons"]
    assert "harvester/ignored" not in report["stats"]
    [reject] = rejects(tmp_path / "harvest.sqlite3")
    assert reject["url"] == STUDY_URL.format(bomb) and reject["stage"] == "download"
    assert "when decompressed" in reject["error"]
    assert len(site.requests_for(API + bomb)) == 1  # not fetched again: retrying cannot help


@pytest.mark.parametrize("announced", [True, False], ids=["content-length", "streamed"])
def test_body_past_download_maxsize_is_a_failed_page_not_retried(site, tmp_path, announced):
    # MedPath's own limit: 16 MiB for a study page
    paths = [medpath_path(i) for i in range(2)]
    site.script(paths[0], Reply(body=medpath_page("NCT07100010", 0), content_type="text/html; charset=utf-8"))
    big = b"<html><body>" + b"x" * (17 << 20) + b"</body></html>"
    site.script(paths[1], Reply(body=big, content_type="text/html", length=announced))
    urls = ",".join(site.url(p) for p in paths)
    run = crawl("medpath", tmp_path, "-a", f"base_url={site.base}", "-a", f"urls={urls}")
    assert run.returncode == 1, run.stderr[-3000:]
    assert run.report["items"] == 1 and run.report["failed"]
    assert run.stats["harvester/failed_pages/too_large"] == 1
    assert f"page failed {site.url(paths[1])}: body larger than DOWNLOAD_MAXSIZE (16.0 MiB)" in run.stderr
    [reject] = rejects(tmp_path / "harvest.sqlite3")
    assert reject["url"] == site.url(paths[1]) and reject["stage"] == "download"  # as its record would be
    assert len(site.requests_for(paths[1])) == 1


def test_download_limits_fit_each_site():
    from scrapy.utils.project import get_project_settings
    from scrapy.spiderloader import SpiderLoader

    settings = get_project_settings()
    loader = SpiderLoader.from_settings(settings)
    limits = {name: (loader.load(name).custom_settings["DOWNLOAD_MAXSIZE"],
                     loader.load(name).custom_settings["DOWNLOAD_WARNSIZE"]) for name in loader.list()}
    mib = 1 << 20
    # a CT.gov page of 1,000 studies at ~37 KB each is ~37 MB: well under the warning
    assert limits["ctgov"] == (256 * mib, 128 * mib)
    for html in ("veeva", "medpath", "clinconnect"):
        assert limits[html] == (16 * mib, 2 * mib)
    assert settings.getint("DOWNLOAD_MAXSIZE") == 32 * mib  # anything else: not Scrapy's 1 GiB


def test_sitemap_bomb_is_a_failed_page(site, tmp_path):
    site.script("/sitemap.xml", Reply(body=gzip_bomb(80 << 20), content_type="application/x-gzip"))
    run = crawl("medpath", tmp_path, "-a", f"base_url={site.base}")
    assert run.returncode == 1, run.stderr[-3000:]
    assert run.stats["harvester/failed_pages/too_large"] == 1
    assert "sitemap larger than 64 MiB when decompressed" in run.stderr


# --- redirects off the site ------------------------------------------------------------------
def test_offsite_redirects_fail_the_run_with_a_warning_and_keep_the_watermark(site, tmp_path):
    paths = [medpath_path(i) for i in range(3)]
    for i, p in enumerate(paths):
        site.script(p, Reply(body=medpath_page(f"NCT0710002{i}", i), content_type="text/html; charset=utf-8"))
    site.script("/sitemap.xml", Reply(body=sitemap_urlset([(site.url(p), "2026-11-20") for p in paths]),
                                      content_type="application/xml"))
    args = ("-a", f"base_url={site.base}", "-a", "incremental=1")
    first = crawl("medpath", tmp_path, *args)
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.report["watermark"]["set"]
    mark = first.report["watermark"]["value"]

    # now every study page has changed (lastmod today) and redirects to another host
    today = datetime.now(timezone.utc).date().isoformat()
    site.script("/sitemap.xml", Reply(body=sitemap_urlset([(site.url(p), today) for p in paths]),
                                      content_type="application/xml"))
    for i, p in enumerate(paths):
        site.script(p, Reply(status=302, headers={"Location": f"http://elsewhere.invalid/moved/{i}"}))
    second = crawl("medpath", tmp_path, *args)
    assert second.returncode == 1, second.stderr[-3000:]
    report = second.report
    assert report["failed"] and report["items"] == 0 and report["failed_pages"] == 3
    assert report["stats"]["harvester/failed_pages/offsite_redirect"] == 3
    assert report["watermark"] == {"key": "medpath", "set": False, "value": mark,
                                   "why": "3 failed pages"}
    warnings = [line for line in second.stderr.splitlines() if "page failed" in line]
    assert len(warnings) == 3 and all("[medpath] WARNING: page failed" in w for w in warnings)
    assert f"page failed {site.url(paths[0])}: redirected off the site to elsewhere.invalid" in second.stderr
    with Store(tmp_path / "harvest.sqlite3") as store:
        assert store.get_watermark("medpath") == mark
        assert sorted((r["url"], r["error"]) for r in store.rejects()) == sorted(
            (site.url(p), "redirected off the site to elsewhere.invalid") for p in paths)


def test_a_request_the_spider_makes_off_the_site_is_still_filtered(site, tmp_path):
    # -a urls= naming another host: Scrapy's offsite rule, not a failed page
    run = crawl("medpath", tmp_path, "-a", f"base_url={site.base}", "-a", "urls=http://elsewhere.invalid/x")
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stats.get("offsite/filtered") == 1 and "harvester/failed_pages" not in run.stats


# --- scrapy crawl's exit status -------------------------------------------------------------------
def test_scrapy_crawl_exits_non_zero_on_a_500_storm_and_zero_on_a_clean_run(site, tmp_path):
    ncts = [f"NCT0710003{i}" for i in range(3)]
    for i, n in enumerate(ncts):
        site.script(API + n, Reply(body=ctgov_json(ctgov_study(n, i))))
    args = ("-a", f"base_url={site.base}", "-a", f"nct={','.join(ncts)}")
    clean = crawl("ctgov", tmp_path / "a", *args)
    assert clean.returncode == 0, clean.stderr[-3000:]
    assert not clean.report["failed"]
    for n in ncts:
        site.script(API + n, Reply(status=500, body=b"oops"))
    storm = crawl("ctgov", tmp_path / "b", *args)
    assert storm.returncode == 1, storm.stderr[-3000:]
    assert storm.report["failed"]
    assert "crawl ctgov: run failed: 3 failed pages; 3 requests failed after their retries" in storm.stderr


# --- what a recorded cassette keeps -----------------------------------------------------------------
def test_a_recorded_cassette_keeps_no_secret_and_still_replays(site, tmp_path):
    p = medpath_path(40)
    sent = {"X-Auth-Token": "resp-auth-SECRET1", "X-Amz-Security-Token": "amz-SECRET2",
            "WWW-Authenticate": 'Bearer realm="trials", error="invalid_token", token="www-SECRET3"',
            "Set-Cookie": "sid=cookie-SECRET4; HttpOnly", "X-Request-Id": "req-id-SECRET11",
            "ETag": '"v1"', "Cache-Control": "private"}
    asked = p + "?api_key=query-SECRET5&access_token=query-SECRET6&lang=en"
    moved = p + "?session_token=loc-SECRET7&lang=en"
    site.script(asked, Reply(status=302, headers={**sent, "Location": site.url(moved)}))
    site.script(moved, Reply(body=medpath_page("NCT07100040", 40), content_type="text/html; charset=utf-8",
                             headers=sent))
    (tmp_path / "secret_settings.py").write_text(
        "from harvester.settings import *  # noqa\n"
        "DEFAULT_REQUEST_HEADERS = {'Accept': 'text/html', 'X-Auth-Token': 'req-auth-SECRET8',"
        " 'X-CSRF-Token': 'csrf-SECRET9'}\n")
    env = {**env_for(tmp_path), "SCRAPY_SETTINGS_MODULE": "secret_settings"}
    env["PYTHONPATH"] = f"{tmp_path}{os.pathsep}{env['PYTHONPATH']}"
    cassettes = tmp_path / "cassettes"

    def run(mode):
        cmd = scrapy_cmd("medpath", tmp_path, "-a", f"base_url={site.base}", "-a", f"urls={site.url(asked)}",
                         settings={"VCR_CASSETTE": f"{cassettes}/", "VCR_RECORD_MODE": mode,
                                   "HARVEST_CONTACT": "mailto:ops-SECRET10@example.org"})
        proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc

    run("new_episodes")
    assert [h.path for h in site.hits if h.path != "/robots.txt"] == [asked, moved]
    assert site.hits[-1].headers["x-auth-token"] == "req-auth-SECRET8"  # they were really sent
    assert "ops-SECRET10" in site.hits[-1].headers["user-agent"]
    text = (cassettes / "medpath.yaml").read_text(encoding="utf-8")
    assert (cassettes / "medpath.yaml").stat().st_mode & 0o777 == 0o666 & ~_umask()  # not mkstemp's 0600
    assert "SECRET" not in text, [line for line in text.splitlines() if "SECRET" in line]
    assert "X-Auth-Token" not in text and "User-Agent" not in text and "Set-Cookie" not in text
    # what replay needs is there: statuses, the redirect, the validators, the body
    assert "code: 302" in text and "code: 200" in text and "NCT07100040" in text
    assert "api_key=REDACTED&access_token=REDACTED&lang=en" in text
    assert "session_token=REDACTED&lang=en" in text and "Etag" in text and "Content-Type" in text

    site.clear_log()
    replay = run("none")
    assert site.hits == [] and "Cassette miss" not in replay.stderr
    from _fakesite import Crawl
    report = Crawl(0, replay.stderr, tmp_path, "medpath").report
    assert report["items"] == 1 and report["stats"]["vcr/played"] == 3  # robots.txt, the 302, the page


# --- passwords never printed ---------------------------------------------------------------------
def test_base_url_credentials_become_basic_auth_and_never_reach_a_log_line(site, tmp_path):
    import base64

    ok, broken = "NCT07100050", "NCT07100051"
    site.script(API + ok, Reply(body=ctgov_json(ctgov_study(ok))))
    site.script(API + broken, Reply(status=500, body=b"oops"))  # an ERROR line naming the URL
    origin = site.base.replace("http://", "http://reader:pw-SECRET-42@")
    run = crawl("ctgov", tmp_path, "-a", f"base_url={origin}", "-a", f"nct={ok},{broken}")
    assert run.returncode == 1 and run.report["items"] == 1, run.stderr[-3000:]
    assert "request failed" in run.stderr
    assert "SECRET" not in run.stderr
    assert "SECRET" not in (tmp_path / "reports" / "ctgov-latest.json").read_text()
    hit = site.requests_for(API + ok)[0]
    assert hit.headers["authorization"] == "Basic " + base64.b64encode(b"reader:pw-SECRET-42").decode()
    with Store(tmp_path / "harvest.sqlite3") as store:
        assert [s.record.url for s in store.iter_sources()] == [STUDY_URL.format(ok)]


def test_postgresql_password_is_in_no_error_and_no_log_line(tmp_path, postgres_server):
    from _project import scrapy

    from harvester.store_pg import PgStore

    port = postgres_server.port
    # a database that does not exist, and a URL libpq cannot parse (its error is not an OperationalError)
    for url in (f"postgresql://harvester:pw-SECRET-7@127.0.0.1:{port}/no_such_db",
                "postgresql://harvester:pw-SECRET-8@127.0.0.1:notaport/postgres"):
        with pytest.raises(ConnectionError) as err:
            PgStore(url)
        assert "SECRET" not in str(err.value)
        assert "cannot connect to the PostgreSQL store postgresql://harvester:***@" in str(err.value)
        run = scrapy(["reconcile", "-O", "c.jsonl"], tmp_path, offline=False, extra_env={"HARVEST_DB": url})
        assert run.returncode != 0 and "cannot connect to the PostgreSQL store" in run.stderr
        assert "SECRET" not in run.stderr + run.stdout
    # a crawl into a store whose URL carries a password (the test server trusts any)
    url = postgres_server.new_database("pw").replace("harvester@", "harvester:pw-SECRET-9@")
    run = scrapy(["crawl", "ctgov", "-a", "nct=NCT02513394"], tmp_path / "crawl", extra_env={"HARVEST_DB": url})
    assert run.returncode == 0, run.stderr[-3000:]
    assert "SECRET" not in run.stderr + run.stdout
    assert "SECRET" not in (tmp_path / "crawl" / "reports" / "ctgov-latest.json").read_text()


# --- modes of the files a user reads ----------------------------------------------------------------
def test_output_keeps_the_replaced_files_mode_else_the_umasks_and_writes_through_symlinks(tmp_path):
    from harvester.atomic import atomic_write

    kept = tmp_path / "kept.jsonl"
    kept.write_text("old\n")
    kept.chmod(0o644)
    with atomic_write(kept) as fh:
        fh.write(b"new\n")
    assert kept.read_text() == "new\n" and kept.stat().st_mode & 0o777 == 0o644

    old = os.umask(0o027)
    try:
        fresh = tmp_path / "fresh.jsonl"
        with atomic_write(fresh) as fh:
            fh.write(b"x\n")
    finally:
        os.umask(old)
    assert fresh.stat().st_mode & 0o777 == 0o640

    real = tmp_path / "releases" / "canonical-2026-12-01.jsonl"
    real.parent.mkdir()
    real.write_text("old\n")
    real.chmod(0o664)
    link = tmp_path / "canonical.jsonl"
    link.symlink_to(real)
    with atomic_write(link) as fh:
        fh.write(b"new\n")
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text() == "new\n" and real.stat().st_mode & 0o777 == 0o664


def test_temporaries_of_a_killed_run_are_removed_by_the_next_write(tmp_path):
    from harvester.atomic import atomic_write

    dead = subprocess.Popen(["true"])
    dead.wait()  # a PID that no longer runs
    out = tmp_path / "out.jsonl"
    left = tmp_path / f".out.jsonl.{dead.pid}.k1ll3d_x.tmp"
    left.write_bytes(b"x" * 1000)
    mine = tmp_path / f".out.jsonl.{os.getpid()}.running.tmp"  # a live writer's: left alone
    mine.write_bytes(b"y")
    other = tmp_path / f".other.jsonl.{dead.pid}.abcdefgh.tmp"  # another file's: left alone
    other.write_bytes(b"z")
    with atomic_write(out) as fh:
        fh.write(b"ok\n")
    assert not left.exists() and mine.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name, mine.name, other.name])


def test_reconcile_output_keeps_the_mode_of_the_file_it_replaces(tmp_path):
    from _project import scrapy

    run = scrapy(["crawl", "ctgov", "-a", "nct=NCT02513394"], tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    out = tmp_path / "canonical.jsonl"
    out.write_text("")
    out.chmod(0o644)
    run = scrapy(["reconcile", "-O", "canonical.jsonl"], tmp_path, offline=False)
    assert run.returncode == 0, run.stderr[-3000:]
    assert out.stat().st_mode & 0o777 == 0o644 and out.read_text().startswith("{")
    assert (tmp_path / "unlinked.jsonl").stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    from harvester.atomic import umask

    return umask()


# --- bad input gets the right message, filed under the right URL -----------------------------------
def _extract(tmp_path, site_name, name, body: bytes):
    import sys

    from _project import REPO

    path = tmp_path / name
    path.write_bytes(body)
    env = {**env_for(tmp_path), "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "scrapy", "extract", site_name, str(path)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)


def test_extract_ctgov_on_json_of_the_wrong_shape_says_what_it_expected(tmp_path):
    want = ('expected one CT.gov API v2 study: a JSON object with a "protocolSection" object '
            "(the body of GET /api/v2/studies/NCT...)")
    for name, body, got in (("list.json", b'[{"protocolSection": {}}]', "got a JSON array"),
                            ("page.json", b'{"studies": [{}, {}, {}]}', "got a search page of 3 studies"),
                            ("bare.json", b'{"nctId": "NCT04008524"}', "got an object with protocolSection missing")):
        run = _extract(tmp_path, "ctgov", name, body)
        assert run.returncode == 1
        assert f"{want}, {got}" in run.stderr, run.stderr[-2000:]
        assert "AttributeError" not in run.stderr


def deep_veeva_page(depth: int) -> bytes:
    from _project import REPO

    html = (REPO / "cassettes" / "src" / "veeva" / "ref_NCT03263208.html").read_text(encoding="utf-8")
    body_at = html.index(">", html.index("<body")) + 1
    return (html[:body_at] + "<div>" * depth + html[body_at:]).encode()


def test_html_nested_past_libxml2s_depth_limit_is_said_to_be_too_deep_not_changed_labels(site, tmp_path):
    shallow, deep = "/study/shallow-enough", "/study/far-too-deep"
    site.script(shallow, Reply(body=deep_veeva_page(200), content_type="text/html; charset=utf-8"))
    site.script(deep, Reply(body=deep_veeva_page(300), content_type="text/html; charset=utf-8"))
    run = crawl("veeva", tmp_path, "-a", f"base_url={site.base}", "-a", f"urls={site.url(shallow)},{site.url(deep)}")
    assert run.returncode == 1 and run.report["items"] == 1, run.stderr[-3000:]
    assert run.stats["harvester/too_deeply_nested"] == 1
    [reject] = rejects(tmp_path / "harvest.sqlite3")
    assert reject["url"] == site.url(deep)
    assert reject["error"].startswith("the page is nested too deeply to parse: elements past libxml2's "
                                      "limit of 256 levels are not read")
    run = _extract(tmp_path, "veeva", "deep.html", deep_veeva_page(300))
    assert run.returncode == 1 and "nested too deeply to parse" in run.stderr


def test_rejects_are_filed_under_the_studys_own_url(site, tmp_path):
    study = medpath_path(60)
    site.script(study, Reply(status=302, headers={"Location": f"/login?next={study}"}))
    site.script(f"/login?next={study}", Reply(body=b"<html><body><form>Sign in</form></body></html>",
                                              content_type="text/html"))
    run = crawl("medpath", tmp_path / "m", "-a", f"base_url={site.base}", "-a", f"urls={site.url(study)}")
    assert run.returncode == 1, run.stderr[-3000:]
    [reject] = rejects(tmp_path / "m" / "harvest.sqlite3")
    assert reject["url"] == site.url(study) and reject["stage"] == "parse"  # not /login?next=...

    nct = "NCT07100061"
    site.script(API + nct, Reply(body=b'{"protocolSection": {"identificationModule": '))  # truncated
    run = crawl("ctgov", tmp_path / "c", "-a", f"base_url={site.base}", "-a", f"nct={nct}")
    assert run.returncode == 1, run.stderr[-3000:]
    [reject] = rejects(tmp_path / "c" / "harvest.sqlite3")
    assert reject["url"] == STUDY_URL.format(nct)  # not the base_url's 127.0.0.1 one


# --- a 7-digit NCT ID zero-padded into another trial's -------------------------------------------------
def test_a_seven_digit_nct_id_is_padded_with_a_note_counted_in_the_crawl(site, tmp_path):
    p = medpath_path(70)
    site.script(p, Reply(body=medpath_page("NCT0400852", 70), content_type="text/html; charset=utf-8"))
    run = crawl("medpath", tmp_path, "-a", f"base_url={site.base}", "-a", f"urls={site.url(p)}")
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stats["harvester/nct_zero_padded"] == 1
    with Store(tmp_path / "harvest.sqlite3") as store:
        [stored] = [s.record for s in store.iter_sources()]
    assert stored.nct_id == "NCT00400852"
    [note] = [n for n in stored.notes if n.kind == "nct_zero_padded"]
    assert note.detail.startswith("printed 'NCT0400852' (7 digits), read as NCT00400852 by zero-padding")
    assert "NCT0400852" in run.stderr and "zero-padding" in run.stderr


def test_a_padded_page_links_only_when_title_and_sponsor_agree_with_the_padded_ids_trial():
    from test_linking import ctgov, rec, run as reconcile_records

    from items import Note

    pad = Note(field="nct_id", kind="nct_zero_padded", detail="printed 'NCT0400852' (7 digits)")
    trial = ctgov("NCT00400852", brief_title="Gemcitabine With or Without Erlotinib in Pancreatic Cancer",
                  lead_sponsor={"name": "National Cancer Institute (NCI)"})
    same = rec("medpath", "https://trial.medpath.com/clinical-trial/a/same", nct_id="NCT00400852",
               brief_title="Gemcitabine with or without Erlotinib in Pancreatic Cancer",
               lead_sponsor={"name": "National Cancer Institute (NCI)"}, notes=[pad])
    other = rec("medpath", "https://trial.medpath.com/clinical-trial/b/other", nct_id="NCT00400852",
                brief_title="CAR-T Cells for Relapsed B-Cell Leukemia in Children",
                lead_sponsor={"name": "Shanxi Bethune Hospital"}, notes=[pad])
    alone = rec("medpath", "https://trial.medpath.com/clinical-trial/c/alone", nct_id="NCT00400999",
                brief_title="Some trial", lead_sponsor={"name": "Someone"}, notes=[pad])
    trials, unlinked, summary = reconcile_records([trial, same, other, alone])
    assert sorted(trials) == ["NCT00400852"]
    assert sorted(s["url"] for s in trials["NCT00400852"]["sources"]) == sorted([trial.url, same.url])
    reasons = {row["url"]: row["reason"] for row in unlinked}
    assert set(reasons) == {other.url, alone.url}
    assert reasons[other.url].startswith("nct_zero_padded: title 0.")
    assert "against NCT00400852's trial: the padded ID is probably another trial" in reasons[other.url]
    assert reasons[alone.url] == "nct_zero_padded: no other page of NCT00400999 to check the padded ID against"
    assert summary.padded_unlinked == 2 and summary.unlinked == 2
