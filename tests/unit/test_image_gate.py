"""The image gate (#20): animated images, canvases and decoded sizes over the caps are
refused in one line from the header, before any pixel is decoded; a taken image comes with
its thumbnail from the same decode."""

from __future__ import annotations

import io
import struct
import tracemalloc
import zlib

import pytest
from PIL import Image

from bench.fuzz_seeds import png_chunk
from monitor.artists.references import MAX_DECODED_BYTES, THUMB_PX, check_image, gate_image


def encoded(img: Image.Image, fmt: str, **kw: object) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **kw)
    return out.getvalue()


def frames(n: int, size: tuple[int, int] = (64, 48)) -> list[Image.Image]:
    return [Image.new("RGB", size, (40 * i, 90, 200 - 30 * i)) for i in range(n)]


def refusal(data: bytes) -> str:
    with pytest.raises(ValueError, match=r".") as caught:
        check_image(data)
    message = str(caught.value)
    assert message and "\n" not in message
    return message


def with_webp_canvas(data: bytes, width: int, height: int) -> bytes:
    """A VP8X WebP whose header claims a ``width`` x ``height`` canvas."""
    assert data[12:16] == b"VP8X"
    dims = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return data[:24] + dims + data[30:]


def test_an_animated_webp_is_refused_before_it_is_decoded():
    first, *rest = frames(6)
    data = encoded(first, "WEBP", save_all=True, append_images=rest, duration=40)
    assert "animated" in refusal(data)
    # the 572 KB attack file: a 6000 x 6000 canvas; nothing near its size is allocated
    big = with_webp_canvas(data, 6000, 6000)
    tracemalloc.start()
    assert "animated" in refusal(big)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 8 * 2**20, peak


def test_a_still_webp_claiming_a_canvas_over_the_pixel_cap_is_refused_from_its_header():
    data = encoded(Image.new("RGBA", (32, 32), (255, 0, 0, 128)), "WEBP", quality=60)
    assert "over the 40,000,000 cap" in refusal(with_webp_canvas(data, 9000, 9000))


def test_an_animated_png_is_refused():
    first, *rest = frames(3)
    data = encoded(first, "PNG", save_all=True, append_images=rest, duration=40)
    assert "animated (3 frames)" in refusal(data)


def test_pixels_over_the_decoded_size_cap_are_refused_before_decoding():
    # 6000 x 6000 RGBA is under the pixel cap but takes 137 MiB decoded
    ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", 6000, 6000, 8, 6, 0, 0, 0))
    data = (
        b"\x89PNG\r\n\x1a\n"
        + ihdr
        + png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + png_chunk(b"IEND", b"")
    )
    message = refusal(data)
    assert f"over the {MAX_DECODED_BYTES // 2**20} MiB cap" in message, message


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_a_taken_image_comes_with_its_thumbnail(fmt):
    data = encoded(Image.new("RGB", (1200, 600), "teal"), fmt)
    image = gate_image(data)
    assert (image.width, image.height) == (1200, 600)
    with Image.open(io.BytesIO(image.thumbnail)) as small:
        assert small.format == "PNG" and small.size == (THUMB_PX, THUMB_PX // 2)
