"""The probe port: a base model of a family plus, optionally, a LoRA file in; images out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from PIL import Image


@dataclass(frozen=True, slots=True)
class GenerationSettings:
    """How every probe image of a family is drawn. ``size_px`` None: the model's own size.

    These values are part of the base cache's key: changing one regenerates the base images.
    """

    steps: int = 20
    guidance_scale: float = 6.0
    size_px: int | None = None
    batch_images: int = 8


Draw = Callable[[Sequence[str], Sequence[int]], list[Image.Image]]


@runtime_checkable
class ProbeBackend(Protocol):
    """Draws images with a family's base model, with or without one LoRA applied.

    ``generate`` returns one image per (prompt, seed) pair, in order; the same pair on the
    bare base model (``lora`` None) gives the same image every time, and a LoRA applied for
    one call is gone after it. ``lora`` keeps one LoRA applied for a block and yields a
    ``draw(prompts, seeds)`` function, so a plan drawn in two passes loads the file once.
    ``unet_evaluations`` counts denoiser evaluations (one per image per step, both guidance
    halves counted), so callers can measure cache savings.
    Raises ``ProbeError`` when the family has no base model or the LoRA cannot be applied.
    """

    unet_evaluations: int

    def families(self) -> frozenset[str]: ...

    def generate(
        self,
        family: str,
        prompts: Sequence[str],
        seeds: Sequence[int],
        lora: Path | None = None,
    ) -> list[Image.Image]: ...

    def lora(self, family: str, path: Path) -> AbstractContextManager[Draw]: ...

    def settings_key(self, family: str) -> str:
        """A string that changes whenever the family's base images would change."""
        ...


@runtime_checkable
class CheckpointBackend(Protocol):
    """A backend that can also draw with a full checkpoint's weights in place of the base
    model's (``DiffusersProbe.checkpoint``); the weights are the base's again after it."""

    def checkpoint(self, family: str, path: Path) -> AbstractContextManager[Draw]: ...
