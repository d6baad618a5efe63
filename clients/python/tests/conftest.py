"""Shared test support: the real daemon on a fresh database, PostgreSQL queries, waiting helpers.

Environment (all optional):
  PM_TEST_INGESTD_BIN, PM_TEST_INGESTCTL_BIN  the daemon and its tool (default: <repo>/build/daemon/...)
  PM_TEST_DATABASE_URL or DATABASE_URL  an URL of the PostgreSQL server whose role may create
                                    databases (default: `scripts/pg.sh url`, the private cluster)
"""

from __future__ import annotations

import asyncio
import csv
import functools
import io
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, Iterator, List, Optional, Sequence
from urllib.parse import unquote, urlsplit, urlunsplit

import pytest

CLIENT_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = CLIENT_DIR.parents[1]
sys.path.insert(0, str(CLIENT_DIR))  # import pm_ingestd from the source tree

PSQL = os.environ.get("PM_PSQL", "psql")
NULL = "\\N"


def ingestd_bin() -> Path:
    return Path(os.environ.get("PM_TEST_INGESTD_BIN", REPO_ROOT / "build" / "daemon" / "pm-ingestd"))


def ingestctl_bin() -> Path:
    return Path(os.environ.get("PM_TEST_INGESTCTL_BIN", REPO_ROOT / "build" / "daemon" / "pm-ingestctl"))


# ------------------------------------------------------------------------------------ waiting


def wait_until(predicate: Callable[[], Any], timeout: float, what: str = "condition",
               interval: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned) or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


async def await_until(predicate: Callable[[], Any], timeout: float, what: str = "condition",
                      interval: float = 0.005) -> Any:
    """:func:`wait_until` for coroutines: polls without blocking the event loop."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)


def async_test(timeout: float = 120.0) -> Callable[[Callable[..., Awaitable[None]]], Callable[..., None]]:
    """Run an ``async def`` test with ``asyncio.run`` (no pytest-asyncio needed), bounded."""

    def wrap(fn: Callable[..., Awaitable[None]]) -> Callable[..., None]:
        @functools.wraps(fn)
        def runner(*args: Any, **kwargs: Any) -> None:
            async def bounded() -> None:
                await asyncio.wait_for(fn(*args, **kwargs), timeout)

            asyncio.run(bounded())

        return runner

    return wrap


# ------------------------------------------------------------------------------------ PostgreSQL


def admin_url() -> str:
    url = os.environ.get("PM_TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if url:
        return url
    out = subprocess.run([str(REPO_ROOT / "scripts" / "pg.sh"), "url"], check=True,
                         capture_output=True, text=True)
    return out.stdout.strip()


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


class PsqlError(AssertionError):
    pass


def libpq_env(url: str) -> Dict[str, str]:
    """The environment that makes psql connect to ``url`` without it on psql's command line (ps
    shows a command line, password included: the project's secrets never go there)."""
    parts = urlsplit(url)
    env = dict(os.environ)
    env.update({"PGHOST": parts.hostname or "localhost", "PGPORT": str(parts.port or 5432),
                "PGUSER": unquote(parts.username or ""), "PGPASSWORD": unquote(parts.password or ""),
                "PGDATABASE": unquote(parts.path.lstrip("/"))})
    return env


def psql(url: str, sql: str) -> List[Dict[str, Optional[str]]]:
    """Rows of ``sql`` as dicts of text (``None`` for NULL), through psql's CSV output."""
    out = subprocess.run([PSQL, "-X", "-q", "--csv", "-v", "ON_ERROR_STOP=1", "-P", f"null={NULL}",
                          "-c", sql], capture_output=True, text=True, env=libpq_env(url))
    if out.returncode != 0:
        raise PsqlError(f"psql failed ({out.returncode}) on {sql!r}: {out.stderr.strip()}")
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    return [{k: (None if v == NULL else v) for k, v in row.items()} for row in rows]


def scalar(url: str, sql: str) -> Optional[str]:
    rows = psql(url, sql)
    return next(iter(rows[0].values())) if rows else None


def f32(value: Any) -> float:
    """``value`` as PostgreSQL's REAL holds it."""
    return struct.unpack("f", struct.pack("f", float(value)))[0]


