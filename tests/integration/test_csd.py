"""CsdEmbedder and ``stylewatch models convert-csd`` on a tiny random CSD checkpoint.

The checkpoint is shaped like the published one: a ``torch.save`` zip holding
``model_state_dict`` with ``module.backbone.*`` (OpenAI CLIP visual names, no
``backbone.proj``), ``module.last_layer_style`` and ``module.last_layer_content``, beside the
training ``args``. Its backbone comes from a randomly initialised transformers CLIP vision
model, so the plain-torch forward can be checked against transformers' own.
"""

from __future__ import annotations

import argparse
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from detectors.errors import ConfigError, InputError, RefusedFile
from detectors.style.base import StyleEmbedder
from detectors.style.csd import CsdEmbedder
from detectors.style.csd_checkpoint import convert_csd_checkpoint
from detectors.style.csd_model import load_csd_model
from monitor.cli.models import convert_csd
from monitor.pipeline.probe import style_embedder
from monitor.settings import load_settings

BIN = Path(sys.executable).parent / "stylewatch"
STYLE_DIM = 16


def tiny_clip(
    width: int, heads: int, proj_dim: int, *, image_size: int = 32, own_init: bool = False
) -> CLIPVisionModelWithProjection:
    """A tiny random CLIP vision tower. ``own_init`` draws every weight from one seeded
    generator (norms 1, biases 0, the rest N(0, 0.02)), so the model does not change when a
    transformers release changes its initialisation."""
    torch.manual_seed(0)
    config = CLIPVisionConfig(
        hidden_size=width,
        intermediate_size=4 * width,
        num_hidden_layers=2,
        num_attention_heads=heads,
        image_size=image_size,
        patch_size=8,
        projection_dim=proj_dim,
    )
    model = CLIPVisionModelWithProjection(config)
    if own_init:
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for name, param in model.named_parameters():
                if "norm" in name and name.endswith("weight"):
                    param.fill_(1.0)
                elif name.endswith("bias"):
                    param.zero_()
                else:
                    param.copy_(torch.randn(param.shape, generator=generator) * 0.02)
    torch.nn.Module.eval(model)
    return model


def openai_visual(hf: CLIPVisionModelWithProjection) -> dict[str, torch.Tensor]:
    """The vision tower under OpenAI CLIP's ``visual`` names, with ``proj`` as CLIP stores it."""
    sd = {k.removeprefix("vision_model."): v for k, v in hf.state_dict().items()}
    out = {
        "conv1.weight": sd["embeddings.patch_embedding.weight"],
        "class_embedding": sd["embeddings.class_embedding"],
        "positional_embedding": sd["embeddings.position_embedding.weight"],
        "proj": sd["visual_projection.weight"].T,
    }
    for ours, theirs in (("ln_pre", "pre_layrnorm"), ("ln_post", "post_layernorm")):
        for p in ("weight", "bias"):
            out[f"{ours}.{p}"] = sd[f"{theirs}.{p}"]
    for i in range(hf.config.num_hidden_layers):
        h, o = f"encoder.layers.{i}.", f"transformer.resblocks.{i}."
        for p in ("weight", "bias"):
            qkv = [sd[f"{h}self_attn.{x}_proj.{p}"] for x in "qkv"]
            out[f"{o}attn.in_proj_{p}"] = torch.cat(qkv)
            out[f"{o}attn.out_proj.{p}"] = sd[f"{h}self_attn.out_proj.{p}"]
            out[f"{o}ln_1.{p}"] = sd[f"{h}layer_norm1.{p}"]
            out[f"{o}ln_2.{p}"] = sd[f"{h}layer_norm2.{p}"]
            out[f"{o}mlp.c_fc.{p}"] = sd[f"{h}mlp.fc1.{p}"]
            out[f"{o}mlp.c_proj.{p}"] = sd[f"{h}mlp.fc2.{p}"]
    return {k: v.detach().clone() for k, v in out.items()}


def csd_checkpoint(
    visual: dict[str, torch.Tensor], style: torch.Tensor, *, keep_proj: bool = False
) -> dict[str, object]:
    """What CSD's training saves: proj moved into the two heads, ``module.`` from DDP."""
    state = {f"module.backbone.{k}": v for k, v in visual.items() if keep_proj or k != "proj"}
    state["module.last_layer_style"] = style
    state["module.last_layer_content"] = torch.randn(style.shape)
    return {"model_state_dict": state, "epoch": 3, "args": argparse.Namespace(lr=3e-5, arch="x")}


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STYLEWATCH_")}
    env["STYLEWATCH_DATA_DIR"] = str(tmp_path / "data")
    return subprocess.run(
        [str(BIN), *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    visual = openai_visual(tiny_clip(32, 1, 24))
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("csd") / "checkpoint.pth"
    torch.save(csd_checkpoint(visual, torch.randn(32, STYLE_DIM)), path)
    return path


@pytest.fixture(scope="module")
def converted(checkpoint: Path) -> tuple[Path, subprocess.CompletedProcess[str]]:
    out = checkpoint.with_name("csd.safetensors")
    return out, run(checkpoint.parent, "models", "convert-csd", str(checkpoint), str(out))


def images() -> list[Image.Image]:
    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 255, (40, 64, 3), np.uint8))
    ramp = np.arange(0, 250, 25, dtype=np.uint8).repeat(3).reshape(1, 10, 3)
    stripes = Image.fromarray(np.tile(ramp, (50, 5, 1)))
    return [Image.new("RGB", (48, 40), (220, 30, 30)), noise, stripes]


