"""The procrastinate adapter's pure parts: retry backoff, release on shutdown, the alert
delivery cadence, the connection string, and the [queue] settings' checks."""

from __future__ import annotations

import asyncio

import pytest
from procrastinate.exceptions import JobAborted
from procrastinate.jobs import Job

from detectors.errors import ConfigError
from monitor.jobs.procrastinate_queue import Backoff, conninfo, deliver_cron
from monitor.settings import load_settings


def job(attempts: int) -> Job:
    return Job(id=1, queue="probe", lock=None, queueing_lock=None, task_name="t", attempts=attempts)


def delay_s(strategy: Backoff, exc: BaseException, attempts: int) -> float | None:
    decision = strategy.get_retry_decision(exception=exc, job=job(attempts))
    if decision is None:
        return None
    assert decision.retry_at is not None
    from procrastinate.utils import utcnow

    return round((decision.retry_at - utcnow()).total_seconds())


def test_failures_back_off_exponentially_up_to_the_cap_then_stop():
    strategy = Backoff(max_attempts=6, base_s=10, cap_s=60)
    delays = [delay_s(strategy, RuntimeError("x"), n) for n in range(7)]
    assert delays == [10, 20, 40, 60, 60, None, None]


@pytest.mark.parametrize("exc", [asyncio.CancelledError(), JobAborted()])
def test_a_job_cut_off_by_shutdown_goes_back_at_once(exc):
    assert delay_s(Backoff(max_attempts=2), exc, 5) == 0


def test_delivery_cadence_follows_the_poll_interval():
    assert deliver_cron(5.0) == "* * * * * */5"
    assert deliver_cron(0.2) == "* * * * * */1"
    assert deliver_cron(300) == "*/5 * * * *"


def test_conninfo_is_libpq_with_the_password():
    url = "postgresql+psycopg://sw:pw@db.example:5433/stylewatch?sslmode=require"
    assert conninfo(url) == "postgresql://sw:pw@db.example:5433/stylewatch?sslmode=require"


def test_queue_settings_are_checked():
    with pytest.raises(ConfigError) as info:
        load_settings(queue={"backend": "procrastinate"})
    assert info.value.problems == [
        "queue: the procrastinate backend needs a postgresql database url"
    ]
    with pytest.raises(ConfigError, match="stalled_after_s must be at least twice heartbeat_s"):
        load_settings(queue={"heartbeat_s": 10, "stalled_after_s": 15})
