"""``stylewatch serve`` on the embedded default: no config, health endpoints, clean shutdown."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent / "stylewatch"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_until_up(url: str, proc: subprocess.Popen[str], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited early: {proc.communicate()[1]}")
        try:
            get(url)
            return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    raise AssertionError("serve did not answer in time")


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_serve_starts_with_no_config_and_stops_cleanly(tmp_path, stop_signal):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STYLEWATCH_")}
    env.update(
        HOME=str(tmp_path),  # the data dir defaults to the user's: make that a fresh one
        XDG_DATA_HOME=str(tmp_path / "xdg"),
        STYLEWATCH_WEB__PORT=str(port),
        # no hub is reachable from a test: keep the pollers off the network
        STYLEWATCH_SOURCES__CIVITAI__ENABLED="false",
        STYLEWATCH_SOURCES__HUGGINGFACE__ENABLED="false",
    )
    proc = subprocess.Popen(
        [str(BIN), "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(base + "/livez", proc)
        assert get(base + "/livez") == (200, '{"status": "ok"}')
        status, body = get(base + "/readyz")
        assert status == 200
        assert '"ok"' in body
        status, page = get(base + "/")
        assert status == 200
        assert "stylewatch is running" in page
        assert "sqlite" not in page  # where the data lives is for signed-in staff (#20)
        assert (tmp_path / "xdg" / "stylewatch" / "stylewatch.db").exists()
        proc.send_signal(stop_signal)
        _, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert "shutting down" in stderr


def test_serve_reports_a_busy_port_in_one_line(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("STYLEWATCH_")}
        env.update(STYLEWATCH_DATA_DIR=str(tmp_path), STYLEWATCH_WEB__PORT=str(port))
        result = subprocess.run(
            [str(BIN), "serve"], env=env, capture_output=True, text=True, timeout=60, check=False
        )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: web: cannot listen on")
    assert "Traceback" not in result.stderr
