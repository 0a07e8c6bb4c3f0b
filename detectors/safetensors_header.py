"""Parse and validate a safetensors header from untrusted bytes.

Layout (huggingface/safetensors ``safetensors/src/tensor.rs``): 8 bytes of little-endian
header length ``N``, then ``N`` bytes of UTF-8 JSON starting with ``{`` (space padded), then
the tensor data. The header alone tells everything stylewatch reads before a probe, so
:func:`parse_header` works from the first ``8 + N`` bytes and asks for more with
:class:`NeedMoreBytes`. Every other fault is a :class:`HeaderError` with a one-line message;
nothing else escapes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import cast

from detectors.bounded_json import check_text, loads_bounded, quote
from detectors.errors import HeaderError, NeedMoreBytes
from detectors.results import JSONValue, SafetensorsHeader, TensorInfo

LENGTH_PREFIX_BYTES = 8
MAX_HEADER_BYTES = 100_000_000  # the reference library's MAX_HEADER_SIZE
MAX_TENSORS = 100_000  # a full Flux checkpoint has about 1,000
MAX_METADATA_KEYS = 10_000  # kohya writes about 90
MAX_TENSOR_DIMS = 8  # conv weights have 4, video models 5
MAX_DATA_BYTES = 2**64 - 1  # offsets are u64 in the reference library
METADATA_KEY = "__metadata__"
_JSON_KINDS: Mapping[type, str] = {
    dict: "an object",
    list: "a list",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}

# Element width in bits, as the reference library lists dtypes.
DTYPE_BITS: Mapping[str, int] = {
    "BOOL": 8,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "F8_E4M3FNUZ": 8,
    "F8_E5M2FNUZ": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "F64": 64,
    "I64": 64,
    "U64": 64,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
}


def header_bytes_needed(prefix: bytes) -> int:
    """How many bytes from the start of the file the header needs (8 until the length is known).

    Raises :class:`HeaderError` when the length field breaks a cap.
    """
    if len(prefix) < LENGTH_PREFIX_BYTES:
        return LENGTH_PREFIX_BYTES
    header_len = int.from_bytes(prefix[:LENGTH_PREFIX_BYTES], "little")
    if header_len > MAX_HEADER_BYTES:
        cap_mb = MAX_HEADER_BYTES // 1_000_000
        raise HeaderError(f"header length {header_len} exceeds the {cap_mb} MB cap")
    if header_len < 2:
        raise HeaderError(f"header length {header_len} is too short for a JSON object")
    return LENGTH_PREFIX_BYTES + header_len


def parse_header(data: bytes, file_size: int | None = None) -> SafetensorsHeader:
    """Parse the safetensors header at the start of ``data`` (the whole file or a prefix).

    Raises :class:`NeedMoreBytes` (with ``needed``) when ``data`` stops inside the header, and
    :class:`HeaderError` for every fault or broken cap. With ``file_size``, the tensor data
    must end exactly at the end of the file, as the reference loader requires.
    """
    needed = header_bytes_needed(data)
    if file_size is not None and needed > file_size:
        raise HeaderError(f"header needs {needed} bytes but the file has {file_size}")
    if len(data) < needed:
        raise NeedMoreBytes(needed)
    entries = _header_object(data[LENGTH_PREFIX_BYTES:needed])
    metadata, malformed = _metadata(entries.pop(METADATA_KEY, None))
    tensors = tuple(_tensor(name, entry) for name, entry in entries.items())
    header = SafetensorsHeader(
        header_len=needed - LENGTH_PREFIX_BYTES,
        tensors=tensors,
        metadata=metadata,
        data_len=_data_len(tensors),
        malformed=malformed,
    )
    if file_size is not None and header.file_size != file_size:
        raise HeaderError(f"tensor data ends at byte {header.file_size}, file has {file_size}")
    return header


def _header_object(raw: bytes) -> dict[str, JSONValue]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HeaderError(f"header is not UTF-8 (byte {exc.start} of the JSON)") from exc
    if not text.startswith("{"):
        raise HeaderError(f"header JSON starts with {quote(text[:1])}, not '{{'")
    value = loads_bounded(text, "header")
    if not isinstance(value, dict):
        raise HeaderError("header JSON is not an object")
    if len(value) > MAX_TENSORS + 1:
        raise HeaderError(f"header lists {len(value)} entries, over the {MAX_TENSORS} cap")
    return value


def _metadata(value: JSONValue) -> tuple[dict[str, str], str | None]:
    """``__metadata__`` as strings, and why it is malformed (None when it is not).

    Every trainer writes string values, and the reference loader refuses anything else; such a
    value is kept as its JSON text (so its words are still screened) and the metadata is
    *malformed*: screening says so instead of calling the file clean.
    """
    if value is None:
        return {}, None
    if not isinstance(value, dict):
        raise HeaderError(f"{METADATA_KEY} is not a JSON object")
    if len(value) > MAX_METADATA_KEYS:
        raise HeaderError(f"{METADATA_KEY} has {len(value)} keys, over the {MAX_METADATA_KEYS} cap")
    metadata = {
        key: item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)
        for key, item in value.items()
    }
    # Item by item: joining them first would copy the whole header's text once more.
    if not all(_encodes(key) and _encodes(text) for key, text in metadata.items()):
        for key, text in metadata.items():
            check_text(key, "a metadata key")
            check_text(text, f"metadata {quote(key)}")
    odd = next((key for key, item in value.items() if not isinstance(item, str)), None)
    if odd is None:
        return metadata, None
    kind = _JSON_KINDS.get(type(value[odd]), "a JSON value")
    return metadata, f"{METADATA_KEY} {quote(odd)} is {kind}, not a string"


def _encodes(text: str) -> bool:
    """Whether ``text`` is valid UTF-8 material (no lone surrogate from a JSON escape)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _tensor(name: str, entry: JSONValue) -> TensorInfo:
    check_text(name, "a tensor name")
    if not isinstance(entry, dict):
        raise HeaderError(f"tensor {quote(name)} is not a JSON object")
    dtype = entry.get("dtype")
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        raise HeaderError(f"tensor {quote(name)} has unknown dtype {quote(str(dtype))}")
    shape = _ints(entry.get("shape"), name, "shape")
    if len(shape) > MAX_TENSOR_DIMS:
        dims = f"{len(shape)} dims, over the {MAX_TENSOR_DIMS} cap"
        raise HeaderError(f"tensor {quote(name)} has {dims}")
    offsets = _ints(entry.get("data_offsets"), name, "data_offsets")
    if len(offsets) != 2 or offsets[0] > offsets[1]:
        must = "must be [start, end] with start <= end"
        raise HeaderError(f"tensor {quote(name)} data_offsets {must}")
    _check_size(name, dtype, shape, offsets[1] - offsets[0])
    return TensorInfo(name=name, dtype=dtype, shape=shape, start=offsets[0], end=offsets[1])


