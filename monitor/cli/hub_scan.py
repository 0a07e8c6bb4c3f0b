"""``stylewatch scan`` of one hub upload: screened and recorded exactly as a poll would."""

from __future__ import annotations

from detectors.errors import InputError, SourceError
from monitor.build.sources import build_pollers, build_sources, create_session
from monitor.interface.scan_report import ScanFailure, ScanReport
from monitor.pipeline.poll import UploadScan
from monitor.runtime import Runtime
from monitor.sources.base import ListedUpload, Source
from monitor.sources.civitai import CivitaiSource
from monitor.sources.http import HttpClient
from monitor.sources.targets import HubTarget


async def scan_hub_target(
    runtime: Runtime, target: str, hub: HubTarget, *, probe_reason: str
) -> ScanReport | ScanFailure:
    """Screen and record one hub upload; a hub fault or a bad target is a ScanFailure."""
    async with create_session() as session:
        sources = build_sources(runtime.settings, HttpClient(session), [hub.source])
        poller = build_pollers(runtime, sources)[hub.source]
        try:
            listed = await _listed(sources[0], hub)
            scan = await poller.scan_one(listed, hub.file)
        except (SourceError, InputError) as exc:
            return ScanFailure(target, str(exc))
    return _report(target, scan, runtime.settings.screening.flag_threshold, probe_reason)


async def _listed(source: Source, hub: HubTarget) -> ListedUpload:
    if hub.upload_id is not None:
        return ListedUpload(hub.upload_id, hub.upload_id)
    if isinstance(source, CivitaiSource) and hub.model_id is not None:
        return await source.model_upload(hub.model_id)
    raise InputError("the target names no upload")


def _report(target: str, scan: UploadScan, threshold: float, probe_reason: str) -> ScanReport:
    first_file = next((f for f in scan.files if f.kind != "unknown"), None)
    first_file = first_file or (scan.files[0] if scan.files else None)
    first = scan.first
    return ScanReport(
        target=target,
        sha256=first_file.sha256 if first_file else None,
        size=first_file.size if first_file else None,
        format=first.format if first else (first_file.format if first_file else "unknown"),
        kind=first.kind if first else "unknown",
        base_family=first.base_family if first else "unknown",
        matches=scan.matches,
        verdict_threshold=threshold,
        probe_ran=False,
        probe_reason=probe_reason,
        malformed=scan.malformed,
    )
