"""The evidence sheet: the LoRA's images over the base model's for the same prompts and seeds,
over the artist's nearest references, as one PNG a moderator can read at a glance."""

from __future__ import annotations

import io
from collections.abc import Sequence

from PIL import Image, ImageDraw

CELL_PX = 192
LABEL_PX = 64
MAX_COLUMNS = 8
ROWS = ("LoRA", "base", "references")


def evidence_sheet(
    lora: Sequence[Image.Image],
    base: Sequence[Image.Image],
    references: Sequence[Image.Image],
) -> bytes:
    """A PNG with three labelled rows of at most ``MAX_COLUMNS`` cells of ``CELL_PX``."""
    rows = [list(lora[:MAX_COLUMNS]), list(base[:MAX_COLUMNS]), list(references[:MAX_COLUMNS])]
    columns = max(1, *(len(r) for r in rows))
    sheet = Image.new("RGB", (LABEL_PX + columns * CELL_PX, len(rows) * CELL_PX), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (label, images) in enumerate(zip(ROWS, rows, strict=True)):
        top = r * CELL_PX
        draw.text((6, top + CELL_PX // 2 - 6), label, fill="black")
        for c, image in enumerate(images):
            cell = image.convert("RGB").resize((CELL_PX, CELL_PX), Image.Resampling.BICUBIC)
            sheet.paste(cell, (LABEL_PX + c * CELL_PX, top))
    out = io.BytesIO()
    sheet.save(out, format="PNG", optimize=True)
    return out.getvalue()
