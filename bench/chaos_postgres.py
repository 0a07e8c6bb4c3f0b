"""A throwaway PostgreSQL cluster for the benches, started the way the test fixtures start
theirs (tests/integration/conftest.py): from the local binaries, in a folder of its own, on
127.0.0.1 only, trust auth, as the ``postgres`` OS user when run by root. Unlike the tests'
cluster it keeps fsync on: the chaos bench kills processes, and what it proves should hold
on a server configured as in production (durability settings are the server's own).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

START_TIMEOUT_S = 60
INITDB_OPTIONS = ("-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync")
# pg_stat_statements lets bench/scale.py count the statements each upload costs.
SERVER_OPTIONS = "-c shared_preload_libraries=pg_stat_statements -c max_connections=200"
DATABASE = "stylewatch"


def pg_bindir() -> Path:
    """The folder holding initdb and pg_ctl: from PATH, else Debian's newest version."""
    found = shutil.which("pg_ctl")
    candidates = [Path(found).resolve().parent] if found else []
    installed = Path("/usr/lib/postgresql").glob("*/bin")
    candidates += sorted(installed, key=lambda p: int(re.sub(r"\D", "", p.parts[-2]) or 0))[::-1]
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    raise RuntimeError("PostgreSQL server binaries not found: apt-get install postgresql")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Cluster:
    """initdb, pg_ctl start and stop -m immediate, in ``folder``."""

    def __init__(self) -> None:
        self.bindir = pg_bindir()
        # Its own folder under the temp dir: the postgres user must be able to reach it.
        self.folder = folder = Path(tempfile.mkdtemp(prefix="chaos-pg-"))
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")  # KeyError: no postgres user to run the server as
            os.chown(folder, user.pw_uid, user.pw_gid)
            self.prefix = ["runuser", "-u", "postgres", "--"]
        folder.chmod(0o700)
        self.port = 0

    def run(self, *args: str) -> None:
        command = [*self.prefix, str(self.bindir / args[0]), *args[1:]]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip()}")

    def start(self) -> None:
        data = self.folder / "data"
        self.run("initdb", "-D", str(data), *INITDB_OPTIONS)
        self.port = _free_port()
        options = f"-h 127.0.0.1 -p {self.port} -k {self.folder} {SERVER_OPTIONS}"
        log = str(self.folder / "server.log")
        self.run(
            "pg_ctl",
            "-D",
            str(data),
            "-l",
            log,
            "-w",
            "-t",
            str(START_TIMEOUT_S),
            "-o",
            options,
            "start",
        )

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.run("pg_ctl", "-D", str(self.folder / "data"), "-m", "immediate", "stop")

    def url(self, database: str = DATABASE) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def sql(self, statements: Sequence[str], database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.url(database).replace("+psycopg", ""), autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement.encode())


@contextlib.asynccontextmanager
async def throwaway_database() -> AsyncIterator[str]:
    """A fresh cluster with one empty database; yields its URL, removes it all after."""
    cluster = Cluster()
    try:
        await asyncio.to_thread(cluster.start)
        await asyncio.to_thread(cluster.sql, [f"CREATE DATABASE {DATABASE}"])
        yield cluster.url()
    finally:
        await asyncio.to_thread(cluster.stop)
        shutil.rmtree(cluster.folder, ignore_errors=True)
