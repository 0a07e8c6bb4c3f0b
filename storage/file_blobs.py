"""The blob store in a folder: ``root/ab/cd/abcd…``, one file per blob.

Writes go to a temporary file in the root, are fsynced, then renamed into place, so a blob
is either absent or complete. Any folder every process can write works, a local disk for
one host or NFS for several; a fleet without shared disks uses ``storage.s3_blobs``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, BinaryIO

from detectors.errors import StorageError
from storage.blobs import (
    CHUNK_BYTES,
    MAX_BLOB_BYTES,
    BlobNotFound,
    BlobTooLarge,
    blob_key,
    blob_path,
    check_range,
)
from storage.private_files import make_private_dir

_TMP_PREFIX = ".tmp-"


class FileBlobStore:
    """Blobs under ``root``, keyed by their sha256 (lowercase hex), at most ``max_bytes`` each."""

    def __init__(self, root: Path, *, max_bytes: int = MAX_BLOB_BYTES) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def __repr__(self) -> str:
        return f"FileBlobStore({str(self.root)!r})"

    def path(self, sha256: str) -> Path:
        """Where the blob with this key lives (whether or not it exists)."""
        return self.root / blob_path(sha256)

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def keys(self) -> Iterator[str]:
        """Every blob's key, in no particular order (temporary files are not blobs)."""
        for path in self.root.glob("[0-9a-f][0-9a-f]/[0-9a-f][0-9a-f]/*"):
            with contextlib.suppress(StorageError):
                if path == self.path(path.name) and path.is_file():
                    yield blob_key(path.name)

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

    def open(self, sha256: str, *, start: int = 0, length: int | None = None) -> _FileReader:
        """The blob as an open file from ``start`` (``length`` bytes or to the end)."""
        path = self.path(sha256)
        check_range(start, length)
        try:
            file = open(path, "rb")  # noqa: SIM115  # the reader returned closes it
        except FileNotFoundError as exc:
            raise BlobNotFound(sha256) from exc
        except OSError as exc:
            raise StorageError(f"cannot read blob {sha256}: {exc.strerror}") from exc
        try:
            size = os.fstat(file.fileno()).st_size
            file.seek(min(start, size))
        except OSError as exc:
            file.close()
            raise StorageError(f"cannot read blob {sha256}: {exc.strerror}") from exc
        left = max(size - start, 0) if length is None else max(min(length, size - start), 0)
        return _FileReader(file, size, left)

    def read(self, sha256: str) -> bytes:
        with self.open(sha256) as reader:
            return reader.read()

    def check(self) -> None:
        root = self._staging_dir()
        if not os.access(root, os.W_OK | os.X_OK):
            raise StorageError(
                f"the blob store {root} is not writable by this user: fix its permissions"
            )

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
            make_private_dir(self.root)
        except OSError as exc:
            raise StorageError(f"cannot create the blob store {self.root}: {exc.strerror}") from exc
        return self.root

    def _tmp_file(self, folder: Path) -> IO[bytes]:
        try:
            return tempfile.NamedTemporaryFile(dir=folder, prefix=_TMP_PREFIX, delete=False)
        except OSError as exc:
            raise StorageError(f"cannot write to the blob store {folder}: {exc.strerror}") from exc

    def _commit(self, tmp: Path, key: str) -> None:
        final = self.path(key)
        make_private_dir(final.parent)
        os.replace(tmp, final)
        _sync_dir(final.parent)


class _FileReader:
    """At most ``left`` bytes of an open blob file."""

    def __init__(self, file: BinaryIO, size: int, left: int) -> None:
        self._file = file
        self._left = left
        self.size = size

    def read(self, n: int = -1, /) -> bytes:
        want = self._left if n < 0 else min(n, self._left)
        try:
            data = self._file.read(want) if want else b""
        except OSError as exc:
            raise StorageError(f"cannot read blob {Path(self._file.name).name}: {exc}") from exc
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> _FileReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
