"""``stylewatch poll --once`` in a subprocess against the fake hubs on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.fakehubs import civitai as fake_civitai
from tests.fakehubs import huggingface as fake_hf
from tests.fakehubs.harness import CIVITAI_KEY, HF_TOKEN
from tests.fakehubs.servers import Hubs, running_hubs
from tests.integration.test_malformed_uploads import lora_with_metadata

BIN = Path(sys.executable).parent / "stylewatch"
pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def hubs() -> AsyncIterator[Hubs]:
    async with running_hubs() as hubs:
        fake_civitai.seed_from_fixtures(hubs.civitai)
        fake_hf.seed_from_fixtures(hubs.huggingface)
        yield hubs


async def cli(hubs: Hubs, data: Path, *args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STYLEWATCH_")}
    env.update(
        STYLEWATCH_DATA_DIR=str(data),
        STYLEWATCH_SOURCES__CIVITAI__BASE_URL=hubs.civitai_url,
        STYLEWATCH_SOURCES__CIVITAI__API_KEY=CIVITAI_KEY,
        STYLEWATCH_SOURCES__HUGGINGFACE__ENDPOINT=hubs.huggingface_url,
        STYLEWATCH_SOURCES__HUGGINGFACE__TOKEN=HF_TOKEN,
    )
    proc = await asyncio.create_subprocess_exec(
        str(BIN), *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=100)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_poll_once_records_each_upload_once_with_its_verdict(hubs, tmp_path):
    code, _, err = await cli(hubs, tmp_path, "artist", "add", "Mara Quellbrook")
    assert code == 0, err
    code, _, err = await cli(hubs, tmp_path, "artist", "add", "Oriel Hastmoor")
    assert code == 0, err
    for _ in range(2):
        code, out, err = await cli(hubs, tmp_path, "poll", "--once")
        assert code == 0, err
        assert "civitai" in out and "huggingface" in out
        assert "Traceback" not in err
    code, out, err = await cli(hubs, tmp_path, "uploads", "--json")
    assert code == 0, err
    uploads = json.loads(out)
    keys = [(u["source"], u["upload_id"]) for u in uploads]
    assert len(keys) == len(set(keys)), "an upload was recorded twice"
    civitai_ids = {u["upload_id"] for u in uploads if u["source"] == "civitai"}
    assert civitai_ids == hubs.civitai.version_ids()  # the cursor-skipped model included
    flagged = {tuple(u["artists"]) for u in uploads if u["artists"]}
    assert ("Mara Quellbrook",) in flagged
    assert ("Oriel Hastmoor",) in flagged  # named only in the Hugging Face card text
    for request in hubs.storage.received:
        assert "Authorization" not in request.headers
        assert CIVITAI_KEY not in str(request) and HF_TOKEN not in str(request)
    code, out, err = await cli(hubs, tmp_path, "findings", "--json")
    findings = json.loads(out)
    assert {a for f in findings for a in f["artists"]} == {"Mara Quellbrook", "Oriel Hastmoor"}


async def test_poll_once_with_an_unknown_source_is_one_line(hubs, tmp_path):
    code, _, err = await cli(hubs, tmp_path, "poll", "--once", "--source", "myspace")
    assert code == 2
    assert err.strip().startswith("error:") and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("target", "artist"),
    [
        ("civitai:3219871", None),
        ("hf:gallowmere-ai/hastmoor-linocut-flux", "Oriel Hastmoor"),
        (
            "hf:gallowmere-ai/hastmoor-linocut-flux/hastmoor_linocut_flux.safetensors",
            "Oriel Hastmoor",
        ),
    ],
)
async def test_scan_one_hub_upload(hubs, tmp_path, target, artist):
    for name in ("Mara Quellbrook", "Oriel Hastmoor"):  # no hub history: only the scan records
        assert (await cli(hubs, tmp_path, "artist", "add", name, "--no-hubs"))[0] == 0
    code, out, err = await cli(hubs, tmp_path, "scan", target, "--json")
    assert code == (1 if artist else 0), err
    report = json.loads(out)
    assert report["target"] == target
    assert report["format"] == "safetensors"
    assert [f["artist"] for f in report["findings"]][:1] == ([artist] if artist else [])
    code, out, _ = await cli(hubs, tmp_path, "uploads", "--json")
    assert len(json.loads(out)) == 1


async def test_scan_pasted_civitai_url_of_a_model(hubs, tmp_path):
    assert (await cli(hubs, tmp_path, "artist", "add", "Mara Quellbrook", "--no-hubs"))[0] == 0
    url = f"{hubs.civitai_url}/models/3214770/quellbrook-watercolor-style"
    code, out, err = await cli(hubs, tmp_path, "scan", url, "--json")
    assert code == 1, err
    report = json.loads(out)
    assert report["findings"][0]["artist"] == "Mara Quellbrook"
    assert report["kind"] == "lora"
    assert report["base_family"] == "sd1"


@pytest.mark.parametrize("target", ["civitai:abc", "hf:not-a-repo", "https://example.org/x"])
async def test_malformed_hub_targets_are_one_line(hubs, tmp_path, target):
    code, _, err = await cli(hubs, tmp_path, "scan", target)
    assert code == 2
    assert err.strip().startswith("error:")
    assert len(err.strip().splitlines()) == 1


async def test_an_unknown_version_is_one_line(hubs, tmp_path):
    code, _, err = await cli(hubs, tmp_path, "scan", "civitai:999999999")
    assert code == 2
    assert err.strip().startswith("error:")
    assert len(err.strip().splitlines()) == 1


async def test_scan_a_hub_upload_with_malformed_metadata_is_refused_and_recorded(hubs, tmp_path):
    """A hub upload whose ``__metadata__`` holds a number: verdict malformed with the reason,
    exit 2, and the upload is still recorded with its reason (nothing lost)."""
    odd = lora_with_metadata({"ss_output_name": "odd", "ss_epoch": 10})
    version = hubs.civitai.add_upload(
        "Odd Epochs", odd, published_at=datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    )
    code, out, err = await cli(hubs, tmp_path, "scan", f"civitai:{version.id}", "--json")
    assert code == 2, err
    report = json.loads(out)
    assert report["verdict"] == "malformed"
    assert report["malformed"] == (
        "odd_epochs.safetensors: __metadata__ 'ss_epoch' is a number, not a string"
    )
    assert report["kind"] == "lora"
    code, out, _ = await cli(hubs, tmp_path, "uploads", "--json")
    (upload,) = json.loads(out)
    assert upload["malformed"] == report["malformed"]
    assert upload["files"][0]["malformed"] == "__metadata__ 'ss_epoch' is a number, not a string"
