"""``artist add`` searching the hubs' history, ``artist backscan --hubs`` resuming it, and
``takedowns check``, in subprocesses against the fake hubs on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storage.engine import create_db_engine
from storage.store import Store
from storage.triage import TriageStore
from storage.users import UserStore
from tests.fakehubs.civitai import generic_lora
from tests.fakehubs.harness import CIVITAI_KEY, HF_TOKEN
from tests.fakehubs.servers import Hubs, running_hubs

BIN = Path(sys.executable).parent / "stylewatch"
pytestmark = pytest.mark.timeout(120)
START = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
ARTIST = "Ilse Varnhagen"


@pytest.fixture
async def hubs() -> AsyncIterator[Hubs]:
    async with running_hubs() as hubs:
        for n in range(3):
            hubs.civitai.add_upload(
                f"Ilse Varnhagen ink {n}", generic_lora(f"ink_{n}"), published_at=START
            )
        hubs.civitai.add_upload("Harbour scenes", generic_lora("harbour"), published_at=START)
        lora = generic_lora("v", ss_training_comment="after Ilse Varnhagen")
        hubs.huggingface.add_repo("fan/varnhagen-lora", START, {"v.safetensors": lora})
        yield hubs


async def cli(hubs: Hubs, data: Path, *args: str, hf: str | None = None) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STYLEWATCH_")}
    env.update(
        STYLEWATCH_DATA_DIR=str(data),
        STYLEWATCH_SOURCES__CIVITAI__BASE_URL=hubs.civitai_url,
        STYLEWATCH_SOURCES__CIVITAI__API_KEY=CIVITAI_KEY,
        STYLEWATCH_SOURCES__HUGGINGFACE__ENDPOINT=hf or hubs.huggingface_url,
        STYLEWATCH_SOURCES__HUGGINGFACE__TOKEN=HF_TOKEN,
    )
    proc = await asyncio.create_subprocess_exec(
        str(BIN), *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=100)
    assert proc.returncode is not None
    assert "Traceback" not in err.decode()
    return proc.returncode, out.decode(), err.decode()


async def test_artist_add_searches_the_hubs_history(hubs, tmp_path) -> None:
    code, out, err = await cli(hubs, tmp_path, "artist", "add", ARTIST)
    assert code == 0, err
    assert "hub history: 4 uploads found, 4 screened" in out
    assert "warning" not in err
    findings = json.loads((await cli(hubs, tmp_path, "findings", "--json"))[1])
    assert sorted(f["source"] for f in findings) == ["civitai"] * 3 + ["huggingface"]
    assert all(f["findings"][0]["backscan"] for f in findings)
    assert all(f["hub_status"] is None for f in findings)  # never checked yet
    searches = [r for r in hubs.civitai.received if r.path == "/api/v1/models"]
    code, out, _ = await cli(hubs, tmp_path, "artist", "backscan", ARTIST, "--hubs")
    assert code == 0
    assert "back-scan: 4 earlier uploads name Ilse Varnhagen" in out
    assert "hub history: already searched" in out
    assert len([r for r in hubs.civitai.received if r.path == "/api/v1/models"]) == len(searches)


async def test_an_unreachable_hub_is_one_warning_and_resumes_later(hubs, tmp_path) -> None:
    code, out, err = await cli(hubs, tmp_path, "artist", "add", ARTIST, hf="http://127.0.0.1:9")
    assert code == 0, err
    warnings = err.strip().splitlines()
    assert len(warnings) == 1
    assert warnings[0].startswith("warning: hub history stopped on huggingface (")
    assert f'stylewatch artist backscan "{ARTIST}" --hubs' in warnings[0]
    assert "hub history: 3 uploads found" in out
    listed = json.loads((await cli(hubs, tmp_path, "artist", "list", "--json"))[1])
    assert [a["name"] for a in listed] == [ARTIST]  # registered all the same
    code, out, err = await cli(hubs, tmp_path, "artist", "backscan", ARTIST, "--hubs")
    assert code == 0 and not err.strip()
    assert "hub history: 1 uploads found, 1 screened (huggingface 1 page)" in out
    uploads = json.loads((await cli(hubs, tmp_path, "uploads", "--json"))[1])
    assert len(uploads) == 4


async def test_takedowns_check_takes_down_what_left_the_hub(hubs, tmp_path) -> None:
    assert (await cli(hubs, tmp_path, "artist", "add", ARTIST))[0] == 0
    engine = create_db_engine(f"sqlite:///{tmp_path / 'stylewatch.db'}")
    try:
        moderator = UserStore(engine).add_user("mod@example.org", "moderator", "x")
        triage = TriageStore(engine, clock=lambda: datetime.now(UTC) - timedelta(days=8))
        for finding in Store(engine).list_findings():
            triage.decide(finding.id, moderator.id, "confirm", "her ink style")
    finally:
        engine.dispose()
    gone = next(m for m in hubs.civitai.models.values() if m.name.endswith("ink 0"))
    del hubs.civitai.models[gone.id]
    code, out, err = await cli(hubs, tmp_path, "takedowns", "check", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert (report["checked"], report["gone"], report["taken_down"]) == (4, 1, 1)
    assert len(report["still_up"]) == 3 and all(s["hub_status"]["up"] for s in report["still_up"])
    flagged = json.loads((await cli(hubs, tmp_path, "findings", "--json"))[1])
    taken = [f for f in flagged if f["state"] == "taken_down"]
    assert [f["upload_id"] for f in taken] == [str(gone.versions[0].id)]
    assert taken[0]["hub_status"]["up"] is False and taken[0]["hub_status"]["status"] == "removed"
    code, out, _ = await cli(hubs, tmp_path, "takedowns", "check")
    assert "takedowns: 0 uploads checked" in out  # checked today already
    assert out.count("confirmed 8 days ago, up at") == 3
