"""The JSON shapes of ``uploads --json`` and ``findings --json`` (docs/interface.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from storage.records import FindingRecord, FindingState, UploadRecord
from storage.takedowns import HubCheckRecord

# The state a flagged upload shows: the most pressing of its findings' states.
_STATE_ORDER: tuple[FindingState, ...] = (
    "escalated",
    "needs_review",
    "confirmed",
    "taken_down",
    "dismissed",
)


def upload_json(record: UploadRecord) -> dict[str, Any]:
    return {
        "source": record.source,
        "upload_id": record.upload_id,
        "name": record.name,
        "state": record.state,
        "kind": record.kind,
        "base_family": record.base_family,
        "artists": list(record.artists),
        "url": record.url,
        "uploader": record.uploader,
        "error": record.error,
        "malformed": record.malformed,
        "reupload_of": (
            None
            if record.reupload_of is None
            else {"source": record.reupload_of.source, "upload_id": record.reupload_of.upload_id}
        ),
        "files": [
            {
                "filename": f.filename,
                "size": f.size,
                "kind": f.kind,
                "base_family": f.base_family,
                "fingerprint": f.fingerprint,
                "malformed": f.malformed,
                "metadata_cut": None if f.metadata_cut is None else f.metadata_cut.as_json(),
            }
            for f in record.files
        ],
        "created_at": record.created_at.isoformat(),
    }


def _finding_json(record: FindingRecord) -> dict[str, Any]:
    return {
        "artist": record.artist,
        "score": round(record.score, 4),
        "stage": record.stage,
        "state": record.state,
        "backscan": record.backscan,
        "evidence": [
            {"source": e.source, "text": e.text, "blob_sha256": e.blob_sha256}
            for e in record.evidence
        ],
        "created_at": record.created_at.isoformat(),
        "taken_down_at": record.taken_down_at.isoformat() if record.taken_down_at else None,
    }


def hub_status_json(check: HubCheckRecord | None) -> dict[str, Any] | None:
    """The last takedown check of an upload: ``{"checked_at", "up", "status", "gone_at"}``,
    or None when it was never checked."""
    if check is None:
        return None
    return {
        "checked_at": check.checked_at.isoformat(),
        "up": check.up,
        "status": check.status,
        "gone_at": check.gone_at.isoformat() if check.gone_at else None,
    }


def flagged_uploads_json(
    findings: Sequence[FindingRecord], hub_checks: Mapping[int, HubCheckRecord] | None = None
) -> list[dict[str, Any]]:
    """One object per flagged upload, its findings nested, highest score first; with
    ``hub_checks`` (by upload key), each carries ``hub_status``."""
    grouped: dict[int, list[FindingRecord]] = {}
    for finding in findings:
        grouped.setdefault(finding.upload_pk, []).append(finding)
    items: list[tuple[float, dict[str, Any]]] = []
    for group in grouped.values():
        group.sort(key=lambda f: (-f.score, f.artist))
        first = group[0]
        states = {f.state for f in group}
        items.append(
            (
                first.score,
                {
                    "source": first.source,
                    "upload_id": first.upload_id,
                    "name": first.name,
                    "state": next(s for s in _STATE_ORDER if s in states),
                    "score": round(first.score, 4),
                    "artists": [f.artist for f in group],
                    "findings": [_finding_json(f) for f in group],
                    **(
                        {"hub_status": hub_status_json(hub_checks.get(first.upload_pk))}
                        if hub_checks is not None
                        else {}
                    ),
                },
            )
        )
    items.sort(key=lambda item: -item[0])
    return [item for _, item in items]
