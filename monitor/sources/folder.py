"""A watched folder of model files (offline use, tests).

A file is taken once it has stopped growing: its size and modification time are the same
on two polls in a row (or it is older than ``min_age_s`` when first seen). It is then
hashed once and keyed by its sha256, so a copy or a rename is the same upload. The sizes
seen live in the cursor, so ``poll --once`` runs carry them from one run to the next.
A file deleted from the folder (and not merely renamed or moved in it) is taken down.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from detectors.errors import SourceRejected, SourceUnavailable
from detectors.results import JSONValue, TextField
from monitor.settings import FolderSettings
from monitor.sources.base import (
    CheckTarget,
    Cursor,
    Fetched,
    HubStatus,
    ListedUpload,
    Listing,
    RemoteFile,
    Upload,
)
from monitor.sources.local_files import model_files_in, sha256_file

MIN_AGE_S = 300.0


@dataclass(frozen=True, slots=True)
class _Seen:
    """A file as the last poll saw it; ``sha256`` once it has been taken."""

    size: int
    mtime_ns: int
    sha256: str | None = None

    @classmethod
    def parse(cls, raw: JSONValue) -> _Seen | None:
        if not isinstance(raw, list) or len(raw) != 3:
            return None
        size, mtime, sha = raw
        if not isinstance(size, int) or not isinstance(mtime, int):
            return None
        return cls(size, mtime, sha if isinstance(sha, str) else None)

    def dump(self) -> JSONValue:
        return [self.size, self.mtime_ns, self.sha256]


class FolderSource:
    """The folder adapter of the ``Source`` port."""

    name = "folder"

    def __init__(
        self,
        settings: FolderSettings,
        *,
        min_age_s: float = MIN_AGE_S,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if settings.path is None:
            raise ValueError("the folder source needs a path")
        self._root = settings.path
        self._min_age_s = min_age_s
        self._wall = wall

    async def list_new(self, cursor: Cursor) -> Listing:
        return await asyncio.to_thread(self._scan, cursor)

    async def hydrate(self, listed: ListedUpload) -> Upload:
        """The upload's file; without the listing's path hint (a probe after a restart, a
        back-scan) the file is found again by its sha256, under any name in the folder."""
        hinted = listed.hint.get("path")
        if isinstance(hinted, str) and hinted:
            path = Path(hinted)
        else:
            path = await asyncio.to_thread(self._find, listed.upload_id, listed.name)
        size = listed.hint.get("size", _size(path))
        file = RemoteFile(
            name=path.name,
            url=path.as_uri(),
            size=size if isinstance(size, int) else None,
            hashes={"sha256": listed.upload_id.upper()},
        )
        return Upload(
            upload_id=listed.upload_id,
            name=path.name,
            files=(file,),
            hub_text=(TextField("filename", path.stem),),
            url=file.url,
        )

    async def read_bytes(self, file: RemoteFile, start: int, length: int) -> Fetched:
        return await asyncio.to_thread(_read, _path_of(file), start, length)

    async def download(self, file: RemoteFile, dest: Path) -> int:
        copied = await asyncio.to_thread(shutil.copyfile, _path_of(file), dest)
        return await asyncio.to_thread(lambda: copied.stat().st_size)

    async def hub_status(self, target: CheckTarget) -> HubStatus:
        """Up while the file, or a renamed copy of it anywhere in the folder, is there."""
        return await asyncio.to_thread(self._status, target)

    def _status(self, target: CheckTarget) -> HubStatus:
        if not self._root.is_dir():
            raise SourceUnavailable(f"the watched folder {self._root} does not exist")
        path = _path_of(RemoteFile(target.upload_id, target.url or ""))
        if path.is_file() and target.size in (None, _size(path)):
            return HubStatus("up")  # not hashed again: a same-size rewrite in place passes
        for candidate in model_files_in(self._root):
            if target.size is not None and _size(candidate) != target.size:
                continue  # only a file of the same size can be a renamed copy: hash only those
            if sha256_file(candidate) == target.upload_id:
                return HubStatus("up")
        return HubStatus("removed", "the file was deleted from the watched folder")

    def _find(self, sha256: str, name: str) -> Path:
        if not self._root.is_dir():
            raise SourceUnavailable(f"the watched folder {self._root} does not exist")
        files = model_files_in(self._root)
        # The recorded name first: usually the file is still where it was.
        for candidate in sorted(files, key=lambda f: f.name != name):
            try:
                if sha256_file(candidate) == sha256.lower():
                    return candidate
            except OSError:
                continue  # deleted or unreadable while we looked
        raise SourceRejected(f"{name} is no longer in the watched folder")

    def _scan(self, cursor: Cursor) -> Listing:
        if not self._root.is_dir():
            raise SourceUnavailable(f"the watched folder {self._root} does not exist")
        before = _seen_map(cursor.extra.get("files"))
        now_seen: dict[str, JSONValue] = {}
        taken: list[ListedUpload] = []
        for path in model_files_in(self._root):
            key = str(path.relative_to(self._root))
            seen = self._observe(path, before.get(key))
            if seen is None:
                continue
            if seen.sha256 and (before.get(key) is None or before[key].sha256 is None):
                taken.append(_listed(path, seen))
            now_seen[key] = seen.dump()
        return Listing(uploads=tuple(taken), cursor=Cursor(None, {"files": now_seen}))

    def _observe(self, path: Path, before: _Seen | None) -> _Seen | None:
        """The file's state now; hashed when it has settled since ``before``."""
        try:
            stat = path.stat()
        except OSError:
            return None  # gone between listing and stat
        now = _Seen(stat.st_size, stat.st_mtime_ns)
        if before is not None and (before.size, before.mtime_ns) == (now.size, now.mtime_ns):
            return before if before.sha256 else _Seen(now.size, now.mtime_ns, sha256_file(path))
        if self._wall() - stat.st_mtime >= self._min_age_s:
            return _Seen(now.size, now.mtime_ns, sha256_file(path))
        return now


def _seen_map(raw: JSONValue | None) -> dict[str, _Seen]:
    if not isinstance(raw, dict):
        return {}
    parsed = {key: _Seen.parse(value) for key, value in raw.items()}
    return {key: value for key, value in parsed.items() if value is not None}


def _listed(path: Path, seen: _Seen) -> ListedUpload:
    hint: Mapping[str, JSONValue] = {"path": str(path), "size": seen.size}
    return ListedUpload(str(seen.sha256), path.name, None, hint)


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def _path_of(file: RemoteFile) -> Path:
    if not file.url.startswith("file://"):
        raise SourceRejected(f"{file.name}: not a local file")
    return Path(unquote(urlparse(file.url).path))


def _read(path: Path, start: int, length: int) -> Fetched:
    try:
        with path.open("rb") as fh:
            fh.seek(start)
            data = fh.read(length)
            size = path.stat().st_size
    except FileNotFoundError as exc:
        raise SourceRejected(f"{path} was removed before it was read") from exc
    except OSError as exc:
        raise SourceUnavailable(f"{path} cannot be read: {exc.strerror or exc}") from exc
    return Fetched(data=data, bytes_read=len(data), total_size=size)
