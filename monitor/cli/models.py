"""CLI commands for local model weights: ``stylewatch models …``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from detectors.errors import InputError
from monitor.cli.context import out


def convert_csd(
    checkpoint: Annotated[
        Path, typer.Argument(help="The published CSD checkpoint (checkpoint.pth)")
    ],
    output: Annotated[Path, typer.Argument(help="Where to write the .safetensors file")],
    force: Annotated[bool, typer.Option("--force", help="Replace OUTPUT if it exists")] = False,
) -> None:
    """Convert the published CSD checkpoint to safetensors for the style.csd_weights setting.

    The checkpoint is a pickle. It is read once, here, with torch's weights-only unpickler
    (torch.load(..., weights_only=True)), which rebuilds only tensors and plain containers
    and refuses any other object, so a crafted file cannot run code: it is refused with an
    error instead. Only the backbone and the style head are kept. This is the only command
    that reads a pickle, and only the file named here.
    """
    from detectors.style.csd_checkpoint import convert_csd_checkpoint

    if output.exists() and not force:
        raise InputError(f"{output} exists; pass --force to replace it")
    done = convert_csd_checkpoint(checkpoint, output)
    s = done.shape
    out.print(
        f"wrote {output}: CSD ViT width {s.width}, {s.layers} layers, {s.heads} heads, "
        f"patch {s.patch_px}, image {s.image_px}px, style dim {s.style_dim}; "
        f"{done.tensors} tensors, {done.parameters:,} parameters ({', '.join(done.dtypes)}); "
        f"dropped {len(done.dropped)} tensors",
        markup=False,
    )
