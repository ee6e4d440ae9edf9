"""VcrCassetteMiddleware: record against a real local server, replay offline.

Crawls run in subprocesses (``_loopback.run_crawl``, one reactor per process)
with the middleware registered at 950 as the project settings do. Unit tests
drive the middleware directly through ``get_crawler()``.
"""

from __future__ import annotations

import base64
import gzip
import logging
import shutil
from pathlib import Path

import pytest
import scrapy
import yaml
from _loopback import NETWORK_VIOLATION_EXIT, offline_env, run_crawl
from pytest_httpserver import HTTPServer
from scrapy import Spider
from scrapy.exceptions import NotConfigured
from scrapy.http import HtmlResponse, Request, Response
from scrapy.utils.test import get_crawler
from vcr.serialize import deserialize
from vcr.serializers import yamlserializer
from werkzeug.wrappers import Response as WerkzeugResponse

from harvester.cassette import normalize_uri
from harvester.middlewares import CassetteMiss, VcrCassetteMiddleware

MW = "harvester.middlewares.VcrCassetteMiddleware"
SPIDER = "test_vcr_middleware:LoopbackSpider"

PLAIN_HTML = "<html><body><h1>Plain page</h1><p>café ✓</p></body></html>"
GZIP_HTML = "<html><body><h1>Compressed page</h1>" + "<p>lorem ipsum</p>" * 200 + "</body></html>"
LATIN1_HTML = "<html><head><meta charset='iso-8859-1'></head><body>Résumé à la carte</body></html>".encode(
    "iso-8859-1"
)
BINARY = bytes(range(256)) * 4
SECRETS = ("s3cr3t-session", "Bearer t0ken", "k3y-123", "pref=dark")


# --------------------------------------------------------------------------
# The spider run in the subprocesses


class LoopbackSpider(scrapy.Spider):
    """Requests what it is given; yields one item per response or failure.

    A spec is ``{"url", "method", "headers", "body", "cookies", "then": [specs]}``;
    ``then`` requests are made after the response arrives.
    """

    name = "loopback"

    def __init__(self, specs=None, **kwargs):
        super().__init__(**kwargs)
        self.specs = specs or []

    async def start(self):
        for spec in self.specs:
            yield self.make(spec)

    def make(self, spec):
        return scrapy.Request(
            spec["url"],
            method=spec.get("method", "GET"),
            headers=spec.get("headers"),
            body=spec.get("body"),
            cookies=spec.get("cookies"),
            callback=self.parse,
            errback=self.failed,
            cb_kwargs={"then": spec.get("then", [])},
        )

    def parse(self, response, then):
        yield {
            "request_url": response.request.url,
            "url": response.url,
            "status": response.status,
            "class": type(response).__name__,
            "body": base64.b64encode(response.body).decode("ascii"),
            "redirect_urls": response.meta.get("redirect_urls", []),
            "retry_times": response.meta.get("retry_times", 0),
            "flags": response.flags,
        }
        for spec in then:
            yield self.make(spec)

    def failed(self, failure):
        yield {
            "error": type(failure.value).__name__,
            "message": str(failure.value),
            "request_url": failure.request.url,
        }


def crawl_settings(cassette: Path, mode: str, **extra) -> dict:
    settings = {
        "DOWNLOADER_MIDDLEWARES": {MW: 950},
        "VCR_CASSETTE": str(cassette),
        "VCR_RECORD_MODE": mode,
        "ROBOTSTXT_OBEY": False,
        "HTTPCACHE_ENABLED": False,
        "COOKIES_ENABLED": True,
        "RETRY_TIMES": 2,
        "DOWNLOAD_DELAY": 0,
        "DOWNLOAD_TIMEOUT": 10,
        "TELNETCONSOLE_ENABLED": False,
        "LOG_LEVEL": "INFO",
    }
    settings.update(extra)
    return settings


def specs_for(base: str) -> list[dict]:
    return [
        {"url": f"{base}/plain"},
        {"url": f"{base}/gzip"},
        {"url": f"{base}/redirect"},
        {"url": f"{base}/latin1"},
        {"url": f"{base}/binary"},
        {"url": f"{base}/fragment#section-2"},
        {"url": f"{base}/flaky"},
        {"url": f"{base}/set-cookie", "then": [{"url": f"{base}/after-cookie"}]},
        {"url": f"{base}/auth", "headers": {"Authorization": "Bearer t0ken", "X-API-Key": "k3y-123"}},
        {"url": f"{base}/with-cookie", "cookies": {"pref": "dark"}},
        {"url": f"{base}/search", "method": "POST", "body": "q=trials", "headers": {"Content-Type": "text/plain"}},
    ]


