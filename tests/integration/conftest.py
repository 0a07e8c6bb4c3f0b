"""Integration fixtures: a throwaway PostgreSQL cluster, migrated databases and stores.

PostgreSQL: ``STYLEWATCH_TEST_POSTGRES_URL`` (or ``TEST_POSTGRES_URL``) names a server to
use; otherwise the fixtures start one from the local binaries (``pg_ctl`` on PATH or
``/usr/lib/postgresql/*/bin``) in a temporary folder, as the ``postgres`` OS user when run
by root, listening on 127.0.0.1 only, with trust auth. One migrated template database is
made per session and cloned for each test. Without binaries the PostgreSQL tests are
skipped, except under ``CI=true`` where that is a failure.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NoReturn

import psycopg
import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import URL, make_url

from storage.engine import create_db_engine
from storage.migrate import upgrade
from storage.store import Store

POSTGRES_URL_VARS = ("STYLEWATCH_TEST_POSTGRES_URL", "TEST_POSTGRES_URL")
PG_START_TIMEOUT_S = 30
PORT_ATTEMPTS = 3
INITDB_OPTIONS = ("-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync")
# Durability is pointless for a throwaway cluster; turning it off keeps DDL fast.
SERVER_OPTIONS = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@dataclass
class PostgresServer:
    """A reachable server: ``admin_url`` names its maintenance database."""

    admin_url: URL
    template: str = ""

    def url(self, database: str) -> str:
        return self.admin_url.set(database=database).render_as_string(hide_password=False)

    def execute(self, sql: str) -> None:
        conninfo = self.admin_url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(conninfo, autocommit=True) as connection:
            connection.execute(sql.encode())

    def create_database(self, template: str) -> str:
        name = f"sw_{uuid.uuid4().hex[:12]}"
        self.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return name

    def drop_database(self, name: str) -> None:
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class FakeClock:
    """An injected clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _missing(reason: str) -> NoReturn:
    message = (
        f"{reason}: install PostgreSQL (`apt-get install postgresql`) "
        f"or set {POSTGRES_URL_VARS[0]} to a server"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _pg_bindir() -> Path | None:
    """The folder holding initdb and pg_ctl: from PATH, else Debian's newest version."""
    candidates = [Path(p).resolve().parent for p in [shutil.which("pg_ctl")] if p]
    installed = Path("/usr/lib/postgresql").glob("*/bin")
    candidates += sorted(installed, key=lambda p: int(re.sub(r"\D", "", p.parts[-2]) or 0))[::-1]
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class _Cluster:
    """A PostgreSQL cluster in a temporary folder, run by the ``postgres`` user under root."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.prefix: list[str] = []
        self.base = Path(tempfile.mkdtemp(prefix="swpg-"))
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                shutil.rmtree(self.base)
                _missing("root cannot run PostgreSQL and there is no `postgres` OS user")
            os.chown(self.base, user.pw_uid, user.pw_gid)
            self.prefix = ["runuser", "-u", "postgres", "--"]
        self.base.chmod(0o700)
        self.data = self.base / "data"

    def run(self, *args: str) -> None:
        command = [*self.prefix, str(self.bindir / args[0]), *args[1:]]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            log = self.base / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr}{tail}")

    def start(self) -> int:
        """Initialize and start the cluster; return its TCP port."""
        self.run("initdb", "-D", str(self.data), *INITDB_OPTIONS)
        log = ("-l", str(self.base / "server.log"))
        wait = ("-w", "-t", str(PG_START_TIMEOUT_S))
        for attempt in range(1, PORT_ATTEMPTS + 1):
            port = _free_port()  # another process may take it before the server binds it
            options = f"-h 127.0.0.1 -p {port} -k {self.base} {SERVER_OPTIONS}"
            try:
                self.run("pg_ctl", "-D", str(self.data), *log, *wait, "-o", options, "start")
                return port
            except RuntimeError:
                if attempt == PORT_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def external_postgres_url() -> URL | None:
    """The server named by the environment, read once before any test runs (the root
    conftest clears ``STYLEWATCH_*`` for each test, and ``postgres_server`` starts lazily)."""
    for name in POSTGRES_URL_VARS:
        value = os.environ.get(name)
        if value:
            return make_url(value).set(drivername="postgresql+psycopg")
    return None


@pytest.fixture(scope="session")
def postgres_server(external_postgres_url: URL | None) -> Iterator[PostgresServer]:
    """A PostgreSQL server with a migrated template database (``server.template``)."""
    external = external_postgres_url
    cluster = None
    if external is not None:
        server = PostgresServer(admin_url=external)
    else:
        bindir = _pg_bindir()
        if bindir is None:
            _missing("PostgreSQL server binaries (initdb, pg_ctl) not found")
        cluster = _Cluster(bindir)
        try:
            port = cluster.start()
        except RuntimeError:
            cluster.stop()
            raise
        server = PostgresServer(
            admin_url=URL.create(
                "postgresql+psycopg",
                username="postgres",
                host="127.0.0.1",
                port=port,
                database="postgres",
            )
        )
    server.template = server.create_database("template0")
    try:
        upgrade(server.url(server.template))
        yield server
    finally:
        server.drop_database(server.template)
        if cluster is not None:
            cluster.stop()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    param: str = request.param
    return param


@pytest.fixture
def empty_db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL with no tables yet; for SQLite the folder does not exist yet either."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'stylewatch.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = server.create_database("template0")
    yield server.url(name)
    server.drop_database(name)


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated database URL, fresh for each test."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'data' / 'stylewatch.db'}"
        upgrade(url)
        yield url
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = server.create_database(server.template)
    yield server.url(name)
    server.drop_database(name)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = create_db_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(engine: Engine, clock: FakeClock) -> Store:
    return Store(engine, clock=clock)
