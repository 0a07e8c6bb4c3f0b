"""What the hub tests share: settings pointed at the fakes, a runtime, fast HTTP clients."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from pydantic import SecretStr

from monitor.runtime import Runtime, open_runtime
from monitor.settings import (
    CivitaiSettings,
    FolderSettings,
    HuggingFaceSettings,
    Settings,
    SourcesSettings,
)
from monitor.sources.http import HttpClient, HttpPolicy
from tests.fakehubs.servers import Hubs

CIVITAI_KEY = "cv-test-key-0123456789"
HF_TOKEN = "hf_test_token_0123456789"
FAST = HttpPolicy(
    timeout_s=1.0,
    connect_timeout_s=1.0,
    max_attempts=4,
    backoff_base_s=0.001,
    backoff_max_s=0.01,
    per_host_interval_s=0.0,
)


def settings_for(hubs: Hubs, data_dir: Path, folder: Path | None = None) -> Settings:
    return Settings(
        data_dir=data_dir,
        sources=SourcesSettings(
            civitai=CivitaiSettings(base_url=hubs.civitai_url, api_key=SecretStr(CIVITAI_KEY)),
            huggingface=HuggingFaceSettings(
                endpoint=hubs.huggingface_url, token=SecretStr(HF_TOKEN)
            ),
            folder=FolderSettings(enabled=folder is not None, path=folder),
        ),
    )


def runtime_for(hubs: Hubs, data_dir: Path) -> Runtime:
    runtime = open_runtime(settings_for(hubs, data_dir))
    runtime.store.add_artist("Mara Quellbrook")
    runtime.store.add_artist("Oriel Hastmoor")
    return runtime


class SleepLog:
    """An injected sleep: records each delay asked for and yields without waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        import asyncio

        self.delays.append(delay)
        await asyncio.sleep(0)


def fast_client(session: aiohttp.ClientSession, sleep: SleepLog | None = None) -> HttpClient:
    return HttpClient(session, FAST, sleep=sleep or SleepLog(), jitter=lambda: 0.5)