def test_convert_keeps_backbone_and_style_head(converted):
    out, result = converted
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1
    assert "width 32, 2 layers, 1 heads, patch 8, image 32px, style dim 16" in result.stdout
    with safe_open(str(out), framework="pt") as f:
        keys = set(f.keys())
    assert "last_layer_style" in keys
    assert "backbone.transformer.resblocks.1.attn.in_proj_weight" in keys
    assert not any(k.startswith("module.") or "content" in k for k in keys)


def test_convert_refuses_to_overwrite(converted, checkpoint):
    out, _ = converted
    before = out.read_bytes()
    with pytest.raises(InputError, match="--force"):
        convert_csd(checkpoint, out)
    assert out.read_bytes() == before


def test_embeds_unit_vectors_deterministically(converted):
    out, _ = converted
    embedder = CsdEmbedder(out, device="cpu")
    assert isinstance(embedder, StyleEmbedder)
    assert embedder.dim == STYLE_DIM
    vecs = embedder.embed(images())
    assert vecs.shape == (3, STYLE_DIM)
    assert vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(vecs[0], vecs[1], atol=1e-3)
    again = CsdEmbedder(out, device="cpu").embed(images())
    np.testing.assert_array_equal(again, vecs)
    np.testing.assert_allclose(embedder.embed(images()[1:2])[0], vecs[1], atol=1e-5)
    assert embedder.embed([]).shape == (0, STYLE_DIM)


@pytest.mark.parametrize("projected", [False, True], ids=["csd", "through-proj"])
def test_forward_matches_transformers_clip(projected, tmp_path):
    """The plain-torch ViT (2 heads here) gives transformers' CLIP image embedding."""
    hf = tiny_clip(128, 2, 24)
    visual = openai_visual(hf)
    style = torch.randn(24, STYLE_DIM) if projected else visual["proj"]
    torch.save(csd_checkpoint(visual, style, keep_proj=projected), tmp_path / "checkpoint.pth")
    convert_csd_checkpoint(tmp_path / "checkpoint.pth", tmp_path / "csd.safetensors")
    from safetensors.torch import load_file

    model = load_csd_model(load_file(tmp_path / "csd.safetensors"))
    pixels = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        theirs = hf(pixel_values=pixels).image_embeds
        if projected:
            theirs = theirs @ style
        expected = torch.nn.functional.normalize(theirs, dim=-1)
        torch.testing.assert_close(model(pixels), expected, atol=1e-5, rtol=1e-4)


class Payload:
    """Unpickling this runs code: it writes ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"with open({str(self.marker)!r}, 'w') as f: f.write('ran')",))


def test_convert_refuses_a_pickle_that_runs_code(checkpoint, tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "checkpoint.pth"
    torch.save({"model_state_dict": {}, "hook": Payload(marker)}, evil)
    result = run(tmp_path, "models", "convert-csd", str(evil), str(tmp_path / "out.safetensors"))
    assert result.returncode == 2
    assert result.stderr.startswith("error:") and result.stderr.count("\n") == 1
    assert "weights-only" in result.stderr
    assert not marker.exists()
    assert not (tmp_path / "out.safetensors").exists()
    torch.load(evil, weights_only=False)  # the payload is live: a plain load runs it
    assert marker.read_text() == "ran"


def test_convert_refuses_a_plain_pickle_that_runs_code(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "checkpoint.pth"
    evil.write_bytes(pickle.dumps({"model_state_dict": Payload(marker)}))
    with pytest.raises(RefusedFile, match="weights-only"):
        convert_csd_checkpoint(evil, tmp_path / "out.safetensors")
    assert not marker.exists()
    pickle.loads(evil.read_bytes())  # noqa: S301 (the payload is live: a plain load runs it)
    assert marker.exists()


def test_convert_rejects_a_state_dict_without_a_style_head(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"module.backbone.conv1.weight": torch.zeros(8, 3, 4, 4)}, path)
    with pytest.raises(InputError, match="not a CSD checkpoint"):
        convert_csd_checkpoint(path, tmp_path / "out.safetensors")


def test_settings_build_the_csd_embedder(converted, checkpoint, tmp_path):
    out, _ = converted
    settings = load_settings(
        data_dir=tmp_path, style={"embedder": "csd", "csd_weights": out}, probe={"device": "cpu"}
    )
    embedder = style_embedder(settings)
    assert isinstance(embedder, CsdEmbedder)
    assert embedder.embed(images()[:1]).shape == (1, STYLE_DIM)

    unset = load_settings(data_dir=tmp_path, style={"embedder": "csd"})
    with pytest.raises(ConfigError, match=r"style\.csd_weights") as missing:
        style_embedder(unset)
    assert "\n" not in str(missing.value)

    raw = load_settings(data_dir=tmp_path, style={"embedder": "csd", "csd_weights": checkpoint})
    with pytest.raises(ConfigError, match="convert-csd") as pickled:
        style_embedder(raw)
    assert "\n" not in str(pickled.value)
