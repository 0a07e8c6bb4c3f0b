"""The pollers' counters and screening times reach /metrics' exposition text."""

from __future__ import annotations

import re

import aiohttp
import pytest

from monitor.pipeline.poll import PollCounters, Poller
from monitor.sources.civitai import CivitaiSource
from monitor.sources.http import HttpClient
from monitor.web.metrics import WebMetrics
from storage.source_state import SourceState
from tests.fakehubs import civitai as fake_civitai
from tests.fakehubs.harness import FAST, runtime_for
from tests.fakehubs.servers import running_hubs

pytestmark = pytest.mark.timeout(60)


def value(text: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} missing from /metrics"
    return float(match.group(1))


async def test_a_poll_shows_in_the_metrics(tmp_path):
    metrics = WebMetrics()
    counters = PollCounters()
    metrics.watch_polling(counters)
    before = metrics.render().decode()
    assert value(before, "stylewatch_poll_screened_total") == 0
    async with running_hubs() as hubs, aiohttp.ClientSession() as session:
        fake_civitai.seed_from_fixtures(hubs.civitai)
        runtime = runtime_for(hubs, tmp_path)
        try:
            source = CivitaiSource(runtime.settings.sources.civitai, HttpClient(session, FAST))
            poller = Poller(
                source, runtime.store, SourceState(runtime.engine), threshold=0.5, counters=counters
            )
            summary = await poller.poll()
        finally:
            runtime.close()
    after = metrics.render().decode()
    assert value(after, "stylewatch_polls_total") == 1
    assert value(after, "stylewatch_poll_screened_total") == summary.screened > 0
    assert value(after, "stylewatch_poll_flagged_total") == summary.flagged
    assert value(after, "stylewatch_screening_seconds_count") == summary.screened
