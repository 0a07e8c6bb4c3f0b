"""The ``Source`` port: one model hub (or a folder) as the poller sees it, and the values
that cross it.

A poll lists what is new since a cursor, hydrates each listed upload into its files and the
hub's own text, then reads only the first bytes of each file (the safetensors header).
Every hub JSON object becomes one of these frozen dataclasses where it enters the adapter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from detectors.results import JSONValue, TextField


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a source's last complete listing ended.

    ``high_water`` is the hub's newest upload time seen (ISO 8601) and ``extra`` any other
    JSON state the adapter keeps between polls (a folder's file sizes, for instance).
    """

    high_water: str | None = None
    extra: Mapping[str, JSONValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ListedUpload:
    """One upload as a listing names it.

    ``upload_id`` is the hub's own version id (a repo id on Hugging Face, a sha256 for a
    folder); ``hint`` is what the listing already said (JSON), kept so that hydrating, or
    retrying a failed upload after a restart, needs no extra request.
    """

    upload_id: str
    name: str
    position: str | None = None
    hint: Mapping[str, JSONValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Listing:
    """What ``list_new`` found. ``complete`` is False when paging stopped on a fault; the
    cursor must then not advance, so the next poll reads the same stretch again."""

    uploads: tuple[ListedUpload, ...]
    cursor: Cursor
    complete: bool = True
    error: str | None = None


@dataclass(frozen=True, slots=True)
class RemoteFile:
    """One file of an upload. ``hashes`` maps a lower-case algorithm name (``sha256``,
    ``autov2``, …) to upper-case hex; ``screen`` marks files whose header is read."""

    name: str
    url: str
    size: int | None = None
    hashes: Mapping[str, str] = field(default_factory=dict)
    screen: bool = True

    @property
    def sha256(self) -> str | None:
        """The whole-file SHA-256 in lower-case hex, when the hub gave it."""
        value = self.hashes.get("sha256")
        return value.lower() if value else None


@dataclass(frozen=True, slots=True)
class Upload:
    """A hydrated upload: its files and the hub text to screen (each field names its
    source: ``name``, ``description``, ``trainedWords``, ``tags``, ``prompt``, ``card``…)."""

    upload_id: str
    name: str
    files: tuple[RemoteFile, ...]
    hub_text: tuple[TextField, ...] = ()
    url: str | None = None
    uploader: str | None = None
    base_model: str | None = None


@dataclass(frozen=True, slots=True)
class Fetched:
    """Bytes read from a file. ``bytes_read`` counts every byte taken off the wire (more
    than ``len(data)`` when a server ignored Range and the start had to be skipped);
    ``total_size`` is the file size when the server said it."""

    data: bytes
    bytes_read: int
    total_size: int | None = None


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One page of a hub's search: the uploads it names (every version of every model it
    returned) and ``next``, the opaque position of the following page (None on the last)."""

    uploads: tuple[ListedUpload, ...]
    next: str | None


HubState = Literal["up", "removed", "hidden", "unpublished", "gated"]


@dataclass(frozen=True, slots=True)
class CheckTarget:
    """A recorded upload whose hub page is checked again (takedown tracking)."""

    upload_id: str
    url: str | None = None
    filenames: tuple[str, ...] = ()
    size: int | None = None  # of its first model file, when recorded


@dataclass(frozen=True, slots=True)
class HubStatus:
    """What the hub shows for an upload now: ``state`` ``up``, or why it is gone, with the
    hub's own words in ``reason``."""

    state: HubState
    reason: str | None = None

    @property
    def up(self) -> bool:
        return self.state == "up"


class Source(Protocol):
    """A model hub or a watched folder.

    Methods raise ``SourceUnavailable`` (retry later) or ``SourceRejected`` (record and move
    on) and nothing else from the network.
    """

    @property
    def name(self) -> str:
        """The source's name in storage and in the CLI (``civitai``, ``huggingface``, …)."""
        ...

    async def list_new(self, cursor: Cursor) -> Listing:
        """Uploads newer than ``cursor`` (with overlap: repeats are expected), newest first."""
        ...

    async def hydrate(self, listed: ListedUpload) -> Upload:
        """The upload's files, hashes and hub text."""
        ...

    async def read_bytes(self, file: RemoteFile, start: int, length: int) -> Fetched:
        """At most ``length`` bytes of ``file`` from offset ``start`` (fewer at its end)."""
        ...

    async def download(self, file: RemoteFile, dest: Path) -> int:
        """Write the whole file to ``dest``; returns its size in bytes."""
        ...


@runtime_checkable
class SearchableSource(Source, Protocol):
    """A hub that can be searched for an artist's names (the hub history of a back-scan)."""

    def search_terms(self, name: str) -> tuple[str, ...]:
        """The queries that find uploads naming ``name`` on this hub (its search's rules)."""
        ...

    async def search(self, query: str, after: str | None) -> SearchPage:
        """One page of results for ``query``, from position ``after`` (None: the first)."""
        ...


@runtime_checkable
class CheckableSource(Protocol):
    """A source that can say whether a recorded upload is still up (takedown tracking)."""

    @property
    def name(self) -> str: ...

    async def hub_status(self, target: CheckTarget) -> HubStatus:
        """The upload's state on the hub now. Raises ``SourceError`` when the hub cannot
        tell (down, or an answer that says neither up nor gone): nothing may change then."""
        ...
