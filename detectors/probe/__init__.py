"""detectors.probe: generating images with an upload's LoRA on a local base model (GPU)."""

from __future__ import annotations
