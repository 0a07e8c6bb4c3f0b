"""Hypothesis strategies for the untrusted inputs stylewatch parses.

Valid safetensors files come from ``build_safetensors`` over drawn tensors and metadata;
hostile ones are those files mutated (bit flips, truncation, length field edits, spliced
bytes) or headers whose JSON is drawn freely. Artist lists, names and small images of each
allowed format serve the monitor's parsers of outside input.
"""

from __future__ import annotations

import io
import json
import math
from typing import Any

from hypothesis import strategies as st
from PIL import Image

from detectors.safetensors_header import DTYPE_BITS
from tests.modelfiles import TensorSpec, build_safetensors

dtypes = st.sampled_from(sorted(DTYPE_BITS))
shapes = st.lists(st.integers(min_value=0, max_value=6), max_size=4).map(tuple)
tensor_names = st.text(min_size=1, max_size=24).filter(lambda name: name != "__metadata__")


def _whole_bytes(spec: TensorSpec) -> bool:
    dtype, shape = spec
    return math.prod(shape) * DTYPE_BITS[dtype] % 8 == 0


tensor_specs = st.tuples(dtypes, shapes).filter(_whole_bytes)
tensor_tables = st.dictionaries(tensor_names, tensor_specs, max_size=8)
metadata_tables = st.dictionaries(st.text(max_size=16), st.text(max_size=40), max_size=6)


@st.composite
def safetensors_files(draw: st.DrawFn) -> tuple[dict[str, TensorSpec], dict[str, str], bytes]:
    """(tensors, metadata, file bytes) for a valid file."""
    tensors = draw(tensor_tables)
    metadata = draw(metadata_tables)
    return tensors, metadata, build_safetensors(tensors, metadata)


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@st.composite
def drawn_json_headers(draw: st.DrawFn) -> bytes:
    """Files whose header JSON is freely drawn: plausible keys, arbitrary values."""
    entries: dict[str, Any] = draw(
        st.dictionaries(st.sampled_from(["a", "b", "__metadata__"]), json_values, max_size=3)
    )
    if draw(st.booleans()):
        entries["t"] = {
            "dtype": draw(dtypes | st.text(max_size=6)),
            "shape": draw(json_values | st.lists(st.integers(-2, 8), max_size=3)),
            "data_offsets": draw(json_values | st.lists(st.integers(-2, 64), max_size=3)),
        }
    return materialise_loose(entries)


def materialise_loose(entries: dict[str, Any]) -> bytes:
    """Like ``materialise`` but for headers whose offsets may be nonsense: no data section."""
    header = json.dumps(entries, separators=(",", ":")).encode()
    return len(header).to_bytes(8, "little") + header


@st.composite
def mutated_files(draw: st.DrawFn) -> bytes:
    """A valid file with one hostile edit."""
    _, _, data = draw(safetensors_files())
    edit = draw(st.sampled_from(["flip", "truncate", "length", "splice"]))
    if edit == "flip":
        index = draw(st.integers(0, len(data) - 1))
        bit = draw(st.integers(0, 7))
        return data[:index] + bytes([data[index] ^ (1 << bit)]) + data[index + 1 :]
    if edit == "truncate":
        return data[: draw(st.integers(0, len(data) - 1))]
    if edit == "length":
        length = draw(st.integers(0, 2**64 - 1) | st.integers(0, len(data) + 16))
        return length.to_bytes(8, "little") + data[8:]
    index = draw(st.integers(8, len(data)))
    return data[:index] + draw(st.binary(min_size=1, max_size=16)) + data[index:]


# -- outside input beyond safetensors: artist lists, config files, images ----------------------

# Text a person would type in a name: no control characters (refused) or lone surrogates.
typed_text = st.text(
    st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=24
).filter(lambda text: text.strip() != "")
aliases_lists = st.lists(typed_text.filter(lambda a: not {";", "|"} & set(a)), max_size=3)
emails = st.none() | st.from_regex(r"[a-z]{1,8}@[a-z]{1,8}\.example", fullmatch=True)
artist_rows = st.lists(st.tuples(typed_text, aliases_lists, emails), min_size=1, max_size=5)

# The modes each format writes as they are (others Pillow converts or refuses).
IMAGE_MODES = {
    "PNG": ("RGB", "RGBA", "L", "LA", "P", "1", "I;16"),
    "JPEG": ("RGB", "L", "CMYK"),
    "WEBP": ("RGB", "RGBA"),
}
IMAGE_MAGICS = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"RIFF\x00\x00\x00\x00WEBPVP8X", b"GIF89a")


@st.composite
def encoded_images(draw: st.DrawFn) -> tuple[bytes, str, int, int]:
    """(file bytes, format, width, height) of a small image as Pillow writes it."""
    fmt = draw(st.sampled_from(sorted(IMAGE_MODES)))
    mode = draw(st.sampled_from(IMAGE_MODES[fmt]))
    width, height = draw(st.integers(1, 48)), draw(st.integers(1, 48))
    image = Image.effect_noise((width, height), draw(st.integers(1, 64))).convert(mode)
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue(), fmt, width, height
