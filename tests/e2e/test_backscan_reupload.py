"""The issue's acceptance run in subprocesses: a folder poll records a LoRA naming an artist
not yet registered; ``artist add`` finds it without another poll; a stripped, fp16,
PEFT-renamed copy dropped in the folder is linked on the next poll."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.lora_variants import KOHYA_METADATA, kohya_lora, peft_lora, random_lora

BIN = Path(sys.executable).parent / "stylewatch"
pytestmark = pytest.mark.timeout(180)


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STYLEWATCH_")}
    env.update(
        STYLEWATCH_DATA_DIR=str(tmp_path / "data"),
        STYLEWATCH_SOURCES__FOLDER__ENABLED="true",
        STYLEWATCH_SOURCES__FOLDER__PATH=str(tmp_path / "watched"),
        STYLEWATCH_HUB_HISTORY__ENABLED="false",  # `artist add` stays off the real hubs
    )
    result = subprocess.run(
        [str(BIN), *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result


def _settled(path: Path) -> None:
    old = time.time() - 3600  # older than the folder source's settling age: taken at once
    os.utime(path, (old, old))


def test_backscan_on_registration_then_reupload_link(tmp_path):
    watched = tmp_path / "watched"
    watched.mkdir()
    weights = random_lora(21)
    _settled(kohya_lora(weights, watched / "ilse_style.safetensors", metadata=KOHYA_METADATA))
    run(tmp_path, "poll", "--once", "--source", "folder")
    assert json.loads(run(tmp_path, "findings", "--json").stdout) == []

    added = run(tmp_path, "artist", "add", "Ilse Varnhagen")
    assert "back-scan: 1 earlier upload names Ilse Varnhagen" in added.stdout
    flagged = json.loads(run(tmp_path, "findings", "--json").stdout)
    assert [f["name"] for f in flagged] == ["ilse_style.safetensors"]
    assert flagged[0]["findings"][0]["backscan"] is True
    again = run(tmp_path, "artist", "import", str(_artist_file(tmp_path)))
    assert "back-scan: 1 earlier upload names Ilse Varnhagen" in again.stdout
    assert len(json.loads(run(tmp_path, "findings", "--json").stdout)) == 1

    _settled(peft_lora(weights, watched / "soft_light.safetensors", dtype="float16"))
    run(tmp_path, "poll", "--once", "--source", "folder")
    uploads = {u["name"]: u for u in json.loads(run(tmp_path, "uploads", "--json").stdout)}
    original = uploads["ilse_style.safetensors"]
    assert original["reupload_of"] is None
    assert uploads["soft_light.safetensors"]["reupload_of"] == {
        "source": "folder",
        "upload_id": original["upload_id"],
    }


def _artist_file(tmp_path: Path) -> Path:
    path = tmp_path / "artists.csv"
    path.write_text("name,aliases,email\nIlse Varnhagen,ilse_v,\n", encoding="utf-8")
    return path


def test_an_alias_added_later_backscans_the_recorded_uploads(tmp_path):
    watched = tmp_path / "watched"
    watched.mkdir()
    metadata = {"ss_tag_frequency": '{"10_set": {"by ilsev": 12, "forest": 4}}'}
    _settled(kohya_lora(random_lora(5), watched / "forest.safetensors", metadata=metadata))
    hubs_off = ("--config", str(_no_hubs(tmp_path)))
    run(tmp_path, *hubs_off, "poll", "--once", "--source", "folder")
    first = run(tmp_path, *hubs_off, "artist", "add", "Ilse Varnhagen")
    assert "back-scan: no earlier uploads name Ilse Varnhagen" in first.stdout

    added = run(tmp_path, *hubs_off, "artist", "add", "Ilse Varnhagen", "--alias", "ilsev")

    assert added.stdout.splitlines()[:2] == [
        "updated Ilse Varnhagen (#1): 1 new alias added",
        "back-scan: 1 earlier upload names Ilse Varnhagen",
    ]
    flagged = json.loads(run(tmp_path, "findings", "--json").stdout)
    assert [(f["name"], f["findings"][0]["backscan"]) for f in flagged] == [
        ("forest.safetensors", True)
    ]


def _no_hubs(tmp_path: Path) -> Path:
    """Only the watched folder: registering an artist asks no hub for its history."""
    path = tmp_path / "folder-only.toml"
    path.write_text(
        "[sources.civitai]\nenabled = false\n[sources.huggingface]\nenabled = false\n",
        encoding="utf-8",
    )
    return path
