"""Content-addressed blob store: reference images, evidence images, cached probe outputs.

A blob's key is the sha256 of its bytes, and it lives at ``root/ab/cd/abcd…``. Writes go
to a temporary file in the target folder, are fsynced, then renamed into place, so a blob
is either absent or complete; writing the same bytes twice is a no-op.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import IO, BinaryIO

from detectors.errors import StorageError

MAX_BLOB_BYTES = 256 * 1024 * 1024
CHUNK_BYTES = 1024 * 1024
_KEY = re.compile(r"[0-9a-f]{64}")
_TMP_PREFIX = ".tmp-"


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


class BlobStore:
    """Blobs under ``root``, keyed by their sha256 (lowercase hex), at most ``max_bytes`` each."""

    def __init__(self, root: Path, *, max_bytes: int = MAX_BLOB_BYTES) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def path(self, sha256: str) -> Path:
        """Where the blob with this key lives (whether or not it exists).

        Raises ``StorageError`` for anything but 64 hex digits, so a key can never name a
        path outside the store.
        """
        key = sha256.lower()
        if not _KEY.fullmatch(key):
            raise StorageError(f"invalid blob key {sha256[:80]!r}: expected 64 hex digits (sha256)")
        return self.root / key[:2] / key[2:4] / key

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def put(self, data: bytes) -> str:
        """Store ``data``; return its key. Idempotent."""
        if len(data) > self.max_bytes:
            raise BlobTooLarge(self.max_bytes)
        key = hashlib.sha256(data).hexdigest()
        if not self.exists(key):
            self._write(key, [data])
        return key

    def put_file(self, source: Path) -> str:
        """Store a file's bytes, streamed in chunks (never whole in memory); return its key."""
        target_dir = self._staging_dir()
        digest = hashlib.sha256()
        tmp = self._tmp_file(target_dir)
        try:
            with open(source, "rb") as reader, tmp:
                size = 0
                while chunk := reader.read(CHUNK_BYTES):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise BlobTooLarge(self.max_bytes)
                    digest.update(chunk)
                    tmp.write(chunk)
                _sync(tmp)
            key = digest.hexdigest()
            self._commit(Path(tmp.name), key)
        except OSError as exc:
            raise StorageError(f"cannot store {source} in the blob store: {exc.strerror}") from exc
        finally:
            _remove(Path(tmp.name))
        return key

    def open(self, sha256: str) -> BinaryIO:
        """The blob as an open binary file; the caller closes it."""
        try:
            return open(self.path(sha256), "rb")
        except FileNotFoundError as exc:
            raise BlobNotFound(sha256) from exc
        except OSError as exc:
            raise StorageError(f"cannot read blob {sha256}: {exc.strerror}") from exc

    def read(self, sha256: str) -> bytes:
        with self.open(sha256) as reader:
            return reader.read()

    def _write(self, key: str, chunks: list[bytes]) -> None:
        tmp = self._tmp_file(self._staging_dir())
        try:
            with tmp:
                for chunk in chunks:
                    tmp.write(chunk)
                _sync(tmp)
            self._commit(Path(tmp.name), key)
        except OSError as exc:
            raise StorageError(f"cannot write blob {key}: {exc.strerror}") from exc
        finally:
            _remove(Path(tmp.name))

    def _staging_dir(self) -> Path:
        # Temporary files sit in the root, on the same file system as every blob folder,
        # so the final rename is atomic.
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the blob store {self.root}: {exc.strerror}") from exc
        return self.root

    def _tmp_file(self, folder: Path) -> IO[bytes]:
        return tempfile.NamedTemporaryFile(dir=folder, prefix=_TMP_PREFIX, delete=False)

    def _commit(self, tmp: Path, key: str) -> None:
        final = self.path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, final)
        _sync_dir(final.parent)


def _sync(file: IO[bytes]) -> None:
    file.flush()
    os.fsync(file.fileno())


def _sync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
