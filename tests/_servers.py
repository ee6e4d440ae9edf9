"""Real servers for tests: `redis-server` and PostgreSQL on 127.0.0.1.

No mocks and no Docker: each fixture starts the Debian-packaged server
binaries on a free loopback port with their data in a fresh temporary
directory, once per test session, and stops them at its end.

* ``redis_server``: ``redis-server`` without persistence; ``.url`` is
  ``redis://127.0.0.1:<port>/0``. Tests share it, so each uses its own keys
  (spider names) or calls ``.flush()``.
* ``postgres_server``: ``initdb`` + ``pg_ctl start`` (trust authentication,
  fsync off, unix socket in the temporary directory, TCP on 127.0.0.1).
  PostgreSQL refuses to run as root, so under root (CI) the cluster is owned
  by and run as the unprivileged ``postgres`` user that Debian's package
  creates (else ``nobody``). ``.new_database()`` returns the URL of a fresh
  database, so tests do not see each other's rows.

When a binary is missing the fixture FAILS (never skips), naming the Debian
package to install: ``.ci/run`` installs both.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

# One server of each kind per test session, whichever test module asks first.
_RUNNING: dict[str, object] = {}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _missing(what: str, package: str) -> None:
    pytest.fail(
        f"{what} not found: install the Debian package '{package}' "
        f"(apt-get install -y --no-install-recommends {package}; .ci/run does it)",
        pytrace=False,
    )


# --------------------------------------------------------------------------- redis
class RedisServer:
    def __init__(self, base: Path):
        exe = shutil.which("redis-server")
        if exe is None:
            _missing("redis-server", "redis-server")
        self.base = base
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log = base / "redis.log"
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(base), "--logfile", str(self.log), "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )
        self._wait()

    def _wait(self, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
        self.stop()
        pytest.fail(f"redis-server did not start on 127.0.0.1:{self.port}:\n{log}", pytrace=False)

    def client(self):
        import redis

        return redis.Redis.from_url(self.url)

    def flush(self) -> None:
        with self.client() as r:
            r.flushall()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.base, ignore_errors=True)


# ---------------------------------------------------------------------- postgresql
def _pg_bindir() -> Path:
    """Debian keeps initdb/pg_ctl out of PATH, in /usr/lib/postgresql/<major>/bin."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if not candidates:
        _missing("PostgreSQL server (initdb, pg_ctl)", "postgresql")
    return Path(candidates[-1]).parent


def _server_user() -> pwd.struct_passwd | None:
    """None when not root; else an unprivileged account to run postgres as."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    pytest.fail("running as root and no 'postgres' or 'nobody' account to run PostgreSQL as", pytrace=False)


class PostgresServer:
    USER = "harvester"

    def __init__(self):
        bindir = _pg_bindir()
        self.user = _server_user()
        # Not under pytest's tmp_path: that is private to root, and the server
        # may run as another user.
        self.base = Path(tempfile.mkdtemp(prefix="harvester-pg-"))
        self.data = self.base / "data"
        self.sock = self.base / "sock"
        self.sock.mkdir()
        self.logfile = self.base / "server.log"
        if self.user is not None:
            for path in (self.base, self.sock):
                os.chown(path, self.user.pw_uid, self.user.pw_gid)
        self.port = _free_port()
        self.pg_ctl = str(bindir / "pg_ctl")
        self._run([str(bindir / "initdb"), "-D", str(self.data), "-U", self.USER, "-A", "trust",
                   "-E", "UTF8", "--locale=C.UTF-8", "--no-sync", "--no-instructions"], "initdb")
        options = (f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=60")
        self._run([self.pg_ctl, "-D", str(self.data), "-l", str(self.logfile), "-w", "-t", "30",
                   "-o", options, "start"], "pg_ctl start")
        self._dbs = 0

    def _run(self, cmd: list[str], what: str) -> None:
        kwargs = {}
        if self.user is not None:
            kwargs = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=self.base, timeout=60, **kwargs)
        if proc.returncode != 0:
            log = self.logfile.read_text(errors="replace")[-2000:] if self.logfile.exists() else ""
            self.stop()
            pytest.fail(f"{what} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}\n{log}",
                        pytrace=False)

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.USER}@127.0.0.1:{self.port}/{dbname}"

    def new_database(self, prefix: str = "t", icu_locale: str | None = None) -> str:
        """A fresh empty database; with `icu_locale` (e.g. "en-US") its
        default collation is that ICU locale's, not byte order."""
        import psycopg

        self._dbs += 1
        name = f"{prefix}_{os.getpid()}_{self._dbs}"
        sql = f'CREATE DATABASE "{name}"'
        if icu_locale:
            sql += f" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE '{icu_locale}' LOCALE 'C.UTF-8'"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql)
        return self.url(name)

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            kwargs = {}
            if self.user is not None:
                kwargs = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}
            subprocess.run([self.pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop"],
                           capture_output=True, timeout=60, cwd=self.base, **kwargs)
        shutil.rmtree(self.base, ignore_errors=True)


# ------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="session")
def redis_server(request):
    server = _RUNNING.get("redis")
    if server is None:
        server = _RUNNING["redis"] = RedisServer(Path(tempfile.mkdtemp(prefix="harvester-redis-")))
        request.session.config.add_cleanup(lambda: (server.stop(), _RUNNING.pop("redis", None)))
    return server


@pytest.fixture(scope="session")
def postgres_server(request):
    server = _RUNNING.get("postgres")
    if server is None:
        server = _RUNNING["postgres"] = PostgresServer()
        request.session.config.add_cleanup(lambda: (server.stop(), _RUNNING.pop("postgres", None)))
    return server
