"""Copying a folder of blobs into another blob store (``stylewatch blobs migrate``).

Resumable: a blob the target already holds is skipped, so a run that was stopped starts
again where it was. Each copied blob is hashed on the way (its key is its sha256, so a file
whose bytes no longer match its name is reported, not copied under that name) and its size
at the target checked; ``verify`` also reads back every blob at the target and checks its
hash, copied now or before.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from detectors.errors import StorageError
from storage.blobs import BlobCorrupt, BlobStore
from storage.file_blobs import FileBlobStore

PROGRESS_EVERY_S = 1.0


@dataclass(slots=True)
class MigrationProgress:
    """Counts so far; ``total`` is the number of blobs in the source."""

    total: int
    done: int = 0
    copied: int = 0
    skipped: int = 0
    bytes_copied: int = 0
    corrupt: list[str] = field(default_factory=list)


def migrate_blobs(
    source: FileBlobStore,
    target: BlobStore,
    *,
    verify: bool = False,
    progress: Callable[[MigrationProgress], None] | None = None,
) -> MigrationProgress:
    """Copy every blob of ``source`` missing from ``target``; return the counts.

    Raises ``StorageError`` when the target fails (after its retries): what was copied
    stays copied, and running again goes on from there.
    """
    keys = sorted(source.keys())
    counts = MigrationProgress(total=len(keys))
    last = time.monotonic()
    for key in keys:
        _copy_one(source, target, key, counts, verify=verify)
        counts.done += 1
        if progress is not None and time.monotonic() - last >= PROGRESS_EVERY_S:
            progress(counts)
            last = time.monotonic()
    if progress is not None:
        progress(counts)
    return counts


def _copy_one(
    source: FileBlobStore, target: BlobStore, key: str, counts: MigrationProgress, *, verify: bool
) -> None:
    path = source.path(key)
    if target.exists(key):
        counts.skipped += 1
    else:
        stored = target.put_file(path)
        if stored != key:  # stored under its true hash (a valid, unnamed blob); this one is bad
            counts.corrupt.append(key)
            return
        with target.open(key, length=0) as reader:
            size = reader.size
        if size != path.stat().st_size:
            raise StorageError(
                f"blob {key} has {size} bytes at the target, {path.stat().st_size} here: "
                "run the migration again"
            )
        counts.copied += 1
        counts.bytes_copied += size
    if verify:
        try:
            ok = hashlib.sha256(target.read(key)).hexdigest() == key
        except BlobCorrupt:
            ok = False
        if not ok:
            counts.corrupt.append(key)