def start_server() -> HTTPServer:
    server = HTTPServer(host="127.0.0.1", port=0)
    html = "text/html; charset=utf-8"
    server.expect_request("/plain").respond_with_data(PLAIN_HTML, content_type=html)
    server.expect_request("/gzip").respond_with_data(
        gzip.compress(GZIP_HTML.encode("utf-8")), content_type=html, headers={"Content-Encoding": "gzip"}
    )
    server.expect_request("/redirect").respond_with_handler(
        lambda request: WerkzeugResponse("", status=302, headers={"Location": request.host_url + "landing"})
    )
    server.expect_request("/landing").respond_with_data("<html><body>Landed</body></html>", content_type=html)
    server.expect_request("/latin1").respond_with_data(LATIN1_HTML, content_type="text/html; charset=iso-8859-1")
    server.expect_request("/binary").respond_with_data(BINARY, content_type="application/octet-stream")
    server.expect_request("/fragment").respond_with_data("<html><body>Fragment</body></html>", content_type=html)
    calls = {"flaky": 0}

    def flaky(request):
        calls["flaky"] += 1
        if calls["flaky"] == 1:
            return WerkzeugResponse("busy", status=503, content_type="text/plain")
        return WerkzeugResponse("<html><body>Recovered</body></html>", status=200, content_type=html)

    server.expect_request("/flaky").respond_with_handler(flaky)
    server.expect_request("/set-cookie").respond_with_data(
        "<html><body>cookie set</body></html>",
        content_type=html,
        headers={"Set-Cookie": "session=s3cr3t-session; Path=/"},
    )
    server.expect_request("/after-cookie").respond_with_data("<html><body>after</body></html>", content_type=html)
    server.expect_request("/auth").respond_with_data('{"ok": true}', content_type="application/json")
    server.expect_request("/with-cookie").respond_with_data("<html><body>pref</body></html>", content_type=html)
    server.expect_request("/search", method="POST").respond_with_data(
        "<html><body>results</body></html>", content_type=html
    )
    server.start()
    return server


def items_by_path(items: list[dict]) -> dict[str, dict]:
    """Items by the path first requested (a redirected item by its 30x URL)."""
    by_path = {}
    for item in items:
        first = (item.get("redirect_urls") or [item["request_url"]])[0]
        by_path[normalize_uri(first).split("/", 3)[3]] = item
    return by_path


def load_interactions(path: Path) -> list[tuple]:
    requests, responses, *_ = deserialize(path.read_text(encoding="utf-8"), yamlserializer)
    return list(zip(requests, responses, strict=True))


# --------------------------------------------------------------------------
# Record once, then replay with the server gone


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("record")
    cassette = tmp / "cassettes" / "site.yaml"
    server = start_server()
    try:
        base = server.url_for("").rstrip("/")
        result = run_crawl(SPIDER, crawl_settings(cassette, "once"), {"specs": specs_for(base)}, tmp)
        served = [(req.path, dict(req.headers)) for req, _ in server.log]
    finally:
        server.stop()  # replay runs with nothing listening on that port
    return {"tmp": tmp, "cassette": cassette, "base": base, "result": result, "served": served}


