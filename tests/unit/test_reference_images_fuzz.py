"""Reference images are outside input: a JPEG, PNG or WebP that decodes whole is taken with
its true size; anything else (other formats, truncated or corrupt files, decompression
bombs, any bytes at all) is refused with one ValueError line, without a warning and before
the pixels of a bomb are decoded."""

from __future__ import annotations

import io
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from bench.fuzz_seeds import image_seeds, png_claiming
from monitor.artists.references import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS, check_image
from tests.strategies import IMAGE_MAGICS, encoded_images

MIMES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


def _outcome(data: bytes) -> tuple[str, int, int] | str:
    """check_image's answer, or its refusal's message."""
    try:
        return check_image(data)
    except ValueError as exc:
        return str(exc)


def _refusal(data: bytes) -> str:
    message = _outcome(data)
    assert isinstance(message, str), f"taken: {message}"
    assert message and "\n" not in message
    return message


@settings(max_examples=60, deadline=None)
@given(image=encoded_images())
def test_small_images_of_each_format_are_taken_with_their_size(image):
    data, fmt, width, height = image
    assert check_image(data) == (MIMES[fmt], width, height)


@settings(max_examples=60, deadline=None)
@given(image=encoded_images(), keep=st.floats(0.0, 0.6))
def test_a_truncated_image_is_refused_in_one_line(image, keep):
    data, _, _, _ = image
    message = _refusal(data[: int(len(data) * keep)])
    assert "truncated or corrupt" in message or "(JPEG, PNG or WebP)" in message


@settings(max_examples=150, deadline=None)
@given(magic=st.sampled_from((b"", *IMAGE_MAGICS)), tail=st.binary(max_size=200))
def test_any_bytes_give_a_size_or_one_line_refusal(magic, tail):
    outcome = _outcome(magic + tail)
    if isinstance(outcome, str):
        assert "\n" not in outcome
    else:
        mime, width, height = outcome
        assert mime in MIMES.values()
        assert width * height <= MAX_IMAGE_PIXELS


@settings(max_examples=60, deadline=None)
@given(image=encoded_images(), at=st.integers(0, 10_000), value=st.integers(0, 255))
def test_a_corrupted_byte_gives_a_size_or_one_line_refusal(image, at, value):
    data, _, _, _ = image
    at %= len(data)
    outcome = _outcome(data[:at] + bytes([value]) + data[at + 1 :])
    assert not isinstance(outcome, str) or "\n" not in outcome


@pytest.mark.parametrize(
    ("side", "why"),
    [
        (7_000, "over our cap, under Pillow's"),
        (10_000, "Pillow only warns here"),
        (100_000, "Pillow raises here"),
    ],
)
def test_png_bombs_are_refused_by_the_pixel_cap(side, why):
    assert side * side > MAX_IMAGE_PIXELS, why
    assert f"{side}x{side} pixels is over the {MAX_IMAGE_PIXELS:,} cap" in _refusal(
        png_claiming(side, side)
    )


@pytest.mark.parametrize("side", [6_500, 13_000, 16_000])
def test_webp_canvas_bombs_are_refused_before_decoding(side):
    frame = Image.new("RGBA", (16, 16), (10, 20, 30, 128))
    out = io.BytesIO()
    frame.save(out, "WEBP", save_all=True, append_images=[frame], duration=50)
    data = out.getvalue()
    at = data.index(b"VP8X") + 12
    canvas = (side - 1).to_bytes(3, "little") * 2
    message = _refusal(data[:at] + canvas + data[at + 6 :])
    assert "cap" in message or "corrupt" in message


def test_the_seed_bombs_and_broken_files_are_refused_in_one_line():
    refusals = [o for o in map(_outcome, image_seeds()) if isinstance(o, str)]
    assert all("\n" not in message for message in refusals)
    assert len(refusals) >= 10  # GIF, BMP, TIFF, 9 truncated files, 3 bombs, broken chunks


def test_other_formats_and_oversized_files_are_refused_by_name():
    gif = png_claiming(1, 1).replace(b"\x89PNG\r\n\x1a\n", b"GIF89a", 1)
    assert _refusal(gif) == "not a readable image (JPEG, PNG or WebP)"
    assert _refusal(bytes(MAX_IMAGE_BYTES + 1)) == "larger than 25 MiB"
    jpeg = b"\xff\xd8\xff\xc0" + struct.pack(">HBHH", 11, 8, 1, 1)
    assert "not a readable JPEG image" in _refusal(jpeg)
