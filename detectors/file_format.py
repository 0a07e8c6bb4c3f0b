"""Tell safetensors from pickle by the first bytes of a file, without loading either.

Unpickling runs code chosen by the file's author, so stylewatch never does it: pickle-based
files (.ckpt, .pt, .pth, .bin; raw pickles and torch's zip checkpoints, whose ``data.pkl`` is
a pickle) are recognised here and refused with a message asking for a .safetensors version.
Recognition reads bytes only: the pickle opcodes a stream starts with, and zip entry names.
"""

from __future__ import annotations

import re

from detectors.errors import RefusedFile
from detectors.results import FileFormat
from detectors.safetensors_header import LENGTH_PREFIX_BYTES, MAX_HEADER_BYTES

PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pickle")

_PROTO = 0x80  # pickle opcode PROTO, first in every protocol 2+ stream
_HIGHEST_PICKLE_PROTOCOL = 5
# Protocol 0/1 streams begin with MARK, an empty container or GLOBAL, then a known opcode.
_OLD_PICKLE = re.compile(
    rb"\((?:dp|lp|t|I|L|F|S'|V|N|\(|\)|}|\]|c|K|J|M|X|U|T|G|q)"
    rb"|[}\]\)](?:q|r|\(|\.|h)"
    rb"|c[A-Za-z_][\w.]*\n[A-Za-z_]\w*\n"
)
_ZIP_LOCAL = b"PK\x03\x04"
_ZIP_CENTRAL = b"PK\x01\x02"


def sniff_format(prefix: bytes, filename: str | None = None) -> FileFormat:
    """Say what the file starting with ``prefix`` is; bytes win over the file name.

    A prefix that names no format is a pickle when ``filename`` has a pickle suffix, since
    refusing a file is safe and loading one is not.
    """
    # Safetensors first: a header of 640 bytes starts b"\x80\x02", like a protocol 2 pickle,
    # and refusing a real safetensors file would let its uploader dodge screening.
    if _is_safetensors(prefix):
        return "safetensors"
    if prefix.startswith(_ZIP_LOCAL):
        return "pickle" if _zip_holds_pickle(prefix) else "unknown"
    if _is_new_pickle(prefix):
        return "pickle"
    if _OLD_PICKLE.match(prefix):
        return "pickle"
    if filename is not None and filename.lower().endswith(PICKLE_SUFFIXES):
        return "pickle"
    return "unknown"


def refuse_if_pickle(prefix: bytes, filename: str | None = None) -> FileFormat:
    """Return the format, or raise :class:`RefusedFile` (``format="pickle"``) for a pickle."""
    file_format = sniff_format(prefix, filename)
    if file_format == "pickle":
        name = repr(filename) if filename else "the file"
        raise RefusedFile(
            f"{name} is a pickle file (.ckpt/.pt/.bin); stylewatch never loads pickles:"
            " ask for a .safetensors version",
            format="pickle",
        )
    return file_format


def _is_new_pickle(prefix: bytes) -> bool:
    return len(prefix) >= 2 and prefix[0] == _PROTO and 2 <= prefix[1] <= _HIGHEST_PICKLE_PROTOCOL


def _is_safetensors(prefix: bytes) -> bool:
    if len(prefix) <= LENGTH_PREFIX_BYTES:
        return False
    header_len = int.from_bytes(prefix[:LENGTH_PREFIX_BYTES], "little")
    return 2 <= header_len <= MAX_HEADER_BYTES and prefix[LENGTH_PREFIX_BYTES] == ord("{")


def _zip_holds_pickle(prefix: bytes) -> bool:
    """Whether a zip entry named in ``prefix`` is a pickle (torch.save's ``*/data.pkl``)."""
    return any(name.endswith(b".pkl") for name in _zip_names(prefix))


def _zip_names(prefix: bytes) -> list[bytes]:
    """Entry names from every local and central directory header found in ``prefix``."""
    names: list[bytes] = []
    for signature, length_at, name_at in ((_ZIP_LOCAL, 26, 30), (_ZIP_CENTRAL, 28, 46)):
        start = prefix.find(signature)
        while start != -1 and start + name_at <= len(prefix):
            name_len = int.from_bytes(prefix[start + length_at : start + length_at + 2], "little")
            names.append(prefix[start + name_at : start + name_at + name_len])
            start = prefix.find(signature, start + 4)
    return names