def _ints(value: JSONValue, name: str, field: str) -> tuple[int, ...]:
    """``value`` as a tuple of integers in [0, 2**64), or a :class:`HeaderError`."""
    if not isinstance(value, list):
        raise HeaderError(f"tensor {quote(name)} {field} is not a JSON list")
    # A JSON list, its items unchecked yet: the condition below refuses any that is not an
    # int (type, not isinstance: bool is an int subclass and JSON true is not a dimension).
    ints = cast("list[int]", value)
    if ints and (set(map(type, ints)) != {int} or min(ints) < 0 or max(ints) > MAX_DATA_BYTES):
        raise HeaderError(f"tensor {quote(name)} {field} must hold integers in [0, 2**64)")
    return tuple(ints)


def _check_size(name: str, dtype: str, shape: tuple[int, ...], nbytes: int) -> None:
    bits = math.prod(shape) * DTYPE_BITS[dtype]
    if bits % 8:
        raise HeaderError(f"tensor {quote(name)} of {dtype} does not fill whole bytes")
    if bits // 8 != nbytes:
        need = f"its shape and dtype need {bits // 8}"
        raise HeaderError(f"tensor {quote(name)} spans {nbytes} bytes, {need}")


def _span(tensor: TensorInfo) -> tuple[int, int]:
    return tensor.start, tensor.end


def _data_len(tensors: Iterable[TensorInfo]) -> int:
    """Check the tensors tile the data section from 0 without gaps or overlaps; its length."""
    end = 0
    for tensor in sorted(tensors, key=_span):
        if tensor.start < end:
            raise HeaderError(f"tensor {quote(tensor.name)} overlaps the one before it")
        if tensor.start > end:
            raise HeaderError(f"tensor {quote(tensor.name)} leaves a gap at data byte {end}")
        end = tensor.end
    return end
