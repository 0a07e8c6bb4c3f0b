"""Scanning local model files: read the header, screen it, record the upload and findings."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from detectors.errors import InputError, ProbeError, RefusedFile
from detectors.names import ArtistIndex
from detectors.results import ADAPTER_KINDS, ArtistMatch, merge_matches
from detectors.screening import Screening, screen_header
from monitor.interface.scan_report import ScanFailure, ScanReport
from monitor.pipeline.record import ReuploadLinker, local_fingerprint
from monitor.pipeline.states import move
from monitor.runtime import Runtime
from monitor.sources.local_files import LocalFile, model_files_in, read_local_file
from storage.probe_cache import run_key
from storage.probe_jobs import PROBED_KINDS
from storage.records import LOCAL_SOURCE, FileRecord, UploadState
from storage.source_state import SourceState

if TYPE_CHECKING:  # the probe pulls in numpy and PIL: imported only when a scan probes
    from monitor.pipeline.probe import ProbeOutcome, Prober

log = logging.getLogger(__name__)


class Scanner:
    """Scans local files against every registered artist and records what it finds.

    The artist index is built once per Scanner, so a folder scan costs one build.
    """

    def __init__(
        self,
        runtime: Runtime,
        *,
        probe_requested: bool,
        build_prober: Callable[[Runtime], Prober],
    ) -> None:
        """``build_prober`` builds the prober on the first file that needs one
        (`monitor.build.probe.build_prober`; construction is not this stage's business)."""
        self._runtime = runtime
        self._build_prober = build_prober
        self._threshold = runtime.settings.screening.flag_threshold
        self._probe_requested = probe_requested
        self._prober: Prober | None = None
        self._index = ArtistIndex.build(runtime.store.artist_refs())
        self._linker = ReuploadLinker(runtime.store, SourceState(runtime.engine))

    @property
    def probe_reason(self) -> str:
        """Why no probe runs at all, or what decides it per file."""
        if not self._probe_requested:
            return "--no-probe given"
        if not self._runtime.settings.probe.base_models:
            return "no base model configured: set [probe] base_models"
        return "no base model configured for this file's family"

    def close(self) -> None:
        if self._prober is not None:
            self._prober.close()

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
        outcome = self._probe(local, screening)
        matches = tuple(merge_matches((*screening.matches, *outcome.matches)).values())
        self._record(local, screening, matches, outcome)
        report = ScanReport.from_screening(
            str(local.path),
            local.sha256,
            local.size,
            screening,
            verdict_threshold=self._threshold,
            probe_ran=outcome.ran,
            probe_reason=outcome.reason,
        )
        return replace(report, matches=matches)

    def _probe(self, local: LocalFile, screening: Screening) -> ProbeOutcome:
        """The probe's outcome, or why it did not run (never raises for a probe fault)."""
        from monitor.pipeline.probe import ProbeOutcome, references_for

        if not self._probe_requested or not self._runtime.settings.probe.base_models:
            return ProbeOutcome(ran=False, reason=self.probe_reason)
        if screening.kind not in PROBED_KINDS:
            return ProbeOutcome(ran=False, reason=f"a {screening.kind} file is not probed")
        prober = self._get_prober()
        reason = prober.unavailable(screening.base_family)
        if reason is not None:
            return ProbeOutcome(ran=False, reason=reason)
        artists, references = references_for(self._runtime)
        if not references:
            return ProbeOutcome(ran=False, reason="no artist has reference images")
        try:
            return prober.probe(
                local.path,
                screening,
                artists,
                references,
                remember_as=run_key(LOCAL_SOURCE, local.sha256),
                kind=screening.kind,
            )
        except ProbeError as exc:
            log.warning("scan.probe.failed", extra={"upload_id": local.sha256, "reason": str(exc)})
            return ProbeOutcome(ran=False, reason=f"the probe failed: {exc}")

    def _get_prober(self) -> Prober:
        if self._prober is None:
            self._prober = self._build_prober(self._runtime)
        return self._prober

    def _link(self, upload_pk: int, local: LocalFile, s: Screening) -> int | None:
        """The earlier upload this file repeats (same SHA-256 or same weights), if any."""
        prints = []
        if s.kind in ADAPTER_KINDS:
            print_ = local_fingerprint(local.path, local.header)
            prints = [(local.path.name, print_)] if print_ else []
        return self._linker.link(upload_pk, [local.sha256], prints)

    def _record(
        self,
        local: LocalFile,
        s: Screening,
        matches: tuple[ArtistMatch, ...],
        outcome: ProbeOutcome,
    ) -> None:
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
                    malformed=s.malformed,
                )
            ],
        )
        store.record_findings(upload.id, matches)
        earlier = self._link(upload.id, local, s)
        failed = outcome.reason if outcome.reason.startswith("the probe failed") else None
        state: UploadState = "probed" if outcome.ran else "screened"
        move(store, "scan", upload.id, state, error=failed, reupload_of=earlier)
        log.info(
            "scan.screened",
            extra={"source": LOCAL_SOURCE, "upload_id": local.sha256, "stage": "screening"},
        )
