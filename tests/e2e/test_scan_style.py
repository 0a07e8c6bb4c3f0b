"""``stylewatch scan`` finds a style LoRA by what it draws: no name in its metadata, the probe
at default settings on the tiny SD1 pipeline, in kohya and in PEFT layout, with each embedder
(the built-in style-v1 and gram-v1, and CLIP and CSD from weights the operator names, here
randomly initialised); a benign LoRA stays clean."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.probe_checkpoints import save_checkpoint
from tests.probe_fixtures import TinySD
from tests.probe_models import style_references

BIN = Path(sys.executable).parent / "stylewatch"
pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.filterwarnings("ignore::FutureWarning:diffusers"),
]
ARTISTS = {"Mara Quellbrook": "ember", "Tobin Asch": "tide", "Ilse Varga": "moss"}


def run(tmp_path: Path, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STYLEWATCH_")}
    env.update(STYLEWATCH_DATA_DIR=str(tmp_path / "data"), STYLEWATCH_CONFIG=str(config))
    env["STYLEWATCH_HUB_HISTORY__ENABLED"] = "false"  # `artist add` stays off the real hubs
    return subprocess.run(
        [str(BIN), *args], capture_output=True, text=True, env=env, timeout=280, check=False
    )


@pytest.fixture(scope="module")
def tiny_sd1(tmp_path_factory: pytest.TempPathFactory) -> TinySD:
    """The tiny pipeline at SD1's text width (768), so that screening reads "sd1" from a
    LoRA's own widths, and its style and benign LoRAs with no metadata at all."""
    import torch

    from tests import probe_models as pm

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("tiny-sd1")
    base = pm.build_tiny_sd(root / "base", text_width=768)
    # Trained through the sampler with the probe's default guidance, as its users draw it.
    style = pm.train_style_lora(base, "ember", guidance=6.0, steps=60)
    benign = pm.benign_lora(base, seed=1)
    return TinySD(
        base=base,
        style_peft=pm.save_peft_lora(style, root / "style-peft.safetensors"),
        style_kohya=pm.save_kohya_lora(style, root / "style-kohya.safetensors"),
        benign_peft=pm.save_peft_lora(benign, root / "benign-peft.safetensors"),
        benign_kohya=pm.save_kohya_lora(benign, root / "benign-kohya.safetensors"),
        benign_extra=(),
    )


def style_weights(kind: str, folder: Path) -> Path:
    """Randomly initialised CLIP (a transformers folder) or CSD (converted from a checkpoint
    laid out like the published one) weights: the operator's `clip_weights`/`csd_weights`."""
    import torch

    from detectors.style.csd_checkpoint import convert_csd_checkpoint
    from tests.integration.test_csd import STYLE_DIM, csd_checkpoint, openai_visual, tiny_clip

    if kind == "clip":
        # 64 px input (the tiny world's images), not 32: at 32 px a random tower kept the
        # style LoRA's detection within 1 % of its threshold; at 64 px it is about 2.5x.
        model = tiny_clip(64, 2, 32, image_size=64, own_init=True)
        model.save_pretrained(folder / "clip", safe_serialization=True)
        return folder / "clip"
    model = tiny_clip(64, 2, 32)
    torch.manual_seed(1)
    torch.save(csd_checkpoint(openai_visual(model), torch.randn(64, STYLE_DIM)), folder / "csd.pth")
    convert_csd_checkpoint(folder / "csd.pth", folder / "csd.safetensors")
    return folder / "csd.safetensors"


# The layouts once more with CLIP and CSD would repeat the layouts' checks: one each.
LAYOUTS = {"default": ("kohya", "peft"), "gram": ("kohya", "peft"), "clip": ("kohya",),
           "csd": ("peft",)}  # fmt: skip


