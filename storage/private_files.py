"""Files and folders only their owner can read: the database, its WAL, blobs, the data dir.

The database holds password hashes, session hashes, subscribers' addresses and unpublished
findings, and the blob store their evidence; under a usual umask (022) they were created
world-readable. Folders made here are 0700 and files 0600 whatever the umask; SQLite
creates its ``-wal`` and ``-shm`` files with the database file's own mode.
"""

from __future__ import annotations

import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def make_private_dir(path: Path) -> None:
    """Create ``path`` and any missing parents as 0700 folders; existing ones are left as
    they are (the operator chose them). Raises ``OSError``."""
    missing: list[Path] = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue  # another process made it first
        os.chmod(folder, DIR_MODE)  # mkdir's mode passes through the umask


def create_private_file(path: Path) -> None:
    """Create ``path`` empty as a 0600 file unless it exists; an existing one of ours that
    others could read is made 0600 too. Raises ``OSError``."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        st = path.stat()
        if st.st_uid == os.getuid() and st.st_mode & 0o077:
            os.chmod(path, FILE_MODE)
        return
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
