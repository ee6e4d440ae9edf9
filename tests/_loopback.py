"""Test helpers: a guard that keeps tests off the network, and a runner for
real Scrapy crawls in a subprocess (the Twisted reactor starts once per process).

The guard is installed for every test by ``tests/conftest.py`` and, in crawl
subprocesses, by :func:`main` below. Any connection or name lookup for a host
other than the loopback interface is refused *and recorded*: code that swallows
the refusal (tldextract falls back to its bundled snapshot when its download of
the public suffix list fails) still fails the test, because the record is
checked at the end.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost", "::ffff:127.0.0.1"})


def _host_of(address):
    if isinstance(address, (tuple, list)) and address:
        host = address[0]
        if isinstance(host, bytes):
            host = host.decode("ascii", "replace")
        return str(host)
    return None  # AF_UNIX path or something that is not an internet address


class NetworkGuard:
    """Refuses and records any attempt to reach a non-loopback host."""

    def __init__(self):
        self.violations: list[str] = []
        self._saved: list[tuple[object, str, object]] = []

    def _check(self, what, host):
        if host is None or host in LOOPBACK_HOSTS or host.startswith("127."):
            return
        self.violations.append(f"{what} {host}")
        raise OSError(f"network access blocked in tests: {what} {host}")

    def install(self):
        guard = self
        real_connect = socket.socket.connect
        real_connect_ex = socket.socket.connect_ex
        real_create_connection = socket.create_connection
        real_getaddrinfo = socket.getaddrinfo

        def connect(sock, address):
            guard._check("connect", _host_of(address))
            return real_connect(sock, address)

        def connect_ex(sock, address):
            guard._check("connect", _host_of(address))
            return real_connect_ex(sock, address)

        def create_connection(address, *args, **kwargs):
            guard._check("connect", _host_of(address))
            return real_create_connection(address, *args, **kwargs)

        def getaddrinfo(host, *args, **kwargs):
            name = host.decode("ascii", "replace") if isinstance(host, bytes) else host
            guard._check("resolve", None if name is None else str(name))
            return real_getaddrinfo(host, *args, **kwargs)

        self._saved = [
            (socket.socket, "connect", real_connect),
            (socket.socket, "connect_ex", real_connect_ex),
            (socket, "create_connection", real_create_connection),
            (socket, "getaddrinfo", real_getaddrinfo),
        ]
        socket.socket.connect = connect
        socket.socket.connect_ex = connect_ex
        socket.create_connection = create_connection
        socket.getaddrinfo = getaddrinfo
        return self

    def uninstall(self):
        for owner, name, original in reversed(self._saved):
            setattr(owner, name, original)
        self._saved = []


# --------------------------------------------------------------------------
# Crawls in a subprocess

TESTS_DIR = Path(__file__).resolve().parent
PROJECT_DIR = TESTS_DIR.parent
NETWORK_VIOLATION_EXIT = 97


def offline_env(tmp_dir: Path) -> dict[str, str]:
    """Environment for a crawl subprocess: tldextract configured offline (no
    suffix-list URLs, empty cache in ``tmp_dir``), project and tests importable."""
    env = dict(os.environ)
    env["TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS"] = ""
    env["TLDEXTRACT_CACHE"] = str(tmp_dir / "tldextract-cache")
    env["PYTHONPATH"] = os.pathsep.join(
        [str(PROJECT_DIR), str(TESTS_DIR), env.get("PYTHONPATH", "")]
    ).rstrip(os.pathsep)
    env.pop("SCRAPY_SETTINGS_MODULE", None)
    return env


def run_crawl(
    spider: str,
    settings: dict,
    spider_kwargs: dict,
    tmp_dir: Path,
    *,
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> dict:
    """Run ``spider`` ("module:Class") with CrawlerProcess in a fresh Python.

    Returns ``{"items": [...], "stats": {...}, "returncode": int, "stderr": str}``.
    """
    tmp_dir.mkdir(parents=True, exist_ok=True)
    out = tmp_dir / f"crawl-{len(list(tmp_dir.glob('crawl-*.json')))}.json"
    job = {
        "spider": spider,
        "settings": settings,
        "spider_kwargs": spider_kwargs,
        "out": str(out),
    }
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), json.dumps(job)],
        env=env if env is not None else offline_env(tmp_dir),
        cwd=str(tmp_dir),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    result = {"items": [], "stats": {}}
    if out.exists():
        result = json.loads(out.read_text(encoding="utf-8"))
    result["returncode"] = proc.returncode
    result["stderr"] = proc.stderr
    return result


def main(job_json: str) -> int:
    guard = NetworkGuard().install()
    job = json.loads(job_json)

    import importlib

    from scrapy import signals
    from scrapy.crawler import CrawlerProcess

    module_name, class_name = job["spider"].split(":")
    spidercls = getattr(importlib.import_module(module_name), class_name)
    items = []

    def collect(item, response, spider):
        items.append(dict(item))

    process = CrawlerProcess(settings=job["settings"], install_root_handler=True)
    crawler = process.create_crawler(spidercls)
    crawler.signals.connect(collect, signals.item_scraped, weak=False)
    process.crawl(crawler, **job["spider_kwargs"])
    process.start()

    stats = {k: (v if isinstance(v, (int, float, str)) else str(v)) for k, v in crawler.stats.get_stats().items()}
    Path(job["out"]).write_text(
        json.dumps({"items": items, "stats": stats, "network_violations": guard.violations}),
        encoding="utf-8",
    )
    if guard.violations:
        print("NETWORK VIOLATIONS: " + "; ".join(guard.violations), file=sys.stderr)
        return NETWORK_VIOLATION_EXIT
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
