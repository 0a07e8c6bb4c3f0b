"""bench/chaos.py, short: 60 uploads stream in from the fake hubs while stylewatch processes
are killed with SIGKILL three times (``serve`` on SQLite; ``serve`` and two ``worker``
processes on PostgreSQL, seed 7 kills serve twice and a worker once); at the end nothing is
lost or duplicated, in the database, the SMTP inbox or the webhook log.

A run takes 1.5-3 minutes, most of it setting up (the CLI registering artists with
reference images) and waiting for the processes to start on a shared 2-core machine. An
alert cut off between its send and its settling waits for its lease (at least 300 s,
monitor/build/alerts.py) before it goes out again, so a run whose kill lands there takes
about five minutes more: the settle timeout allows for that.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "chaos.py"
SETTLE_TIMEOUT_S = 420
pytestmark = [pytest.mark.slow, pytest.mark.timeout(SETTLE_TIMEOUT_S + 240)]
MUST_BE_ZERO = (
    "uploads_lost",
    "uploads_duplicated",
    "uploads_unfinished",
    "findings_duplicated",
    "findings_missing",
    "alerts_lost",
    "alerts_duplicated",
    "outbox_not_sent",
    "webhook_bad_signatures",
    "crashes",
    "tracebacks",
)


def run_chaos(workdir: Path, backend: str, *, kills: int = 3) -> dict[str, Any]:
    """The bench's figures (its last line); its processes' logs stay in ``workdir``."""
    command = [sys.executable, str(BENCH), "--backend", backend, "--uploads", "60"]
    command += ["--kills", str(kills), "--release-s", "20", "--seed", "7"]
    command += ["--settle-timeout-s", str(SETTLE_TIMEOUT_S), "--workdir", str(workdir)]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=SETTLE_TIMEOUT_S + 200, check=False
    )
    lines = result.stdout.strip().splitlines()
    assert lines, f"the bench printed nothing: {result.stderr[-4000:]}"
    figures: dict[str, Any] = json.loads(lines[-1])
    return figures


def logs(workdir: Path) -> str:
    return "\n".join(p.read_text()[-3000:] for p in sorted(workdir.glob("*.log")))


def test_kill_9_of_serve_on_sqlite_loses_and_duplicates_nothing(tmp_path):
    figures = run_chaos(tmp_path, "sqlite")
    context = f"{figures}\n{logs(tmp_path)}"
    assert figures["kills"] == 3, context
    assert figures["settled"], context
    assert {k: figures[k] for k in MUST_BE_ZERO} == dict.fromkeys(MUST_BE_ZERO, 0), context
    assert figures["uploads_released"] == figures["uploads_listed_by_cli"] == 60
    # The run exercised every path: name findings, probe findings, both alert channels.
    assert figures["findings_expected"] >= 10
    assert figures["uploads_probed"] >= 4
    assert figures["alerts_expected"] > figures["findings_expected"]
    assert figures["clean_exits"] == 1


@pytest.mark.postgres
def test_kill_9_of_serve_and_workers_on_postgres_loses_and_duplicates_nothing(tmp_path):
    require_postgres()
    figures = run_chaos(tmp_path, "postgres")
    context = f"{figures}\n{logs(tmp_path)}"
    assert figures["kills"] == 3, context
    assert figures["kills_by_process"]["serve"] < 3, context  # a worker was killed too
    assert figures["settled"], context
    assert {k: figures[k] for k in MUST_BE_ZERO} == dict.fromkeys(MUST_BE_ZERO, 0), context
    assert figures["uploads_released"] == figures["uploads_listed_by_cli"] == 60
    assert figures["alerts_expected"] > figures["findings_expected"] >= 10
    assert figures["clean_exits"] == 3


def require_postgres() -> None:
    """Skip without PostgreSQL's server binaries, except under CI=true (then it fails)."""
    from bench.chaos_postgres import pg_bindir

    try:
        pg_bindir()
    except RuntimeError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(str(exc))
        pytest.skip(str(exc))
