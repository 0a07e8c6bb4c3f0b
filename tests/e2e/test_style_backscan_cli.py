"""``stylewatch artist add --images`` in a subprocess: LoRAs scanned (and probed on the tiny
pipeline) before an artist had reference images are scored against them from the kept
probe runs, and the one that draws in the artist's style becomes a back-scan finding."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.probe_fixtures import TinySD
from tests.probe_models import style_references

BIN = Path(sys.executable).parent / "stylewatch"
pytestmark = [
    pytest.mark.timeout(420),
    pytest.mark.filterwarnings("ignore::FutureWarning:diffusers"),
]


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STYLEWATCH_")}
    env.update(
        STYLEWATCH_DATA_DIR=str(tmp_path / "data"), STYLEWATCH_CONFIG=str(tmp_path / "c.toml")
    )
    result = subprocess.run(
        [str(BIN), *args], capture_output=True, text=True, env=env, timeout=200, check=False
    )
    assert "Traceback" not in result.stderr
    return result


@pytest.fixture
def configured(tmp_path: Path, tiny_sd: TinySD) -> TinySD:
    # The tiny LoRAs are too narrow to be recognised as SD1: their family is "unknown".
    (tmp_path / "c.toml").write_text(
        "[sources.civitai]\nenabled = false\n[sources.huggingface]\nenabled = false\n"
        f'[probe]\ndevice = "cpu"\nbase_models = {{ unknown = "{tiny_sd.base}" }}\n'
        "steps = 2\nguidance_scale = 1.0\nsize_px = 32\n",
        encoding="utf-8",
    )
    for style in ("tide", "ember"):
        folder = tmp_path / style
        folder.mkdir()
        for i, image in enumerate(style_references(tiny_sd.base, style, n=4, seed=1)):
            image.save(folder / f"{i}.png")
    return tiny_sd


def test_reference_images_added_later_rescore_scanned_loras(tmp_path, configured):
    tide = run(tmp_path, "artist", "add", "Tide Marsh", "--images", str(tmp_path / "tide"))
    assert tide.returncode == 0, tide.stderr
    assert "probe back-scan: 0 probed uploads re-scored" in tide.stdout
    loras = tmp_path / "loras"
    loras.mkdir()
    for lora in (configured.style_kohya, configured.benign_kohya):
        (loras / lora.name).write_bytes(lora.read_bytes())
    reports = json.loads(run(tmp_path, "scan", str(loras), "--json").stdout)
    assert [r["probe"]["ran"] for r in reports] == [True, True], reports
    assert run(tmp_path, "artist", "add", "Ember Vale").returncode == 0

    added = run(tmp_path, "artist", "add", "Ember Vale", "--images", str(tmp_path / "ember"))

    assert added.returncode == 0, added.stderr
    lines = added.stdout.splitlines()
    assert lines[0] == "updated Ember Vale (#2): 0 new aliases and 4 reference images added"
    assert lines[1].startswith("probe back-scan: 2 probed uploads re-scored")
    assert lines[1].endswith("1 flagged")
    assert "probe back-scan: 1 flagged for Ember Vale" in lines
    flagged = json.loads(run(tmp_path, "findings", "--json").stdout)
    ember = [
        (u["name"], f["stage"], f["backscan"])
        for u in flagged
        for f in u["findings"]
        if f["artist"] == "Ember Vale"
    ]
    assert ember == [(configured.style_kohya.name, "probe", True)]
    again = run(tmp_path, "artist", "add", "Ember Vale", "--images", str(tmp_path / "ember"))
    assert "nothing new to add" in again.stdout  # the same images: no second back-scan
