"""Reading model files from the local disk: the header bytes, the size and the SHA-256.

Only the header is parsed; tensor data is read once, to hash it, and never loaded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from detectors.errors import InputError
from detectors.results import SafetensorsHeader
from monitor.sources.headers import read_header_with

MODEL_SUFFIXES = frozenset({".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".sft"})
HASH_CHUNK_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class LocalFile:
    """A model file on disk, its header parsed."""

    path: Path
    size: int
    sha256: str
    header: SafetensorsHeader


def _read_range(path: Path, offset: int, length: int) -> bytes:
    with path.open("rb") as fh:
        fh.seek(offset)
        return fh.read(length)


def sha256_file(path: Path) -> str:
    """The SHA-256 of a whole file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def read_local_file(path: Path) -> LocalFile:
    """Read and validate a local model file's header; hash the file.

    Raises InputError (or a subclass: HeaderError, RefusedFile) with a one-line message.
    """
    try:
        size = path.stat().st_size
        header = read_header_with(partial(_read_range, path), path.name, size)
        return LocalFile(path=path, size=size, sha256=sha256_file(path), header=header)
    except IsADirectoryError as exc:
        raise InputError(f"{path} is a folder") from exc
    except FileNotFoundError as exc:
        raise InputError(f"{path} does not exist") from exc
    except PermissionError as exc:
        raise InputError(f"{path} cannot be read: permission denied") from exc
    except OSError as exc:
        raise InputError(f"{path} cannot be read: {exc.strerror or exc}") from exc


def model_files_in(folder: Path) -> Iterator[Path]:
    """Every model file under ``folder`` (recursively), in a stable order."""
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix.lower() in MODEL_SUFFIXES:
            yield path
