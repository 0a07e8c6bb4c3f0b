"""Re-uploads linked by the hub's own hashes: a Civitai file whose SHA256 (or, when that is
all Civitai lists, its AutoV2) matches a recorded file is linked at once, and no byte of it
is read for a weight fingerprint; a file that differs is fingerprinted as before."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from sqlmodel import Session, select

from monitor.pipeline.poll import Poller
from monitor.runtime import Runtime, open_runtime
from monitor.sources.base import ListedUpload
from monitor.sources.civitai import CivitaiSource
from monitor.sources.http import HttpClient
from storage.models import Fingerprint
from storage.source_state import SourceState
from tests.fakehubs.civitai import CvVersion
from tests.fakehubs.harness import FAST, SleepLog, settings_for
from tests.fakehubs.servers import Hubs, running_hubs
from tests.lora_variants import KOHYA_METADATA, kohya_lora, random_lora

pytestmark = pytest.mark.timeout(60)
START = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def hubs() -> AsyncIterator[Hubs]:
    async with running_hubs() as hubs:
        yield hubs


def lora_bytes(tmp_path: Path, name: str, metadata: dict[str, str]) -> bytes:
    return kohya_lora(random_lora(7), tmp_path / name, metadata=metadata).read_bytes()


async def screen(runtime: Runtime, hubs: Hubs, version: CvVersion) -> None:
    async with aiohttp.ClientSession() as session:
        http = HttpClient(session, FAST, sleep=SleepLog())
        source = CivitaiSource(runtime.settings.sources.civitai, http)
        poller = Poller(source, runtime.store, SourceState(runtime.engine), threshold=0.5)
        summary = await poller.screen_found([ListedUpload(str(version.id), version.name)])
    assert summary.screened == 1


def reads_of(hubs: Hubs, version: CvVersion) -> int:
    key = version.files[0].blob_key
    return sum(r.path == f"/obj/{key}" for r in hubs.storage.received)


def fingerprinted(runtime: Runtime, upload_id: str) -> bool:
    record = runtime.store.get_upload("civitai", upload_id)
    assert record is not None
    with Session(runtime.engine) as session:
        rows = session.exec(select(Fingerprint).where(Fingerprint.upload_pk == record.id))
        return bool(rows.all())


@pytest.mark.parametrize("only_autov2", [False, True], ids=["sha256", "autov2"])
async def test_a_file_the_hub_hashes_like_a_recorded_one_is_linked_unread(
    hubs, tmp_path, only_autov2
) -> None:
    runtime = open_runtime(settings_for(hubs, tmp_path))
    try:
        data = lora_bytes(tmp_path, "a.safetensors", KOHYA_METADATA)
        first = hubs.civitai.add_upload("Ink style", data, published_at=START)
        await screen(runtime, hubs, first)
        again = hubs.civitai.add_upload("Totally new style", data, published_at=START)
        again.files[0].only_autov2 = only_autov2
        await screen(runtime, hubs, again)
        renamed = lora_bytes(tmp_path, "b.safetensors", {"ss_output_name": "soft_light"})
        variant = hubs.civitai.add_upload("Soft light", renamed, published_at=START)
        await screen(runtime, hubs, variant)
    finally:
        runtime.close()
    uploads = {u.upload_id: u for u in runtime.store.list_uploads("civitai")}
    for linked in (again, variant):
        ref = uploads[str(linked.id)].reupload_of
        assert ref is not None and ref.upload_id == str(first.id)
    assert reads_of(hubs, again) == 1  # the header only: the hub's hash made the link
    assert not fingerprinted(runtime, str(again.id))
    assert reads_of(hubs, variant) > 1  # other bytes: its weights were fingerprinted
    assert fingerprinted(runtime, str(variant.id))
