"""DiffusersProbe on the tiny SD1-style pipeline: loading, LoRA formats, back to base."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from detectors.errors import ProbeError
from detectors.probe.base import GenerationSettings, ProbeBackend
from detectors.probe.diffusers_probe import DiffusersProbe
from tests.probe_fixtures import TinySD
from tests.probe_models import IMAGE_PX, STEPS, grid_distance

pytestmark = [
    # diffusers warns that saved configs carry keys newer or older than its classes know.
    pytest.mark.filterwarnings("ignore::FutureWarning:diffusers"),
]

PROMPTS = ["a portrait", "a cat, by ann", "a landscape"]
SEEDS = [1, 2, 3]
TINY = GenerationSettings(steps=STEPS, guidance_scale=1.0, size_px=IMAGE_PX, batch_images=2)


@pytest.fixture(scope="module")
def probe(tiny_sd: TinySD) -> DiffusersProbe:
    return DiffusersProbe({"sd1": tiny_sd.base}, device="cpu", generation=TINY)


def _same(a, b) -> bool:
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b, strict=True))


def test_is_a_probe_backend(probe):
    assert isinstance(probe, ProbeBackend)
    assert probe.families() == {"sd1"}


def test_base_images_repeat_and_follow_seeds(probe):
    first = probe.generate("sd1", PROMPTS, SEEDS)
    again = probe.generate("sd1", PROMPTS, SEEDS)
    assert [im.size for im in first] == [(IMAGE_PX, IMAGE_PX)] * 3
    assert _same(first, again)
    assert not _same(first[:1], probe.generate("sd1", PROMPTS[:1], [99]))


def test_base_is_bit_identical_after_each_lora_format(probe, tiny_sd):
    before = probe.generate("sd1", PROMPTS, SEEDS)
    for lora in (tiny_sd.style_peft, tiny_sd.style_kohya, tiny_sd.benign_kohya):
        with_lora = probe.generate("sd1", PROMPTS, SEEDS, lora=lora)
        assert not _same(before, with_lora)
        assert _same(before, probe.generate("sd1", PROMPTS, SEEDS))


def test_kohya_and_peft_files_draw_the_same(probe, tiny_sd):
    peft = probe.generate("sd1", PROMPTS, SEEDS, lora=tiny_sd.style_peft)
    kohya = probe.generate("sd1", PROMPTS, SEEDS, lora=tiny_sd.style_kohya)
    assert grid_distance(peft, kohya) < 0.5


def test_style_lora_changes_images_benign_barely(probe, tiny_sd):
    base = probe.generate("sd1", PROMPTS, SEEDS)
    style = probe.generate("sd1", PROMPTS, SEEDS, lora=tiny_sd.style_peft)
    benign = probe.generate("sd1", PROMPTS, SEEDS, lora=tiny_sd.benign_peft)
    assert grid_distance(base, style) > 20
    assert grid_distance(base, benign) < 3


def test_counts_unet_evaluations(probe):
    before = probe.unet_evaluations
    probe.generate("sd1", PROMPTS, SEEDS)
    assert probe.unet_evaluations - before == len(PROMPTS) * STEPS


def test_unknown_family_and_pickles_are_refused(probe, tmp_path: Path):
    with pytest.raises(ProbeError, match="no base model configured for family sdxl"):
        probe.generate("sdxl", PROMPTS, SEEDS)
    pickle = tmp_path / "x.ckpt"
    pickle.write_bytes(b"\x80\x04")
    with pytest.raises(ProbeError, match="never loads pickles"):
        probe.generate("sd1", PROMPTS, SEEDS, lora=pickle)


def test_a_broken_lora_leaves_the_base_intact(probe, tmp_path: Path):
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}garbage")
    before = probe.generate("sd1", PROMPTS, SEEDS)
    with pytest.raises(ProbeError):
        probe.generate("sd1", PROMPTS, SEEDS, lora=broken)
    assert _same(before, probe.generate("sd1", PROMPTS, SEEDS))


def test_missing_base_folder_is_a_probe_error(tmp_path: Path):
    probe = DiffusersProbe({"sd1": tmp_path / "nowhere"}, device="cpu", generation=TINY)
    with pytest.raises(ProbeError, match="cannot load the sd1 base model"):
        probe.generate("sd1", PROMPTS, SEEDS)


@pytest.mark.gpu
def test_cuda_runs_in_half_precision(tiny_sd):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    probe = DiffusersProbe({"sd1": tiny_sd.base}, generation=TINY)
    images = probe.generate("sd1", PROMPTS, SEEDS, lora=tiny_sd.style_kohya)
    assert len(images) == 3
    assert probe.pipeline("sd1").unet.dtype == torch.float16
