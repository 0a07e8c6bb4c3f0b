"""Real safetensors bytes for tests: the shared header fixtures made whole, or files built here.

``materialise`` follows hubs/README.md section 5 byte for byte, so sizes and hashes match
the hub fixtures. ``build_safetensors`` writes a valid file (zero data) from names, dtypes
and shapes, the way the reference writer lays it out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from detectors.safetensors_header import DTYPE_BITS

FIXTURE_NAMES = ("kohya_sd15_style_lora", "kohya_sdxl_lora", "aitoolkit_flux_lora")
TensorSpec = tuple[str, tuple[int, ...]]  # (dtype, shape)


def shared_dir() -> Path:
    """The in-repository copy of the team's shared fixtures (``tests/data``: ``hubs/`` inside)."""
    return Path(__file__).resolve().parent / "data"


def fixture_header(name: str) -> dict[str, Any]:
    """The header JSON of ``hubs/safetensors/<name>.json``."""
    path = shared_dir() / "hubs" / "safetensors" / f"{name}.json"
    header: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return header


def fixture_bytes(name: str) -> bytes:
    """The whole file a header fixture describes (zero tensor data)."""
    return materialise(fixture_header(name))


def materialise(header_json: Mapping[str, Any]) -> bytes:
    """A real file from a header: compact JSON padded to 8 bytes, then zeros up to the last end."""
    header = json.dumps(header_json, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)
    ends = [
        entry["data_offsets"][1]
        for key, entry in header_json.items()
        if key != "__metadata__" and isinstance(entry, Mapping)
    ]
    return len(header).to_bytes(8, "little") + header + b"\0" * max(ends, default=0)


def build_safetensors(
    tensors: Mapping[str, TensorSpec], metadata: Mapping[str, str] | None = None
) -> bytes:
    """A valid safetensors file with these tensors (zero data), laid out from offset 0."""
    header: dict[str, Any] = {"__metadata__": dict(metadata)} if metadata else {}
    offset = 0
    for name in sorted(tensors):
        dtype, shape = tensors[name]
        nbytes = tensor_bytes(dtype, shape)
        header[name] = {
            "dtype": dtype,
            "shape": list(shape),
            "data_offsets": [offset, offset + nbytes],
        }
        offset += nbytes
    return materialise(header)


def tensor_bytes(dtype: str, shape: tuple[int, ...]) -> int:
    """Bytes a tensor of ``dtype`` and ``shape`` takes; ValueError when bits do not fill bytes."""
    bits = math.prod(shape) * DTYPE_BITS[dtype]
    if bits % 8:
        raise ValueError(f"{dtype}{list(shape)} does not fill whole bytes")
    return bits // 8
