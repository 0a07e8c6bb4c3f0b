"""The blob store port: content-addressed bytes (reference images, evidence, probe outputs).

A blob's key is the sha256 of its bytes (64 lowercase hex digits). A blob is either absent
or complete, and writing the same bytes twice is a no-op, so callers write the blob first
and the row naming it after (write-before-row): a crash between the two leaves an unnamed
blob, never a row naming nothing.

Adapters: ``storage.file_blobs.FileBlobStore`` (a folder, the default) and
``storage.s3_blobs.S3BlobStore`` (a bucket on any S3-compatible server). Both keep a blob
at ``ab/cd/abcd…`` under their root or prefix, so a copy of one is a valid copy of the other.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Protocol

from detectors.errors import StorageError

MAX_BLOB_BYTES = 256 * 1024 * 1024
CHUNK_BYTES = 1024 * 1024
_KEY = re.compile(r"[0-9a-f]{64}")


class BlobNotFound(StorageError):
    """No blob has this key."""

    def __init__(self, sha256: str) -> None:
        super().__init__(f"no blob {sha256} in the blob store")
        self.sha256 = sha256


class BlobTooLarge(StorageError):
    """A blob exceeds the store's size cap."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(f"blob larger than the {max_bytes}-byte cap of the blob store")
        self.max_bytes = max_bytes


class BlobStoreUnavailable(StorageError):
    """The store did not answer (down, unreachable, 5xx after retries): try again later.
    Other ``StorageError``s need a fix (a missing bucket, refused credentials)."""


class BlobCorrupt(StorageError):
    """A blob's bytes do not match its key (restore it from a backup, or delete it)."""

    def __init__(self, sha256: str, where: str) -> None:
        super().__init__(
            f"blob {sha256} in {where} does not match its hash: restore it from a backup "
            "or delete it"
        )
        self.sha256 = sha256


class BlobReader(Protocol):
    """An open blob (or a range of it), read in chunks; the caller closes it."""

    @property
    def size(self) -> int:
        """The whole blob's size in bytes (not the range's)."""
        ...

    def read(self, n: int = -1, /) -> bytes: ...

    def close(self) -> None: ...

    def __enter__(self) -> BlobReader: ...

    def __exit__(self, *exc: object) -> None: ...


class BlobStore(Protocol):
    """Blobs keyed by their sha256; every method raises ``StorageError`` (never a client's
    own exception), ``BlobNotFound`` for a missing key, and refuses a key that is not 64 hex
    digits (upper case names the same blob)."""

    def put(self, data: bytes) -> str:
        """Store ``data`` (at most the store's cap, else ``BlobTooLarge``); return its key.
        Returns once the blob is durable. Idempotent."""
        ...

    def put_file(self, source: Path) -> str:
        """Store a file's bytes, streamed (never whole in memory); return its key."""
        ...

    def exists(self, sha256: str) -> bool: ...

    def open(self, sha256: str, *, start: int = 0, length: int | None = None) -> BlobReader:
        """The blob's bytes from ``start`` (``length`` of them, or to the end), streamed.
        ``start`` past the end reads nothing."""
        ...

    def read(self, sha256: str) -> bytes:
        """The whole blob."""
        ...

    def check(self) -> None:
        """Raise ``StorageError`` (one line saying what to fix) unless blobs can be stored
        and read: the folder is writable, the bucket exists and the credentials work."""
        ...


def blob_key(sha256: str) -> str:
    """The canonical (lowercase) key; ``StorageError`` for anything but 64 hex digits, so a
    key can never name a path or object outside the store."""
    key = sha256.lower()
    if not _KEY.fullmatch(key):
        raise StorageError(f"invalid blob key {sha256[:80]!r}: expected 64 hex digits (sha256)")
    return key


def check_range(start: int, length: int | None) -> None:
    """``StorageError`` for a negative ``start`` or ``length``."""
    if start < 0 or (length is not None and length < 0):
        raise StorageError(f"invalid blob range: start {start}, length {length}")


def blob_path(key: str) -> str:
    """Where a blob lives under a store's root or prefix: ``ab/cd/abcd…``."""
    key = blob_key(key)
    return f"{key[:2]}/{key[2:4]}/{key}"
