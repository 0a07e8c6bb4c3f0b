"""Importing an artist's reference images into the blob store.

Each file is checked to be a real image of a known type and a bounded size before it is
stored; a file that is not is skipped with a one-line reason.

Reference images come from artists' uploads and folders, so they are read as hostile: the
format is told by the first bytes and only JPEG, PNG and WebP get to a Pillow decoder (the
other plugins are never tried); the pixel count the header claims is checked against
:data:`MAX_IMAGE_PIXELS` before any pixel is decoded, by opening the format's plugin
directly, because ``Image.open`` runs Pillow's own, looser decompression-bomb check first
and only warns between 89M and 178M pixels; then the file is verified (PNG chunk CRCs) and
decoded whole, so a truncated or corrupt file is refused here, with one line, not when the
probe reads it later.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image, ImageFile, JpegImagePlugin, PngImagePlugin, WebPImagePlugin

from monitor.runtime import Runtime

MAX_IMAGE_BYTES = 25 * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# What Pillow raises on a broken or hostile file: OSError (truncated data, decoder errors),
# SyntaxError (a malformed PNG/JPEG structure or a bad CRC), ValueError (a PNG text chunk
# over MAX_TEXT_CHUNK), and the header reads' IndexError/EOFError/struct.error.
_UNREADABLE = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, struct.error)


class _Refused(ValueError):
    """check_image's own refusal, kept apart from the ValueErrors Pillow raises."""


def check_image(data: bytes) -> tuple[str, int, int]:
    """(mime, width, height) of an image, or ValueError saying why it is refused.

    Refused: more than :data:`MAX_IMAGE_BYTES`, not JPEG/PNG/WebP by its first bytes, more
    than :data:`MAX_IMAGE_PIXELS`, or not decodable to the last pixel. The decode is bounded
    by the pixel cap (at most 160 MB for a 4-channel image).
    """
    if len(data) > MAX_IMAGE_BYTES:
        raise _Refused(f"larger than {MAX_IMAGE_BYTES // 2**20} MiB")
    name, mime, plugin = _format(data)
    with _reading(name):
        with plugin(io.BytesIO(data)) as img:
            width, height = img.size
            if width * height > MAX_IMAGE_PIXELS:
                raise _Refused(f"{width}x{height} pixels is over the {MAX_IMAGE_PIXELS:,} cap")
            img.verify()
        with plugin(io.BytesIO(data)) as img:
            img.load()
    return mime, width, height


def _format(data: bytes) -> tuple[str, str, type[ImageFile.ImageFile]]:
    """(name, mime, Pillow plugin) of the allowed format ``data`` starts as."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG", "image/jpeg", JpegImagePlugin.JpegImageFile
    if data.startswith(_PNG_SIGNATURE):
        return "PNG", "image/png", PngImagePlugin.PngImageFile
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP", "image/webp", WebPImagePlugin.WebPImageFile
    raise _Refused("not a readable image (JPEG, PNG or WebP)")


@contextmanager
def _reading(name: str) -> Iterator[None]:
    try:
        yield
    except _Refused:
        raise
    except Image.DecompressionBombError as exc:  # the WebP plugin checks before it allocates
        raise _Refused(f"claims more pixels than the {MAX_IMAGE_PIXELS:,} cap") from exc
    except _UNREADABLE as exc:
        raise _Refused(f"not a readable {name} image (truncated or corrupt)") from exc


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
