"""Session fixtures for the probe tests: the tiny pipeline and its LoRAs, built once.

Registered from tests/conftest.py; torch is imported only when a probe test asks for them.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from monitor.runtime import Runtime


@dataclass(frozen=True)
class TinySD:
    """A tiny SD1-style base model folder and LoRA files for it."""

    base: Path
    style_peft: Path  # trained to draw the "ember" style
    style_kohya: Path  # the same LoRA in kohya keys
    benign_peft: Path
    benign_kohya: Path
    benign_extra: tuple[Path, ...]  # more benign LoRAs, for calibration


@pytest.fixture(scope="session")
def tiny_sd(tmp_path_factory: pytest.TempPathFactory) -> TinySD:
    import torch

    from tests import probe_models as pm

    root = tmp_path_factory.mktemp("tiny-sd")
    # Models this small gain nothing from a second thread, and on a shared 2-core machine
    # OpenMP threads spinning against other processes made them 4x slower: one thread.
    torch.set_num_threads(1)
    base = pm.build_tiny_sd(root / "base")
    style = pm.train_style_lora(base, "ember")
    benign = pm.benign_lora(base, seed=1)
    extra = tuple(
        pm.save_peft_lora(pm.benign_lora(base, seed=s), root / f"benign-{s}.safetensors")
        for s in (2, 3, 4)
    )
    return TinySD(
        base=base,
        style_peft=pm.save_peft_lora(style, root / "style-peft.safetensors"),
        style_kohya=pm.save_kohya_lora(style, root / "style-kohya.safetensors"),
        benign_peft=pm.save_peft_lora(benign, root / "benign-peft.safetensors"),
        benign_kohya=pm.save_kohya_lora(benign, root / "benign-kohya.safetensors"),
        benign_extra=extra,
    )


def register_ember(runtime: Runtime, tiny_sd: TinySD) -> int:
    """Register "Ember Vale" with four references in the tiny world's "ember" style (the
    style LoRAs draw it); returns the artist's id."""
    from tests.probe_models import style_references

    artist = runtime.store.add_artist("Ember Vale")
    for image in style_references(tiny_sd.base, "ember", n=4, seed=1):
        out = io.BytesIO()
        image.save(out, format="PNG")
        sha = runtime.blobs.put(out.getvalue())
        runtime.store.add_reference_image(
            artist.id, sha, mime="image/png", width=image.width, height=image.height, size=0
        )
    return artist.id
