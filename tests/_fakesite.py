"""A scriptable fake site on 127.0.0.1 for fault-injection tests, and a
runner for the project's real `scrapy crawl` pointed at it.

`FakeSite` is a threaded `http.server` (so a slow or hanging answer does not
hold the others). Each path (with its query string) answers from a script:
a list of `Reply`s taken one per request, the last one repeated. A `Reply`
can be slow (`delay`), hang past the client's timeout, cut its body short
(announce the full Content-Length, send `cut` bytes, close), carry headers,
or honour conditional requests (`etag`/`last_modified`: a matching
If-None-Match or If-Modified-Since gets 304). Every request is logged with
its time and headers. `handler` answers paths no script names.

`scrapy_cmd` runs `python -m scrapy` with the test network guard installed
(anything but loopback: exit 97), so the crawls cannot leave the machine.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
DATE = "Mon, 23 Nov 2026 09:00:00 GMT"  # a fixed Date header: records do not depend on when the test ran


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering
    cut: int | None = None  # send only this many body bytes, then close
    etag: str | None = None
    last_modified: str | None = None
    length: bool = True  # False: no Content-Length, the body ends when the connection closes


@dataclass
class Hit:
    path: str
    headers: dict
    at: float
    status: int


class FakeSite:
    def __init__(self):
        self.scripts: dict[str, list[Reply]] = {}
        self.handler: Callable[[str, dict], Reply | None] | None = None
        self.hits: list[Hit] = []
        self.lock = threading.Lock()
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802
                site._answer(self)

            def log_message(self, *args):
                pass

            def setup(self):
                super().setup()
                # headers and body go out in separate writes: without this,
                # Nagle's algorithm and delayed ACKs add 40 ms to each answer
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def handle(self):
                try:
                    super().handle()
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    # -- configuration -------------------------------------------------------------
    def script(self, path: str, *replies: Reply) -> None:
        with self.lock:
            self.scripts[path] = list(replies)

    def url(self, path: str) -> str:
        return self.base + path

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- log -----------------------------------------------------------------------
    def requests_for(self, predicate: Callable[[str], bool] | str) -> list[Hit]:
        test = predicate if callable(predicate) else (lambda p: p == predicate)
        with self.lock:
            return [h for h in self.hits if test(h.path)]

    def count(self, predicate=lambda p: True) -> int:
        return len(self.requests_for(predicate))

    def clear_log(self) -> None:
        with self.lock:
            self.hits.clear()

    # -- serving ----------------------------------------------------------------------
    def _reply_for(self, path: str, headers: dict) -> Reply:
        with self.lock:
            script = self.scripts.get(path)
            if script:
                return script.pop(0) if len(script) > 1 else script[0]
        if path == "/robots.txt":
            return Reply(body=b"User-agent: *\nDisallow: /private/\n", content_type="text/plain")
        if self.handler is not None:
            found = self.handler(path, headers)
            if found is not None:
                return found
        return Reply(status=404, body=b"not here", content_type="text/plain")

    def _answer(self, req: BaseHTTPRequestHandler) -> None:
        headers = {k.lower(): v for k, v in req.headers.items()}
        reply = self._reply_for(req.path, headers)
        status = reply.status
        if status == 200 and (reply.etag or reply.last_modified):
            inm, ims = headers.get("if-none-match"), headers.get("if-modified-since")
            if (reply.etag and inm == reply.etag) or (not inm and reply.last_modified and ims == reply.last_modified):
                status = 304
        with self.lock:
            self.hits.append(Hit(req.path, headers, time.monotonic(), status))
        if reply.delay:
            time.sleep(reply.delay)
        body = b"" if status == 304 else reply.body
        try:
            req.send_response(status)
            req.send_header("Date", DATE)
            req.send_header("Content-Type", reply.content_type)
            if reply.length:
                req.send_header("Content-Length", str(len(body)))
            else:
                req.send_header("Connection", "close")
                req.close_connection = True
            if reply.etag:
                req.send_header("ETag", reply.etag)
            if reply.last_modified:
                req.send_header("Last-Modified", reply.last_modified)
            for k, v in reply.headers.items():
                req.send_header(k, v() if callable(v) else v)  # a callable: computed when answering
            if reply.cut is not None:
                req.send_header("Connection", "close")
            req.end_headers()
            req.wfile.write(body if reply.cut is None else body[: reply.cut])
            req.wfile.flush()
            if reply.cut is not None:
                req.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            pass


# --- running the real crawler --------------------------------------------------------------
GUARDED_SCRAPY = """
import atexit, os, sys
from _loopback import NetworkGuard
guard = NetworkGuard().install()
def report():
    if guard.violations:
        sys.stderr.write("NETWORK VIOLATIONS: " + "; ".join(guard.violations) + "\\n")
        sys.stderr.flush()
        os._exit(97)
