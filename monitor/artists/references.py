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

:func:`gate_image` is the one gate: the caps on bytes, pixels, frames (an animated image is
refused; a WebP's canvas and animation flag are read from its RIFF header before libwebp
sees it, since its animation decoder allocates whole canvases when it opens) and decoded
size are checked before any pixel is decoded, the file is decoded once, and that decode
makes the thumbnail the web UI serves, so no page decodes a big image again.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageFile, JpegImagePlugin, PngImagePlugin, WebPImagePlugin

from monitor.runtime import Runtime
from storage.blobs import BlobStore
from storage.store import Store

MAX_IMAGE_BYTES = 25 * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000
MAX_IMAGE_FRAMES = 1
# Bytes the decoded pixels may take (an RGBA image at the pixel cap would take 160 MB).
MAX_DECODED_BYTES = 128 * 1024 * 1024
THUMB_PX = 320
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# What Pillow raises on a broken or hostile file: OSError (truncated data, decoder errors),
# SyntaxError (a malformed PNG/JPEG structure or a bad CRC), ValueError (a PNG text chunk
# over MAX_TEXT_CHUNK), and the header reads' IndexError/EOFError/struct.error.
_UNREADABLE = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, struct.error)


class _Refused(ValueError):
    """check_image's own refusal, kept apart from the ValueErrors Pillow raises."""


@dataclass(frozen=True, slots=True)
class GatedImage:
    """An image the gate took: its type, true size and a PNG thumbnail (``THUMB_PX``)."""

    mime: str
    width: int
    height: int
    thumbnail: bytes


def check_image(data: bytes) -> tuple[str, int, int]:
    """(mime, width, height) of an image :func:`gate_image` takes, or its ValueError."""
    image = gate_image(data)
    return image.mime, image.width, image.height


def gate_image(data: bytes) -> GatedImage:
    """The image checked, decoded once and thumbnailed, or ValueError saying why not.

    Refused: more than :data:`MAX_IMAGE_BYTES`, not JPEG/PNG/WebP by its first bytes, more
    than :data:`MAX_IMAGE_PIXELS`, more than :data:`MAX_IMAGE_FRAMES` frames, pixels over
    :data:`MAX_DECODED_BYTES` decoded, or not decodable to the last pixel. Every cap is
    checked on the header, before the pixels are decoded.
    """
    if len(data) > MAX_IMAGE_BYTES:
        raise _Refused(f"larger than {MAX_IMAGE_BYTES // 2**20} MiB")
    name, mime, plugin = _format(data)
    if name == "WebP":
        _check_webp_header(data)
    with _reading(name):
        with plugin(io.BytesIO(data)) as img:
            width, height = img.size
            _check_caps(img)
            img.verify()
        with plugin(io.BytesIO(data)) as img:
            img.load()
            return GatedImage(mime, width, height, _thumbnail(img))


def _check_caps(img: ImageFile.ImageFile) -> None:
    width, height = img.size
    _check_pixels(width, height)
    frames = getattr(img, "n_frames", 1)
    if frames > MAX_IMAGE_FRAMES:
        raise _Refused(f"animated ({frames} frames); upload one still image")
    decoded = width * height * len(img.getbands())
    if decoded > MAX_DECODED_BYTES:
        raise _Refused(
            f"{width}x{height} {img.mode} pixels would take {decoded // 2**20} MiB decoded,"
            f" over the {MAX_DECODED_BYTES // 2**20} MiB cap"
        )


def _check_pixels(width: int, height: int) -> None:
    if width * height > MAX_IMAGE_PIXELS:
        raise _Refused(f"{width}x{height} pixels is over the {MAX_IMAGE_PIXELS:,} cap")


def _check_webp_header(data: bytes) -> None:
    """Refuse an animated or oversized WebP from its RIFF header alone (VP8X, VP8L, VP8)."""
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        if data[20] & 0x02:
            raise _Refused("animated (WebP animation); upload one still image")
        width = 1 + int.from_bytes(data[24:27], "little")
        height = 1 + int.from_bytes(data[27:30], "little")
    elif chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        width, height = 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    elif chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        width = int.from_bytes(data[26:28], "little") & 0x3FFF
        height = int.from_bytes(data[28:30], "little") & 0x3FFF
    else:
        return  # not a layout we can read: libwebp refuses it, or the caps below apply
    _check_pixels(width, height)


def _thumbnail(img: Image.Image) -> bytes:
    """A PNG at most ``THUMB_PX`` on its longer side, from the decoded image."""
    img.thumbnail((THUMB_PX, THUMB_PX))  # in place: the full-size pixels are not copied
    out = io.BytesIO()
    img.convert("RGBA" if img.mode in ("RGBA", "LA", "P", "PA") else "RGB").save(out, "PNG")
    return out.getvalue()


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
            image = gate_image(data)
        except ValueError as exc:
            skipped.append(f"{path.name}: {exc}; skipped")
            continue
        added += store_reference_image(runtime.blobs, runtime.store, artist_id, data, image)
    return added, skipped


def store_reference_image(
    blobs: BlobStore, store: Store, artist_id: int, data: bytes, image: GatedImage
) -> bool:
    """Put a gated image and its thumbnail in the blob store and link them to the artist;
    False when the artist already had it."""
    sha = blobs.put(data)
    thumb_sha = blobs.put(image.thumbnail)
    return store.add_reference_image(
        artist_id,
        sha,
        mime=image.mime,
        width=image.width,
        height=image.height,
        size=len(data),
        thumb_sha256=thumb_sha,
    )