@pytest.fixture(scope="module")
def replay(recording, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("replay")
    cassette = tmp / "site.yaml"
    shutil.copy(recording["cassette"], cassette)
    result = run_crawl(SPIDER, crawl_settings(cassette, "none"), {"specs": specs_for(recording["base"])}, tmp)
    return {"cassette": cassette, "result": result}


def test_record_crawl_runs_against_live_server(recording):
    result = recording["result"]
    assert result["returncode"] == 0, result["stderr"][-3000:]
    stats = result["stats"]
    # Every request the server answered was recorded, nothing replayed.
    assert stats["vcr/recorded"] == len(recording["served"]) == 14
    assert "vcr/played" not in stats and "vcr/save_error" not in stats
    assert "log_count/ERROR" not in stats
    assert len(load_interactions(recording["cassette"])) == 14


def test_recorded_redirect_is_its_own_interaction(recording):
    by_uri = {normalize_uri(req.uri): (req, resp) for req, resp in load_interactions(recording["cassette"])}
    base = recording["base"]
    _, redirect = by_uri[f"{base}/redirect"]
    assert redirect["status"]["code"] == 302
    assert redirect["headers"]["Location"] == [f"{base}/landing"]
    assert by_uri[f"{base}/landing"][1]["status"]["code"] == 200


def test_recorded_gzip_body_stays_compressed_and_binary_round_trips(recording):
    by_uri = {normalize_uri(req.uri): resp for req, resp in load_interactions(recording["cassette"])}
    base = recording["base"]
    compressed = by_uri[f"{base}/gzip"]
    assert compressed["headers"]["Content-Encoding"] == ["gzip"]
    assert compressed["body"]["string"][:2] == b"\x1f\x8b"
    assert gzip.decompress(compressed["body"]["string"]).decode("utf-8") == GZIP_HTML
    assert by_uri[f"{base}/binary"]["body"]["string"] == BINARY
    assert by_uri[f"{base}/latin1"]["body"]["string"] == LATIN1_HTML


def test_recorded_cassette_holds_no_cookies_or_credentials(recording):
    # The server did receive them: filtering, not absence, keeps them out.
    served = {path: {k.lower(): v for k, v in headers.items()} for path, headers in recording["served"]}
    assert "s3cr3t-session" in served["/after-cookie"]["cookie"]
    assert served["/with-cookie"]["cookie"] == "pref=dark"
    assert served["/auth"]["authorization"] == "Bearer t0ken"
    assert served["/auth"]["x-api-key"] == "k3y-123"

    text = recording["cassette"].read_text(encoding="utf-8")
    for secret in SECRETS:
        assert secret not in text
    forbidden = {"cookie", "set-cookie", "authorization", "proxy-authorization", "x-api-key"}
    for request, response in load_interactions(recording["cassette"]):
        assert not forbidden & {k.lower() for k in request.headers}
        assert not forbidden & {k.lower() for k in response["headers"]}
        assert "#" not in request.uri  # fragments never reach the server
    raw = yaml.safe_load(text.replace("!!binary", "!!str"))
    assert raw["version"] == 1


def test_recorded_retry_keeps_both_attempts_in_order(recording):
    base = recording["base"]
    flaky = [resp["status"]["code"] for req, resp in load_interactions(recording["cassette"]) if req.uri == f"{base}/flaky"]
    assert flaky == [503, 200]


def test_replay_without_server_gives_the_same_responses(recording, replay):
    result = replay["result"]
    assert result["returncode"] == 0, result["stderr"][-3000:]
    live = items_by_path(recording["result"]["items"])
    replayed = items_by_path(result["items"])
    assert set(replayed) == set(live) and len(replayed) == 12
    for path, item in replayed.items():
        assert "error" not in item, item
        assert "cassette" in item["flags"]
        for field in ("url", "status", "class", "body", "redirect_urls", "retry_times"):
            assert item[field] == live[path][field], (path, field)
    # Decompressed by HttpCompressionMiddleware, as the live response was.
    assert base64.b64decode(replayed["gzip"]["body"]).decode("utf-8") == GZIP_HTML
    assert replayed["gzip"]["class"] == "HtmlResponse"
    assert replayed["redirect"]["redirect_urls"] == [f"{recording['base']}/redirect"]
    assert replayed["redirect"]["url"] == f"{recording['base']}/landing"
    assert base64.b64decode(replayed["binary"]["body"]) == BINARY
    assert base64.b64decode(replayed["latin1"]["body"]) == LATIN1_HTML


def test_replay_stats_count_every_request_as_played(replay):
    stats = replay["result"]["stats"]
    assert stats["vcr/played"] == stats["downloader/request_count"] == 14
    assert stats["downloader/response_count"] == 14
    for key in ("vcr/miss", "vcr/recorded", "vcr/save_error", "downloader/exception_count", "log_count/ERROR"):
        assert key not in stats, key
    assert stats["finish_reason"] == "finished"
    assert replay["result"]["network_violations"] == []


def test_replayed_503_then_200_is_retried(replay):
    stats = replay["result"]["stats"]
    assert stats["retry/count"] == 1
    assert stats["downloader/response_status_count/503"] == 1
    flaky = items_by_path(replay["result"]["items"])["flaky"]
    assert flaky["status"] == 200 and flaky["retry_times"] == 1


def test_none_mode_miss_is_an_error_and_the_crawl_goes_on(recording, tmp_path):
    cassette = tmp_path / "site.yaml"
    shutil.copy(recording["cassette"], cassette)
    base = recording["base"]
    specs = [{"url": f"{base}/plain"}, {"url": f"{base}/never-recorded"}, {"url": f"{base}/gzip"}]
    result = run_crawl(SPIDER, crawl_settings(cassette, "none"), {"specs": specs}, tmp_path)
    assert result["returncode"] == 0, result["stderr"][-3000:]
    items = items_by_path(result["items"])
    assert items["plain"]["status"] == 200 and items["gzip"]["status"] == 200
    miss = items["never-recorded"]
    assert miss["error"] == "CassetteMiss"
    assert f"GET {base}/never-recorded" in miss["message"]
    assert str(cassette) in miss["message"]
    stats = result["stats"]
    assert stats["vcr/miss"] == 1 and stats["vcr/played"] == 2
    assert stats["log_count/ERROR"] == 1
    assert stats["finish_reason"] == "finished"
    assert "ERROR: Cassette miss: GET " + f"{base}/never-recorded" in result["stderr"]


def test_guard_catches_tldextract_download_when_not_configured_offline(recording, tmp_path):
    """The replayed request with a cookie makes CookiesMiddleware ask tldextract
    about the host; with an empty cache and default settings tldextract goes to
    the internet. The guard turns that into a failed crawl, so the offline
    configuration in the other crawls is what keeps them passing."""
    cassette = tmp_path / "site.yaml"
    shutil.copy(recording["cassette"], cassette)
    env = offline_env(tmp_path)
    del env["TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS"]
    specs = [{"url": f"{recording['base']}/with-cookie", "cookies": {"pref": "dark"}}]
    result = run_crawl(SPIDER, crawl_settings(cassette, "none"), {"specs": specs}, tmp_path, env=env)
    assert result["returncode"] == NETWORK_VIOLATION_EXIT
    assert any("publicsuffix" in v for v in result["network_violations"]), result["network_violations"]


# --------------------------------------------------------------------------
# Unit tests: the middleware driven directly


class UnitSpider(Spider):
    name = "unit"


def make_mw(settings: dict, spider_name: str = "unit") -> tuple[VcrCassetteMiddleware, object]:
    crawler = get_crawler(UnitSpider, {"DOWNLOADER_MIDDLEWARES": {MW: 950}, **settings})
    crawler.stats.open_spider()
    mw = VcrCassetteMiddleware.from_crawler(crawler)
    spider = UnitSpider(name=spider_name)
    mw.spider_opened(spider)
    return mw, crawler.stats


def record(mw, request: Request, body: bytes = b"<html>ok</html>", status: int = 200, headers=None) -> None:
    assert mw.process_request(request) is None
    headers = {"Content-Type": "text/html", **(headers or {})}
    mw.process_response(request, Response(request.url, status=status, headers=headers, body=body, request=request))


def test_disabled_without_cassette_setting():
    crawler = get_crawler(UnitSpider, {"VCR_CASSETTE": ""})
    with pytest.raises(NotConfigured):
        VcrCassetteMiddleware.from_crawler(crawler)


def test_directory_cassette_is_named_after_the_spider(tmp_path):
    mw, stats = make_mw({"VCR_CASSETTE": str(tmp_path), "VCR_RECORD_MODE": "once"}, spider_name="ctgov")
    record(mw, Request("https://example.org/a"))
    mw.spider_closed(None, "finished")
    assert stats.get_value("vcr/recorded") == 1
    assert (tmp_path / "ctgov.yaml").is_file()

    mw, stats = make_mw({"VCR_CASSETTE": str(tmp_path)}, spider_name="ctgov")
    response = mw.process_request(Request("https://example.org/a"))
    assert isinstance(response, HtmlResponse) and response.body == b"<html>ok</html>"
    assert stats.get_value("vcr/played") == 1

    # A path ending in a separator is a directory even before it exists.
    mw, _ = make_mw({"VCR_CASSETTE": str(tmp_path / "new") + "/", "VCR_RECORD_MODE": "all"}, spider_name="veeva")
    record(mw, Request("https://example.org/b"))
    mw.spider_closed(None, "finished")
    assert (tmp_path / "new" / "veeva.yaml").is_file()


def test_replayed_response_is_built_like_a_downloaded_one(tmp_path):
    path = tmp_path / "c.yaml"
    mw, _ = make_mw({"VCR_CASSETTE": str(path), "VCR_RECORD_MODE": "once"})
    record(mw, Request("http://Example.COM:80/page?b=2&a=1"), headers={"ETag": '"1"'}, status=404)
    mw.spider_closed(None, "finished")

    mw, stats = make_mw({"VCR_CASSETTE": str(path)})
    request = Request("http://example.com/page?b=2&a=1#top", meta={"k": "v"})
    response = mw.process_request(request)
    assert type(response) is HtmlResponse
    assert response.status == 404
    assert response.url == "http://example.com/page?b=2&a=1"
    assert response.request is request and response.meta == {"k": "v"}
    assert response.flags == ["cassette"]
    assert response.headers.get("etag") == b'"1"'
    # Passing back through process_response does not record it again.
    assert mw.process_response(request, response) is response
    assert stats.get_value("vcr/recorded") is None


def test_filtered_headers_match_any_case(tmp_path):
    path = tmp_path / "c.yaml"
    mw, _ = make_mw({"VCR_CASSETTE": str(path), "VCR_RECORD_MODE": "once", "VCR_FILTER_HEADERS": ["X-Secret", "cookie"]})
    request = Request("https://example.org/", headers={"x-secret": "a", "COOKIE": "b=c", "Accept": "text/html"})
    record(mw, request, headers={"X-SECRET": "d", "Set-Cookie": "dropped-though-not-listed", "Retry-After": "5"})
    mw.spider_closed(None, "finished")
    [(req, resp)] = load_interactions(path)
    assert {k.lower() for k in req.headers} == {"accept"}
    # beyond the list, only the headers replay needs are kept (harvester.cassette_filter)
    assert {k.lower() for k in resp["headers"]} == {"content-type", "retry-after"}


def test_each_interaction_plays_once_unless_repeats_allowed(tmp_path):
    path = tmp_path / "c.yaml"
    mw, _ = make_mw({"VCR_CASSETTE": str(path), "VCR_RECORD_MODE": "once"})
    record(mw, Request("https://example.org/x"), body=b"first")
    mw.spider_closed(None, "finished")

    mw, stats = make_mw({"VCR_CASSETTE": str(path)})
    assert mw.process_request(Request("https://example.org/x")).body == b"first"
    with pytest.raises(CassetteMiss, match="already played.*VCR_ALLOW_REPEATS"):
        mw.process_request(Request("https://example.org/x"))
    assert stats.get_value("vcr/miss") == 1

    mw, stats = make_mw({"VCR_CASSETTE": str(path), "VCR_ALLOW_REPEATS": True})
    for _ in range(3):
        assert mw.process_request(Request("https://example.org/x")).body == b"first"
    assert stats.get_value("vcr/played") == 3 and stats.get_value("vcr/repeated") == 2


def test_post_bodies_are_matched_when_body_is_listed(tmp_path):
    path = tmp_path / "c.yaml"
    settings = {"VCR_CASSETTE": str(path), "VCR_MATCH_ON": ["method", "uri", "body"]}
    mw, _ = make_mw({**settings, "VCR_RECORD_MODE": "once"})
    for query in ("alpha", "beta"):
        record(mw, Request("https://api.example.org/q", method="POST", body=query), body=query.upper().encode())
    mw.spider_closed(None, "finished")

    mw, _ = make_mw(settings)
    assert mw.process_request(Request("https://api.example.org/q", method="POST", body="beta")).body == b"BETA"
    assert mw.process_request(Request("https://api.example.org/q", method="POST", body="alpha")).body == b"ALPHA"
    with pytest.raises(CassetteMiss, match="POST https://api.example.org/q"):
        mw.process_request(Request("https://api.example.org/q", method="POST", body="gamma"))
    with pytest.raises(CassetteMiss):
        mw.process_request(Request("https://api.example.org/q"))  # GET is another method


def test_miss_message_names_closest_recorded_uris(tmp_path):
    path = tmp_path / "c.yaml"
    mw, _ = make_mw({"VCR_CASSETTE": str(path), "VCR_RECORD_MODE": "once"})
    record(mw, Request("https://example.org/study/NCT001"))
    mw.spider_closed(None, "finished")
    mw, _ = make_mw({"VCR_CASSETTE": str(path)})
    with pytest.raises(CassetteMiss) as info:
        mw.process_request(Request("https://example.org/study/NCT002"))
    message = str(info.value)
    assert "GET https://example.org/study/NCT002" in message and str(path) in message
    assert "closest recorded: https://example.org/study/NCT001" in message


def test_record_modes(tmp_path):
    path = tmp_path / "c.yaml"
    mw, _ = make_mw({"VCR_CASSETTE": str(path), "VCR_RECORD_MODE": "once"})
    record(mw, Request("https://example.org/old"), body=b"old")
    mw.spider_closed(None, "finished")

    # once, cassette exists: replay only, a new request misses.
    mw, _ = make_mw({"VCR_CASSETTE": str(path), "VCR_RECORD_MODE": "once"})
    assert mw.process_request(Request("https://example.org/old")).body == b"old"
    with pytest.raises(CassetteMiss):
        mw.process_request(Request("https://example.org/new"))
    mw.spider_closed(None, "finished")

    # new_episodes: replay the old, download and record the new.
    mw, stats = make_mw({"VCR_CASSETTE": str(path), "VCR_RECORD_MODE": "new_episodes"})
    assert mw.process_request(Request("https://example.org/old")).body == b"old"
    record(mw, Request("https://example.org/new"), body=b"new")
    mw.spider_closed(None, "finished")
    assert stats.get_value("vcr/played") == 1 and stats.get_value("vcr/recorded") == 1
    assert [r.uri for r, _ in load_interactions(path)] == ["https://example.org/old", "https://example.org/new"]

    # all: never replay; re-recorded interactions replace the stored ones.
    mw, stats = make_mw({"VCR_CASSETTE": str(path), "VCR_RECORD_MODE": "all"})
    record(mw, Request("https://example.org/old"), body=b"old v2")
    mw.spider_closed(None, "finished")
    assert stats.get_value("vcr/played") is None
    bodies = {r.uri: resp["body"]["string"] for r, resp in load_interactions(path)}
    assert bodies == {"https://example.org/old": b"old v2", "https://example.org/new": b"new"}


def test_failed_save_is_logged_and_counted(tmp_path, caplog):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cassette's folder should be")
    mw, stats = make_mw({"VCR_CASSETTE": str(blocker / "c.yaml"), "VCR_RECORD_MODE": "all"})
    record(mw, Request("https://example.org/"))
    with caplog.at_level(logging.ERROR, logger="harvester.middlewares"):
        mw.spider_closed(None, "finished")
    assert stats.get_value("vcr/save_error") == 1
    assert any(r.levelno == logging.ERROR and "could not be saved" in r.getMessage() for r in caplog.records)


def test_low_priority_is_warned_about(tmp_path, caplog):
    crawler = get_crawler(UnitSpider, {"DOWNLOADER_MIDDLEWARES": {MW: 500}, "VCR_CASSETTE": str(tmp_path / "c.yaml")})
    with caplog.at_level(logging.WARNING, logger="harvester.middlewares"):
        VcrCassetteMiddleware.from_crawler(crawler)
    assert any("Register it at 950" in r.getMessage() for r in caplog.records)


def test_vcr_logger_is_raised_to_warning(tmp_path):
    logging.getLogger("vcr").setLevel(logging.NOTSET)
    make_mw({"VCR_CASSETTE": str(tmp_path / "c.yaml")})
    assert logging.getLogger("vcr").getEffectiveLevel() >= logging.WARNING


def test_unknown_matcher_is_rejected(tmp_path):
    crawler = get_crawler(UnitSpider, {"VCR_CASSETTE": str(tmp_path / "c.yaml"), "VCR_MATCH_ON": ["method", "urll"]})
    with pytest.raises(ValueError, match="urll"):
        VcrCassetteMiddleware.from_crawler(crawler)