atexit.register(report)
sys.argv = ["scrapy", *sys.argv[1:]]
from scrapy.cmdline import execute
execute()
"""

#: settings every fault-injection crawl uses: fast, but the production code paths
FAST = {
    "DOWNLOAD_DELAY": "0",
    "AUTOTHROTTLE_ENABLED": "False",
    "CONCURRENT_REQUESTS_PER_DOMAIN": "4",
    "HARVEST_RETRY_BACKOFF_BASE": "0.05",
    "HARVEST_RETRY_BACKOFF_MAX": "0.2",
    "RETRY_TIMES": "2",
    "LOG_LEVEL": "INFO",
}


def env_for(tmp: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SCRAPY_") and k not in ("HARVEST_BACKEND", "REDIS_URL", "HARVEST_DB")}
    env.update(
        SCRAPY_SETTINGS_MODULE="harvester.settings",
        PYTHONPATH=os.pathsep.join([str(REPO), str(TESTS), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS="",
        TLDEXTRACT_CACHE=str(tmp / "tldextract-cache"),
        HARVEST_DB=str(tmp / "harvest.sqlite3"),
    )
    return env


def scrapy_cmd(spider: str, tmp: Path, *args: str, settings: dict | None = None) -> list[str]:
    merged = {**FAST, "HARVEST_REPORT_DIR": str(tmp / "reports"),
              "HARVEST_BASELINE_DIR": str(tmp / "baselines"), **(settings or {})}
    cmd = [sys.executable, "-c", GUARDED_SCRAPY, "crawl", spider, *args]
    for k, v in merged.items():
        cmd += ["-s", f"{k}={v}"]
    return cmd


@dataclass
class Crawl:
    returncode: int
    stderr: str
    tmp: Path
    spider: str

    @property
    def report(self) -> dict:
        return json.loads((self.tmp / "reports" / f"{self.spider}-latest.json").read_text(encoding="utf-8"))

    @property
    def stats(self) -> dict:
        return self.report["stats"]


def crawl(spider: str, tmp: Path, *args: str, settings: dict | None = None, timeout: float = 60) -> Crawl:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "reports").mkdir(exist_ok=True)
    latest = tmp / "reports" / f"{spider}-latest.json"
    if latest.exists():
        latest.unlink()  # each crawl must write its own
    proc = subprocess.run(scrapy_cmd(spider, tmp, *args, settings=settings), cwd=tmp, env=env_for(tmp),
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode != 97, proc.stderr[-3000:]
    return Crawl(proc.returncode, proc.stderr, tmp, spider)


# --- pages ------------------------------------------------------------------------------------
CTGOV_TEMPLATE = REPO / "cassettes" / "src" / "ctgov" / "assembled_NCT04008524.json"
MEDPATH_TEMPLATE = REPO / "cassettes" / "src" / "medpath" / "NCT04691349.html"


def ctgov_study(nct: str, i: int = 0, updated: str = "2022-08-03", title: str | None = None) -> dict:
    """A CT.gov API v2 study: the bundled one, under another NCT ID and title."""
    study = json.loads(CTGOV_TEMPLATE.read_text(encoding="utf-8"))
    ident = study["protocolSection"]["identificationModule"]
    ident["nctId"] = nct
    ident["briefTitle"] = title or f"{ident['briefTitle']} (copy {i})"
    study["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"] = {"date": updated}
    return study


def ctgov_json(obj) -> bytes:
    return json.dumps(obj).encode()


def medpath_page(nct: str, i: int = 0, renames: dict[str, str] | None = None, title: str | None = None) -> bytes:
    """A MedPath study page: the bundled one under another NCT ID and title,
    with some labels printed differently (`renames`: old label -> new)."""
    html = MEDPATH_TEMPLATE.read_text(encoding="utf-8")
    html = html.replace("NCT04691349", nct).replace(
        "CAR-T for r/r Malignant Tumors in Children", title or f"CAR-T for r/r Malignant Tumors, copy {i}")
    for old, new in (renames or {}).items():
        html = html.replace(f"<h3>{old}</h3>", f"<h3>{new}</h3>")
    return html.encode()


def medpath_path(i: int) -> str:
    return f"/clinical-trial/{i:016x}/car-t-copy-{i}"


def sitemap_index(*shards: str) -> bytes:
    items = "".join(f"<sitemap><loc>{s}</loc></sitemap>" for s in shards)
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<sitemapindex '
            f'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{items}</sitemapindex>').encode()


def sitemap_urlset(entries: list[tuple[str, str | None]]) -> bytes:
    items = "".join(f"<url><loc>{loc}</loc>" + (f"<lastmod>{lm}</lastmod>" if lm else "") + "</url>"
                    for loc, lm in entries)
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset '
            f'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{items}</urlset>').encode()