class Database:
    """A fresh database on the test server, migrated with pm-ingestctl, dropped afterwards."""

    def __init__(self, admin: str, name: str) -> None:
        self.admin = admin
        self.name = name
        self.url = with_database(admin, name)
        psql(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        psql(admin, f'CREATE DATABASE "{name}"')
        # The URL goes in the environment: on the command line, ps would show its password, and a
        # failure's CalledProcessError would print it.
        subprocess.run([str(ingestctl_bin()), "migrate"], check=True, capture_output=True, text=True,
                       env={**os.environ, "DATABASE_URL": self.url})

    def count(self, sql: str) -> int:
        return int(scalar(self.url, sql) or 0)

    def trade_ids(self) -> List[str]:
        return [r["trade_id"] or "" for r in psql(self.url, "SELECT trade_id FROM polymarket_trades")]

    def drop(self) -> None:
        """Drop it; retried for a while (another suite may be creating databases meanwhile)."""
        deadline = time.monotonic() + 10
        while True:
            try:
                psql(self.admin, f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
                return
            except PsqlError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    """pm-ingestd on a socket and log directory of its own; restartable on the same ones."""

    def __init__(self, workdir: Path, database_url: str, extra_args: Sequence[str] = ()) -> None:
        self.workdir = workdir
        self.socket = str(workdir / "s")
        self.wal_dir = str(workdir / "wal")
        self.database_url = database_url
        self.extra_args = list(extra_args)
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.starts = 0

    @property
    def log_path(self) -> Path:
        return self.workdir / f"daemon-{self.starts}.log"

    def start(self, database_url: Optional[str] = None, extra_args: Optional[Sequence[str]] = None,
              timeout: float = 30.0) -> None:
        """Start it and return once its socket accepts connections."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        if database_url is not None:
            self.database_url = database_url
        if extra_args is not None:
            self.extra_args = list(extra_args)
        binary = ingestd_bin()
        if not os.access(binary, os.X_OK):
            raise AssertionError(f"{binary} is missing: build the daemon or set PM_TEST_INGESTD_BIN")
        self.starts += 1
        cmd = [str(binary), "--socket", self.socket, "--wal-dir", self.wal_dir,
               "--metrics-listen", f"127.0.0.1:{free_port()}", "--log-level", "warn", *self.extra_args]
        # The daemon takes every PM_INGESTD_<NAME> variable as an option and refuses unknown
        # ones: its options come from the command line alone here, and
        # the URL from DATABASE_URL (never the command line, where ps shows its password).
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("PM_INGESTD_") and k != "DATABASE_URL"}
        env["DATABASE_URL"] = self.database_url
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)

        def accepting() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"pm-ingestd exited with {self.proc.returncode}:\n{self.log()}")
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                try:
                    s.connect(self.socket)
                    return True
                except OSError:
                    return False

        wait_until(accepting, timeout, "pm-ingestd to accept on its socket")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; returns its exit status (kills it if it takes too long)."""
        if self.proc is None or self.proc.poll() is not None:
            return 0 if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"pm-ingestd did not stop within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


@pytest.fixture
def database(request: pytest.FixtureRequest) -> Iterator[Database]:
    """A fresh, migrated database named after the test."""
    name = "pyclient_" + request.node.name.lower()[:30].replace("[", "_").replace("]", "") + \
        "_" + uuid.uuid4().hex[:8]
    try:
        db = Database(admin_url(), name)
    except (OSError, subprocess.CalledProcessError, PsqlError) as exc:
        # A CalledProcessError's text is its command line; the tools' own stderr masks passwords.
        what = f"exit {exc.returncode}" if isinstance(exc, subprocess.CalledProcessError) else str(exc)
        detail = getattr(exc, "stderr", "") or ""
        raise AssertionError(f"cannot create the test database (is the private PostgreSQL "
                             f"running: scripts/pg.sh start?): {what} {detail}") from None
    yield db
    db.drop()


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A short directory (Unix socket paths are limited to 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="pmpy-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def daemon(workdir: Path, database: Database) -> Iterator[Daemon]:
    """pm-ingestd running on ``database``; stopped (and its log shown on failure) afterwards."""
    d = Daemon(workdir, database.url)
    d.start()
    yield d
    rc = d.stop()
    assert rc == 0, f"pm-ingestd exited with {rc}:\n{d.log()}"


@pytest.fixture
def make_daemon(workdir: Path) -> Iterator[Callable[..., Daemon]]:
    """A factory for a daemon the test starts itself (other options, database down)."""
    made: List[Daemon] = []

    def make(database_url: str, extra_args: Sequence[str] = ()) -> Daemon:
        d = Daemon(workdir, database_url, extra_args)
        made.append(d)
        return d

    yield make
    for d in made:
        d.stop()
