"""Takedown tracking: the uploads of confirmed findings are checked on their hubs again, on
a slow schedule, and a finding whose upload is gone becomes "taken_down" with the date.

A hub that errors or says nothing clear leaves every state as it was (one log line): only
an answer that the upload is gone (Civitai 404, unpublished, private, taken down; Hugging
Face 404/``RepoNotFound``, disabled, gated, private; a file deleted from the watched folder)
takes a finding down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from detectors.errors import SourceError
from monitor.sources.base import CheckableSource, CheckTarget
from storage.takedowns import DueUpload, Takedowns

log = logging.getLogger(__name__)

CHECK_INTERVAL_S = 86_400
CHECK_CONCURRENCY = 4
MAX_CHECKS_PER_RUN = 5_000  # an hour's work at the default 0.2 s a request per host


@dataclass(frozen=True, slots=True)
class TakedownSummary:
    """One run: uploads checked, seen up, seen gone, findings taken down, and checks the
    hub could not answer (their states unchanged)."""

    checked: int = 0
    up: int = 0
    gone: int = 0
    taken_down: int = 0
    errors: int = 0


@dataclass(frozen=True, slots=True)
class _Checked:
    outcome: Literal["up", "gone", "error"]
    taken_down: int = 0


class TakedownChecker:
    """Checks the due uploads of confirmed findings on their sources (by source name)."""

    def __init__(
        self,
        sources: Mapping[str, CheckableSource],
        takedowns: Takedowns,
        *,
        interval_s: float = CHECK_INTERVAL_S,
        concurrency: int = CHECK_CONCURRENCY,
    ) -> None:
        self._sources, self._takedowns = dict(sources), takedowns
        self._interval_s = interval_s
        self._slots = asyncio.Semaphore(concurrency)

    async def check_due(
        self, *, every_s: float | None = None, limit: int = MAX_CHECKS_PER_RUN
    ) -> TakedownSummary:
        """Check each upload not checked in the last ``every_s`` seconds (default: the
        configured interval; 0 checks them all). Raises ``StorageError``."""
        interval = self._interval_s if every_s is None else every_s
        due = await asyncio.to_thread(
            lambda: self._takedowns.due(interval, sources=list(self._sources), limit=limit)
        )
        results = await asyncio.gather(*(self._guarded(upload) for upload in due))
        return TakedownSummary(
            checked=len(results),
            up=sum(r.outcome == "up" for r in results),
            gone=sum(r.outcome == "gone" for r in results),
            taken_down=sum(r.taken_down for r in results),
            errors=sum(r.outcome == "error" for r in results),
        )

    async def _guarded(self, upload: DueUpload) -> _Checked:
        async with self._slots:
            try:
                return await self._check(upload)
            except SourceError as exc:
                log.warning(
                    "takedown.check.failed",
                    extra={
                        "source": upload.source,
                        "upload_id": upload.upload_id,
                        "reason": str(exc),
                    },
                )
                return _Checked("error")

    async def _check(self, upload: DueUpload) -> _Checked:
        target = CheckTarget(upload.upload_id, upload.url, upload.filenames, upload.size)
        status = await self._sources[upload.source].hub_status(target)
        taken = await asyncio.to_thread(
            lambda: self._takedowns.record(
                upload.upload_pk, status=status.state, reason=status.reason
            )
        )
        log.info(
            "takedown.checked",
            extra={
                "source": upload.source,
                "upload_id": upload.upload_id,
                "hub_state": status.state,
                "taken_down": len(taken),
            },
        )
        return _Checked("up" if status.up else "gone", len(taken))
