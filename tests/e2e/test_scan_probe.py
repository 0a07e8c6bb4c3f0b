"""``stylewatch scan`` with the probe configured: it runs for the file's family or says why
not, and a probe fault is one reason in the report, never a crash."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.modelfiles import fixture_bytes
from tests.probe_fixtures import TinySD

BIN = Path(sys.executable).parent / "stylewatch"
pytestmark = pytest.mark.timeout(180)


def run(tmp_path: Path, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STYLEWATCH_")}
    env.update(STYLEWATCH_DATA_DIR=str(tmp_path / "data"), STYLEWATCH_CONFIG=str(config))
    env["STYLEWATCH_HUB_HISTORY__ENABLED"] = "false"  # `artist add` stays off the real hubs
    return subprocess.run(
        [str(BIN), *args], capture_output=True, text=True, env=env, timeout=170, check=False
    )


@pytest.fixture
def configured(tmp_path: Path, tiny_sd: TinySD) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(f'[probe]\ndevice = "cpu"\nbase_models = {{ sd1 = "{tiny_sd.base}" }}\n')
    refs = tmp_path / "refs"
    refs.mkdir()
    for i, colour in enumerate([(200, 60, 20), (220, 90, 30), (180, 50, 10)]):
        Image.new("RGB", (64, 64), colour).save(refs / f"{i}.png")
    added = run(tmp_path, config, "artist", "add", "Mara Quellbrook", "--images", str(refs))
    assert added.returncode == 0, added.stderr
    assert "3 reference images" in added.stdout
    return config


def test_a_family_without_a_base_model_says_so(tmp_path, configured):
    lora = tmp_path / "xl.safetensors"
    lora.write_bytes(fixture_bytes("kohya_sdxl_lora"))
    result = run(tmp_path, configured, "scan", str(lora), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["base_family"] == "sdxl"
    assert report["probe"] == {"ran": False, "reason": "no base model configured for family sdxl"}


def test_a_lora_that_does_not_fit_the_base_is_a_reason_not_a_crash(tmp_path, configured):
    lora = tmp_path / "quellbrook_style_v1.safetensors"
    lora.write_bytes(
        fixture_bytes("kohya_sd15_style_lora")
    )  # real SD1 widths: not the tiny model's
    result = run(tmp_path, configured, "scan", str(lora), "--json")
    assert result.returncode == 1, result.stderr  # the metadata still flags it
    assert "Traceback" not in result.stderr
    report = json.loads(result.stdout)
    assert report["probe"]["ran"] is False
    assert report["probe"]["reason"].startswith("the probe failed")
    assert report["findings"][0]["stage"] == "metadata"
    uploads = json.loads(run(tmp_path, configured, "uploads", "--json").stdout)
    assert uploads[0]["error"].startswith("the probe failed")


def test_no_probe_flag(tmp_path, configured):
    lora = tmp_path / "a.safetensors"
    lora.write_bytes(fixture_bytes("kohya_sd15_style_lora"))
    report = json.loads(run(tmp_path, configured, "scan", str(lora), "--json", "--no-probe").stdout)
    assert report["probe"] == {"ran": False, "reason": "--no-probe given"}
