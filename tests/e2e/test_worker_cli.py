"""``stylewatch worker`` refuses what it cannot run, in one line, before touching a database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent / "stylewatch"
# Nothing listens there: these commands must fail before they try to connect.
NOWHERE = "postgresql+psycopg://stylewatch@127.0.0.1:9/stylewatch"


def run(tmp_path: Path, *args: str, **env_vars: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STYLEWATCH_")}
    env.update(STYLEWATCH_DATA_DIR=str(tmp_path), **env_vars)
    return subprocess.run(
        [str(BIN), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def last_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr.strip().splitlines()[-1]


def test_procrastinate_on_sqlite_fails_at_startup(tmp_path):
    for command in (["worker"], ["serve"], ["uploads"]):
        result = run(tmp_path, *command, STYLEWATCH_QUEUE__BACKEND="procrastinate")
        assert last_line(result) == (
            "error: queue: the procrastinate backend needs a postgresql database url"
        )


def test_a_worker_needs_the_procrastinate_backend(tmp_path):
    assert last_line(run(tmp_path, "worker")).startswith(
        'error: worker: set [queue] backend = "procrastinate"'
    )


@pytest.mark.parametrize(
    ("queues", "message"),
    [
        ("probe,screen", "error: --queues: unknown queue 'screen' (choose from probe, alerts;"),
        ("probe", "error: --queues: the probe queue needs [probe] base_models on this host"),
    ],
)
def test_a_worker_refuses_queues_it_cannot_serve(tmp_path, queues, message):
    result = run(
        tmp_path,
        "worker",
        "--queues",
        queues,
        STYLEWATCH_QUEUE__BACKEND="procrastinate",
        STYLEWATCH_DATABASE__URL=NOWHERE,
    )
    assert last_line(result).startswith(message)
