"""What `storage.store.Store` hands out and takes in: frozen values, never ORM rows.

Field names are docs/interface.md's JSON keys (``source``, ``upload_id``, ``name``, ``state``,
``artists``, ``reupload_of``), so the CLI and the web API serialize them as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from detectors.results import BaseFamily, Evidence, FileFormat, JSONValue, Kind, Stage, TextField
from storage.stored_metadata import MetadataCut

# The source name of the files `stylewatch scan` reads from the local disk.
LOCAL_SOURCE = "local"
# "requeued": probed before, waiting for a probe again that a back-scan asked for.
UploadState = Literal["new", "screened", "probing", "probed", "requeued", "failed"]
FindingState = Literal["needs_review", "escalated", "confirmed", "dismissed", "taken_down"]
Channel = Literal["email", "digest", "webhook"]
DeliveryStatus = Literal["pending", "sent", "dead"]
Role = Literal["admin", "moderator", "artist"]


@dataclass(frozen=True, slots=True)
class ArtistRecord:
    id: int
    name: str
    aliases: tuple[str, ...]
    email: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class StoreCounts:
    artists: int
    uploads: int
    findings: int


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """A hub's poll position: ``high_water`` is its watermark or cursor, ``state`` free JSON."""

    id: int
    name: str
    high_water: str | None
    state: Mapping[str, JSONValue]
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class UploadRef:
    """Names an upload the way users see it: ``{"source": …, "upload_id": …}``."""

    source: str
    upload_id: str


@dataclass(frozen=True, slots=True)
class FileRecord:
    """One file of an upload, as screening saw it. ``metadata`` is the safetensors
    ``__metadata__``; ``hashes`` maps an algorithm name (``sha256``, ``autov2``, …) to hex;
    ``fingerprint`` says whether its re-upload fingerprint could be read; ``malformed`` why
    its metadata is malformed (None when well formed); ``metadata_cut`` how the stored
    metadata was capped (`storage.stored_metadata`; None when stored whole)."""

    filename: str
    sha256: str | None = None
    size: int | None = None
    format: FileFormat = "unknown"
    kind: Kind = "unknown"
    base_family: BaseFamily = "unknown"
    layout: str = "unknown"
    metadata: Mapping[str, JSONValue] = field(default_factory=dict)
    hashes: Mapping[str, str] = field(default_factory=dict)
    # The weight fingerprint: "read", "known" (the hub's hash linked it, nothing read) or
    # "not available: <reason>"; None for kinds that have none.
    fingerprint: str | None = None
    malformed: str | None = None
    metadata_cut: MetadataCut | None = None


@dataclass(frozen=True, slots=True)
class UploadRecord:
    """An upload and where it is in the pipeline. ``id`` is the database key; ``upload_id``
    the hub's version id (or a folder file's sha256). ``artists``: names with a finding."""

    id: int
    source: str
    upload_id: str
    name: str
    state: UploadState
    kind: Kind
    base_family: BaseFamily
    artists: tuple[str, ...]
    reupload_of: UploadRef | None
    url: str | None
    uploader: str | None
    error: str | None
    hub_text: tuple[TextField, ...]
    files: tuple[FileRecord, ...]
    created_at: datetime
    updated_at: datetime
    hub_base_model: str | None = None  # the base model the hub names ("Pony", "SDXL 1.0")

    @property
    def malformed(self) -> str | None:
        """Why a file's metadata is malformed (the first such file's reason), or None."""
        return next((f"{f.filename}: {f.malformed}" for f in self.files if f.malformed), None)


@dataclass(frozen=True, slots=True)
class FindingRecord:
    """One artist found in one upload (``upload_pk`` is the upload's database key)."""

    id: int
    upload_pk: int
    source: str
    upload_id: str
    name: str
    artist_id: int
    artist: str
    score: float
    stage: Stage
    state: FindingState
    backscan: bool
    evidence: tuple[Evidence, ...]
    created_at: datetime
    updated_at: datetime
    taken_down_at: datetime | None = None  # when takedown tracking saw the upload gone


@dataclass(frozen=True, slots=True)
class ArtistRemoval:
    """What removing an artist takes with it (``stylewatch artist remove``)."""

    name: str
    findings: int
    subscriptions: int
    images: int
    users: int  # web users linked to the artist: they keep their account, unlinked