@pytest.fixture(scope="module", params=sorted(LAYOUTS))
def registered(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tiny_sd1: TinySD
) -> tuple[Path, Path, str]:
    """A data dir with three artists of the tiny world registered, and a config that only
    names the base model (and the embedder, when not the default learned style-v1): every
    probe setting (steps, guidance, size, threshold) at its default."""
    tiny_sd = tiny_sd1
    tmp_path = tmp_path_factory.mktemp(f"scan-style-{request.param}")
    config = tmp_path / "config.toml"
    text = f'[probe]\ndevice = "cpu"\nbase_models = {{ sd1 = "{tiny_sd.base}" }}\n'
    if request.param == "gram":
        text += '[style]\nembedder = "gram"\n'
    elif request.param in ("clip", "csd"):
        weights = style_weights(request.param, tmp_path)
        text += f'[style]\nembedder = "{request.param}"\n{request.param}_weights = "{weights}"\n'
    config.write_text(text)
    for i, (name, style) in enumerate(ARTISTS.items()):
        refs = tmp_path / f"refs-{style}"
        refs.mkdir()
        for j, image in enumerate(style_references(tiny_sd.base, style, n=6, seed=10 + i)):
            image.resize((64, 64)).save(refs / f"{j}.png")
        added = run(tmp_path, config, "artist", "add", name, "--images", str(refs))
        assert added.returncode == 0, added.stderr
    return tmp_path, config, request.param


def test_a_style_lora_without_metadata_is_flagged_and_a_benign_one_is_clean(registered, tiny_sd1):
    """One folder scan per embedder (one process: the pipeline loads and the base images
    are drawn once) of its layouts' style and benign LoRAs, each reported on its own."""
    tmp_path, config, embedder = registered
    folder = tmp_path / "uploads"
    folder.mkdir()
    expected = {}
    for layout in LAYOUTS[embedder]:
        style = tiny_sd1.style_kohya if layout == "kohya" else tiny_sd1.style_peft
        benign = tiny_sd1.benign_kohya if layout == "kohya" else tiny_sd1.benign_peft
        for kind, lora in (("style", style), ("benign", benign)):
            name = f"{kind}-{layout}.safetensors"
            shutil.copyfile(lora, folder / name)
            expected[name] = kind
    if embedder == "default":  # full checkpoints (the LoRAs merged in) are probed too
        for kind, lora in (("style", tiny_sd1.style_peft), ("benign", tiny_sd1.benign_peft)):
            save_checkpoint(tiny_sd1.base, folder / f"{kind}-checkpoint.safetensors", lora)
            expected[f"{kind}-checkpoint.safetensors"] = kind
    result = run(tmp_path, config, "scan", str(folder), "--json")
    assert result.returncode == 1, result.stdout + result.stderr  # a file is flagged
    reports = {Path(r["target"]).name: r for r in json.loads(result.stdout)}
    assert reports.keys() == expected.keys(), result.stderr
    # diffusers' and transformers' progress bars and "safe to ignore" notices stay out of it.
    for noise in ("it/s]", "Loading pipeline", "safe to ignore", "is deprecated", "torchvision"):
        assert noise not in result.stderr, result.stderr
    for name, kind in expected.items():
        report = reports[name]
        assert report["base_family"] == "sd1", name
        assert report["kind"] == ("checkpoint" if "checkpoint" in name else "lora"), name
        assert report["probe"]["ran"] is True, name
        if kind == "benign":
            assert (report["verdict"], report["findings"]) == ("clean", []), name
            continue
        assert report["verdict"] == "flagged", name
        top = report["findings"][0]
        assert (top["artist"], top["stage"]) == ("Mara Quellbrook", "probe"), name
        assert [f["artist"] for f in report["findings"]] == ["Mara Quellbrook"], name
        style = next(e for e in top["evidence"] if e["source"] == "style")
        assert "of the headroom" in style["text"], name

    if embedder == "default":  # and the single-file path: its exit status and report
        single = run(tmp_path, config, "scan", str(tiny_sd1.style_kohya), "--json")
        assert single.returncode == 1, single.stdout + single.stderr
        report = json.loads(single.stdout)
        assert (report["verdict"], report["findings"][0]["stage"]) == ("flagged", "probe")
