"""Re-upload detection: which earlier upload a new one repeats, and what was decided on it.

An upload is a re-upload of the first recorded upload with a file of the same SHA-256 (the
hub's own SHA256, or its AutoV2 prefix when that is all it gives: such a link is made before
any byte of the file is read for a fingerprint), or else with a file whose weight
fingerprint (`detectors.fingerprint`) is at least
``SIMILAR_AT`` alike. When a moderator confirmed that earlier upload's finding, or it was
taken down, the re-upload gets the same finding at once, with the decision as its evidence.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from detectors.errors import SourceRejected
from detectors.fingerprint import Fingerprint, fingerprint, fingerprint_ranges
from detectors.results import ArtistMatch, Evidence, SafetensorsHeader
from monitor.sources.base import RemoteFile, Source
from storage.records import FindingRecord
from storage.source_state import SourceState
from storage.store import Store

log = logging.getLogger(__name__)

REUPLOAD_EVIDENCE = "reupload"


@dataclass(frozen=True, slots=True)
class RemotePrint:
    """A remote file's fingerprint (None when it has no usable LoRA module or could not be
    read), the bytes read for it, and why it is not available when a read was refused."""

    fingerprint: Fingerprint | None
    bytes_read: int
    unavailable: str | None = None

    @property
    def status(self) -> str:
        """What the file's record says: ``read`` or ``not available: <reason>``."""
        if self.unavailable:
            return f"not available: {self.unavailable}"
        return "read" if self.fingerprint is not None else "not available: no LoRA module"


async def remote_fingerprint(
    source: Source, file: RemoteFile, header: SafetensorsHeader
) -> RemotePrint:
    """The file's fingerprint from a few Range reads (`fingerprint_ranges`). A refused read
    (a hub error, or the upload's byte budget: a host that ignores Range is never read up to
    a deep offset) leaves it not available; raises ``SourceUnavailable`` when the source is
    down."""
    chunks: dict[tuple[int, int], bytes] = {}
    bytes_read = 0
    try:
        for start, end in fingerprint_ranges(header):
            got = await source.read_bytes(file, start, end - start)
            bytes_read += got.bytes_read
            chunks[(start, end)] = got.data
    except SourceRejected as exc:
        log.warning("reupload.fingerprint.refused", extra={"file": file.name, "reason": str(exc)})
        return RemotePrint(None, bytes_read, unavailable=str(exc))
    if not chunks:
        return RemotePrint(None, bytes_read)
    return RemotePrint(await asyncio.to_thread(fingerprint, header, chunks), bytes_read)


def local_fingerprint(path: Path, header: SafetensorsHeader) -> Fingerprint | None:
    """The fingerprint of a local file (None when it has no usable LoRA module)."""
    chunks: dict[tuple[int, int], bytes] = {}
    with path.open("rb") as fh:
        for start, end in fingerprint_ranges(header):
            fh.seek(start)
            chunks[(start, end)] = fh.read(end - start)
    return fingerprint(header, chunks) if chunks else None


class ReuploadLinker:
    """Stores fingerprints and links uploads to the earlier uploads they repeat (sync)."""

    def __init__(self, store: Store, state: SourceState) -> None:
        self._store, self._state = store, state

    def link(
        self,
        upload_pk: int,
        sha256s: Sequence[str],
        prints: Sequence[tuple[str, Fingerprint]],
        autov2s: Sequence[str] = (),
    ) -> int | None:
        """The earlier upload ``upload_pk`` re-uploads, or None; records a finding for each
        decided finding of that upload. ``prints``: (filename, fingerprint) per file;
        ``autov2s``: the hub's AutoV2 hashes of files it gave no SHA256 for."""
        self._state.save_fingerprints(upload_pk, prints)
        exact = self._state.earliest_upload_with(sha256s, besides=upload_pk, autov2s=autov2s)
        similar = self._state.similar_upload([fp for _, fp in prints], besides=upload_pk)
        earlier = min(
            (pk for pk in (exact, similar) if pk is not None and pk < upload_pk), default=None
        )
        if earlier is None:
            return None
        decided = self._state.decided_findings(earlier)
        if decided:
            self._store.record_findings(upload_pk, [_repeated(f) for f in decided])
        log.info(
            "reupload.linked",
            extra={"upload_pk": upload_pk, "reupload_of": earlier, "exact": exact == earlier},
        )
        return earlier


def _repeated(finding: FindingRecord) -> ArtistMatch:
    decision = "taken down" if finding.state == "taken_down" else "confirmed"
    text = (
        f"re-upload of {finding.source}:{finding.upload_id} ({finding.name}), whose finding"
        f" was {decision} on {finding.updated_at.date().isoformat()}"
    )
    evidence = (Evidence(REUPLOAD_EVIDENCE, text), *finding.evidence)
    return ArtistMatch(finding.artist_id, finding.artist, finding.score, finding.stage, evidence)
