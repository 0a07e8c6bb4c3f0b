"""Importing an artist's reference images into the blob store.

Each file is checked to be a real image of a known type and a bounded size before it is
stored; a file that is not is skipped with a one-line reason.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from monitor.runtime import Runtime

MAX_IMAGE_BYTES = 25 * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})
_MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


def check_image(data: bytes) -> tuple[str, int, int]:
    """(mime, width, height) of an image, or ValueError saying why it is refused."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format or ""
            width, height = img.size
            if fmt not in _MIME:
                raise ValueError(f"type {fmt or 'unknown'} is not JPEG, PNG or WebP")
            if width * height > MAX_IMAGE_PIXELS:
                raise ValueError(f"{width}x{height} pixels is over the {MAX_IMAGE_PIXELS:,} cap")
            img.verify()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise ValueError("not a readable image") from exc
    return _MIME[fmt], width, height


def import_reference_images(
    runtime: Runtime, artist_id: int, folder: Path
) -> tuple[int, list[str]]:
    """Store every image in ``folder`` as a reference of the artist.

    Returns how many were added and one line per skipped file. Re-importing is a no-op.
    """
    if not folder.is_dir():
        from detectors.errors import InputError

        raise InputError(f"{folder} is not a folder of images")
    added, skipped = 0, []
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        if path.stat().st_size > MAX_IMAGE_BYTES:
            skipped.append(f"{path.name}: larger than {MAX_IMAGE_BYTES // 2**20} MiB; skipped")
            continue
        data = path.read_bytes()
        try:
            mime, width, height = check_image(data)
        except ValueError as exc:
            skipped.append(f"{path.name}: {exc}; skipped")
            continue
        sha = runtime.blobs.put(data)
        if runtime.store.add_reference_image(
            artist_id, sha, mime=mime, width=width, height=height, size=len(data)
        ):
            added += 1
    return added, skipped
