"""Scanning local model files: read the header, screen it, record the upload and findings."""

from __future__ import annotations

import logging
from pathlib import Path

from detectors.errors import InputError, RefusedFile
from detectors.names import ArtistIndex
from detectors.screening import Screening, screen_header
from monitor.local_files import LocalFile, model_files_in, read_local_file
from monitor.runtime import Runtime
from monitor.scan_report import ScanFailure, ScanReport
from storage.records import FileRecord

log = logging.getLogger(__name__)

LOCAL_SOURCE = "local"


class Scanner:
    """Scans local files against every registered artist and records what it finds.

    The artist index is built once per Scanner, so a folder scan costs one build.
    """

    def __init__(self, runtime: Runtime, *, probe_requested: bool) -> None:
        self._runtime = runtime
        self._threshold = runtime.settings.screening.flag_threshold
        self.probe_reason = (
            "--no-probe given"
            if not probe_requested
            else "the GPU probe is not available in this version"
        )
        self._index = ArtistIndex.build(runtime.store.artist_refs())

    def files_in(self, folder: Path) -> list[Path]:
        return list(model_files_in(folder))

    def scan_file(self, path: Path) -> ScanReport | ScanFailure:
        """Scan one file; bad or refused input becomes a ScanFailure, never an exception."""
        try:
            local = read_local_file(path)
        except RefusedFile as exc:
            return ScanFailure(
                str(path), str(exc), format="pickle" if exc.format == "pickle" else "unknown"
            )
        except InputError as exc:
            return ScanFailure(str(path), str(exc))
        screening = screen_header(local.header, self._index)
        self._record(local, screening)
        return ScanReport.from_screening(
            str(local.path),
            local.sha256,
            local.size,
            screening,
            verdict_threshold=self._threshold,
            probe_ran=False,
            probe_reason=self.probe_reason,
        )

    def _record(self, local: LocalFile, s: Screening) -> None:
        store = self._runtime.store
        upload, _ = store.record_upload(
            source=LOCAL_SOURCE,
            upload_id=local.sha256,
            name=local.path.name,
            kind=s.kind,
            base_family=s.base_family,
            files=[
                FileRecord(
                    filename=local.path.name,
                    sha256=local.sha256,
                    size=local.size,
                    format=s.format,
                    kind=s.kind,
                    base_family=s.base_family,
                    layout=s.layout,
                    metadata=dict(local.header.metadata),
                )
            ],
        )
        store.record_findings(upload.id, s.matches)
        store.set_upload_state(upload.id, "screened")
        log.info(
            "scan.screened",
            extra={"source": LOCAL_SOURCE, "upload_id": local.sha256, "stage": "screening"},
        )
