"""Back-scans that the web UI starts (an artist adds an alias or a reference image), run in
the background of ``serve`` and reported to the artist portal as they go.

Each runs off the event loop: the name back-scan on a worker thread (`asyncio.to_thread`),
the style back-scan on the probe thread when this process has a probe worker (the embedder
and its device belong to it), else on a worker thread with an embedder of its own. One
back-scan per artist runs at a time; what is asked meanwhile runs once right after. The
progress lives in this process only: a restart forgets it (the findings stay).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from detectors.errors import StylewatchError
from detectors.results import ArtistRef
from monitor.backscan.names import backscan
from monitor.backscan.style import (
    NO_BASE_MODEL,
    StyleBackscanResult,
    StyleScoring,
    cli_scoring,
    prober_scoring,
    style_backscan,
)
from monitor.runtime import Runtime
from storage.backscan_reads import BackscanReads

if TYPE_CHECKING:  # the prober pulls in the probe backend: only its type is needed here
    from monitor.pipeline.probe import Prober

log = logging.getLogger(__name__)

CLOSE_WAIT_S = 10.0


@dataclass
class BackscanProgress:
    """One artist's latest back-scan, as far as it got (written by its thread, read by the
    portal; plain counters, so a read between two writes is merely a step behind)."""

    names: bool
    style: bool
    checked: int = 0
    total: int = 0
    named: int = 0
    probed_checked: int = 0
    probed_total: int = 0
    result: StyleBackscanResult | None = None
    error: str | None = None
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None

    @property
    def running(self) -> bool:
        return self.finished_at is None

    def text(self) -> str:
        """The portal's status line, e.g. "Checked 12,345 earlier uploads: 2 name you."."""
        if self.error:
            return f"The back-scan stopped: {self.error}"
        parts = []
        if self.names:
            parts.append(self._names_text())
        if self.style:
            parts.append(self._style_text())
        return " ".join(p for p in parts if p)

    def _names_text(self) -> str:
        if self.running and self.checked < self.total:
            return f"Checking earlier uploads for your names: {self.checked:,} of {self.total:,}…"
        if self.running and not self.total:
            return "Checking earlier uploads for your names…"
        who = "1 names you" if self.named == 1 else f"{self.named or 'none'} name you"
        return f"Checked {self.checked:,} earlier uploads: {who}."

    def _style_text(self) -> str:
        result = self.result
        if result is None:
            if not self.running or (self.names and self.checked < self.total):
                return ""
            return (
                "Comparing earlier probed LoRAs with your reference images:"
                f" {self.probed_checked:,} of {self.probed_total:,}…"
            )
        if result.skipped:
            return f"Reference images are not compared with earlier uploads: {result.skipped}."
        flagged = sum((result.flagged or {}).values())
        looks = "1 looks" if flagged == 1 else f"{flagged or 'none'} look"
        text = (
            f"Compared {result.rescored:,} earlier probed LoRAs with your reference images:"
            f" {looks} like your work."
        )
        if result.queued:
            text += f" {result.queued:,} more will be probed again."
        return text


class Backscans:
    """The back-scans of one web app, by artist id."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._progress: dict[int, BackscanProgress] = {}
        self._asked: dict[int, tuple[bool, bool]] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._prober: Prober | None = None
        self._own_scoring: StyleScoring | None = None

    def use_prober(self, prober: Prober | None) -> None:
        """Run style back-scans on this prober's thread with its embedder (serve's probe
        worker); None: on a worker thread with an embedder built from the settings."""
        self._prober = prober

    def progress(self, artist_id: int) -> BackscanProgress | None:
        return self._progress.get(artist_id)

    def start(self, artist_id: int, *, names: bool = False, style: bool = False) -> None:
        """Back-scan the artist's names and/or reference images in the background."""
        asked_names, asked_style = self._asked.get(artist_id, (False, False))
        self._asked[artist_id] = (asked_names or names, asked_style or style)
        if artist_id not in self._tasks:
            task = asyncio.create_task(self._run(artist_id), name=f"backscan-{artist_id}")
            self._tasks[artist_id] = task

    async def close(self) -> None:
        """Let running back-scans finish (up to ``CLOSE_WAIT_S``), then cancel them."""
        tasks = list(self._tasks.values())
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=CLOSE_WAIT_S)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _run(self, artist_id: int) -> None:
        try:
            while artist_id in self._asked:
                names, style = self._asked.pop(artist_id)
                progress = BackscanProgress(names=names, style=style)
                self._progress[artist_id] = progress
                try:
                    await self._once(artist_id, progress)
                finally:
                    progress.finished_at = datetime.now(UTC)
        finally:
            del self._tasks[artist_id]

    async def _once(self, artist_id: int, progress: BackscanProgress) -> None:
        try:
            ref = await asyncio.to_thread(self._artist_ref, artist_id)
            if ref is None:
                progress.error = "the artist is no longer registered."
                return
            if progress.names:
                await self._names(ref, progress)
            if progress.style:
                progress.result = await self._style(ref, progress)
        except StylewatchError as exc:  # the database or the embedder failed: say so
            progress.error = f"{exc}."
            log.warning("backscan.failed", extra={"artist": str(artist_id), "reason": str(exc)})
        except Exception:  # a bug: logged with its traceback, the service goes on
            progress.error = "an internal error (logged for the operators)."
            log.exception("backscan.bug", extra={"artist": str(artist_id)})

    def _artist_ref(self, artist_id: int) -> ArtistRef | None:
        return next(
            (a for a in self._runtime.store.artist_refs() if a.artist_id == artist_id), None
        )

    async def _names(self, ref: ArtistRef, progress: BackscanProgress) -> None:
        recorded = BackscanReads(self._runtime.engine)
        progress.total = await asyncio.to_thread(recorded.count)

        def advance(n: int) -> None:
            progress.checked += n

        result = await asyncio.to_thread(
            backscan, self._runtime.store, recorded, [ref], advance=advance
        )
        progress.named = result.named.get(ref.name, 0)

    async def _style(self, ref: ArtistRef, progress: BackscanProgress) -> StyleBackscanResult:
        families = list(self._runtime.settings.probe.base_models)
        if not families:
            return StyleBackscanResult(skipped=NO_BASE_MODEL)
        recorded = BackscanReads(self._runtime.engine)
        progress.probed_total = await asyncio.to_thread(recorded.probed_count, families)

        def advance(n: int) -> None:
            progress.probed_checked += n

        def work(scoring: Callable[[], StyleScoring]) -> StyleBackscanResult:
            return style_backscan(self._runtime, scoring(), [ref], advance=advance)

        prober = self._prober
        if prober is not None:
            return await prober.on_probe_thread(lambda: work(lambda: prober_scoring(prober)))
        return await asyncio.to_thread(work, self._scoring)

    def _scoring(self) -> StyleScoring:
        """An embedder of this process's own, built once (on a worker thread)."""
        if self._own_scoring is None:
            self._own_scoring = cli_scoring(self._runtime)
        return self._own_scoring
