"""``stylewatch db upgrade`` and ``stylewatch worker`` as processes on the real PostgreSQL:
the job tables applied once, /metrics and /livez on the worker's port, SIGTERM -> exit 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.integration.conftest import PostgresServer

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]
BIN = Path(sys.executable).parent / "stylewatch"


@pytest.fixture
def fresh_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A migrated database without the job tables."""
    name = postgres_server.create_database(postgres_server.template)
    yield postgres_server.url(name)
    postgres_server.drop_database(name)


def _env(tmp_path: Path, url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STYLEWATCH_")}
    env.update(
        STYLEWATCH_DATA_DIR=str(tmp_path / "data"),
        STYLEWATCH_DATABASE__URL=url,
        STYLEWATCH_QUEUE__BACKEND="procrastinate",
        **extra,
    )
    return env


def _stylewatch(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.status, resp.read().decode()


def _ready(base: str) -> int:
    try:
        return _get(base + "/readyz")[0]
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code


def _wait_up(url: str, proc: subprocess.Popen[str], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"worker exited early: {proc.communicate()[1]}")
        try:
            _get(url)
            return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    raise AssertionError("the worker did not answer in time")


def _workers(url: str) -> int:
    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo) as conn:
        row = conn.execute("SELECT count(*) FROM procrastinate_workers").fetchone()
    assert row is not None
    return int(row[0])


def test_db_upgrade_creates_the_job_tables_once(tmp_path, fresh_url):
    env = _env(tmp_path, fresh_url)
    first = _stylewatch(env, "db", "upgrade")
    assert first.returncode == 0, first.stderr
    assert "job queue tables created" in first.stdout
    again = _stylewatch(env, "db", "upgrade")
    assert again.returncode == 0, again.stderr
    assert "database up to date" in again.stdout
    assert "job queue tables" not in again.stdout


def test_a_worker_without_the_job_tables_says_so(tmp_path, fresh_url):
    result = _stylewatch(_env(tmp_path, fresh_url), "worker", "--metrics-port", "0")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: the job queue tables are missing: run `stylewatch db upgrade` first"
    )


def test_sigterm_stops_a_worker_cleanly(tmp_path, fresh_url):
    env = _env(tmp_path, fresh_url, STYLEWATCH_QUEUE__HEARTBEAT_S="0.5")
    assert _stylewatch(env, "db", "upgrade").returncode == 0
    port = _free_port()
    proc = subprocess.Popen(
        [str(BIN), "worker", "--queues", "alerts", "--metrics-port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_up(base + "/livez", proc)
        assert _get(base + "/livez") == (200, '{"status": "ok"}')
        deadline = time.monotonic() + 20
        while _ready(base) != 200:  # 503 until the worker has registered
            assert time.monotonic() < deadline, "the worker never became ready"
            time.sleep(0.1)
        assert "stylewatch_workers 1.0" in _get(base + "/metrics")[1]
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert "stylewatch worker stopped" in stderr
    assert _workers(fresh_url) == 0  # unregistered on the way out
