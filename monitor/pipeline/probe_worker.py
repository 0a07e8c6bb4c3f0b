"""The probe worker: probes the LoRAs the pollers recorded, one at a time.

The sweep finds uploads waiting for a probe in the database (screened LoRAs of a family
with a configured base model, or ones a crash left "probing") and queues them on the
``JobQueue``. A probe job downloads the file into a work folder, probes it on the one probe
thread and records what it found; a job for an upload no longer waiting does nothing. A hub
that cannot deliver the file now leaves the upload waiting (the in-process worker leaves it
to a later sweep, a procrastinate job is retried with backoff); a file the probe cannot use
is recorded as failed with the reason.

On the embedded default all of it runs inside ``serve`` (`probe_working`); with the
procrastinate backend serve only sweeps (`sweeping`) and ``stylewatch worker`` probes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import shutil
import time
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path

from detectors.errors import InputError, ProbeError, SourceRejected, SourceUnavailable
from detectors.names import ArtistIndex
from detectors.screening import Screening, screen_header
from monitor.jobs.queue import InProcessQueue, JobQueue
from monitor.pipeline.probe import ProbeOutcome, Prober, references_for
from monitor.pipeline.states import move
from monitor.runtime import Runtime
from monitor.sources.base import ListedUpload, RemoteFile, Source
from monitor.sources.local_files import read_local_file
from storage.probe_cache import run_key
from storage.probe_jobs import (
    OVER_BUDGET,
    PROBE_ASKED,
    WAITING_STATES,
    probe_candidates,
    upload_by_pk,
)
from storage.records import UploadRecord, UploadState

log = logging.getLogger(__name__)

SWEEP_INTERVAL_S = 30.0
MAX_DOWNLOAD_BYTES = 2 * 1024**3  # a LoRA; a checkpoint has [probe] checkpoint_max_bytes
HASH_CHUNK_BYTES = 4 * 1024 * 1024


class CheckpointOverBudget(SourceRejected):
    """A checkpoint larger than ``[probe] checkpoint_max_bytes``: recorded, never probed."""


class ProbeWorker:
    """One probe at a time (one GPU); everything else stays on the event loop."""

    def __init__(
        self,
        runtime: Runtime,
        prober: Prober,
        sources: Mapping[str, Source],
        queue: InProcessQueue | None = None,
        *,
        observe: Callable[[float], None] | None = None,
    ) -> None:
        self._runtime = runtime
        self._prober = prober
        self._sources = sources
        self.queue = queue or InProcessQueue()
        self._observe = observe
        self._work_dir = runtime.settings.data_dir / "probe-downloads"

    @property
    def prober(self) -> Prober:
        """The prober; its thread also runs the web UI's style back-scans (`Backscans`)."""
        return self._prober

    async def sweep(self) -> int:
        """Queue every upload waiting for a probe; returns how many were newly queued."""
        return await sweep(self._runtime, self.queue)

    async def run(self, sweep_interval_s: float = SWEEP_INTERVAL_S) -> None:
        """Sweep and probe until cancelled."""
        async with asyncio.TaskGroup() as group:
            group.create_task(sweeping(self._runtime, self.queue, sweep_interval_s))
            while True:
                upload_pk = await self.queue.take("probe")
                try:
                    await self.probe_upload(upload_pk)
                except Exception:  # a bug: logged with its traceback, the worker goes on
                    log.exception("probe.bug", extra={"upload_pk": upload_pk, "stage": "probe"})
                finally:
                    self.queue.done("probe", upload_pk)

    async def probe_upload(self, upload_pk: int) -> ProbeOutcome | None:
        """Probe one recorded upload and record the outcome; None when it must wait
        (no artist has reference images yet, or the hub cannot deliver the file now) or
        is not waiting for a probe any more."""
        try:
            return await self.probe_job(upload_pk)
        except SourceUnavailable:
            return None

    async def probe_job(self, upload_pk: int) -> ProbeOutcome | None:
        """`probe_upload`, except that a hub unable to deliver the file now raises
        SourceUnavailable (after the upload is put back to waiting), for a job queue to
        retry with backoff. Raises StorageError when the database fails."""
        record = await asyncio.to_thread(upload_by_pk, self._runtime.engine, upload_pk)
        source = self._sources.get(record.source) if record else None
        if record is None or source is None or record.state not in WAITING_STATES:
            return None
        if self._prober.unavailable(record.base_family) is not None:
            return None
        artists, references = await asyncio.to_thread(references_for, self._runtime)
        if not references:
            return None
        store = self._runtime.store
        backscan = record.state == "requeued"  # a back-scan asked for this probe
        await asyncio.to_thread(move, store, "probe", upload_pk, "probing")
        started = time.monotonic()
        try:
            async with self._downloaded(record, source) as path:
                screening, metadata = await asyncio.to_thread(self._screen_local, path)
                base = self._prober.base_for(record.base_family, metadata, record.hub_base_model)
                outcome = await self._prober.probe_async(
                    path,
                    screening,
                    artists,
                    references,
                    family=base,
                    remember_as=run_key(record.source, record.upload_id),
                    kind=record.kind,
                )
        except SourceUnavailable as exc:
            waiting: UploadState = "requeued" if backscan else "screened"
            error = str(exc)
            if (record.error or "").startswith(PROBE_ASKED):  # the leave outlasts a retry
                error = f"{PROBE_ASKED}; {error}"
            await asyncio.to_thread(move, store, "probe", upload_pk, waiting, error=error)
            log.warning("probe.download.later", extra=_extra(record, str(exc)))
            raise
        except CheckpointOverBudget as exc:
            reason = str(exc)
            await asyncio.to_thread(move, store, "probe", upload_pk, "failed", error=reason)
            log.warning("probe.over_budget", extra=_extra(record, reason))
            return ProbeOutcome(ran=False, reason=reason)
        except (SourceRejected, InputError, ProbeError) as exc:
            reason = f"the probe failed: {exc}"
            await asyncio.to_thread(move, store, "probe", upload_pk, "failed", error=reason)
            log.warning("probe.failed", extra=_extra(record, reason))
            return ProbeOutcome(ran=False, reason=reason)
        if self._observe is not None:
            self._observe(time.monotonic() - started)
        await asyncio.to_thread(
            store.record_findings, upload_pk, outcome.matches, backscan=backscan
        )
        await asyncio.to_thread(move, store, "probe", upload_pk, "probed")
        log.info("probe.done", extra=_extra(record, f"{len(outcome.matches)} findings"))
        return outcome

    @contextlib.asynccontextmanager
    async def _downloaded(self, record: UploadRecord, source: Source) -> AsyncIterator[Path]:
        upload = await source.hydrate(ListedUpload(record.upload_id, record.name))
        file = _screened_file(upload.files)
        checkpoint = record.kind == "checkpoint"
        limit = self._runtime.settings.probe.checkpoint_max_bytes if checkpoint else None
        if (record.error or "").startswith(PROBE_ASKED):
            limit = None  # a moderator queued it past the budget; the disk floor still holds
        if limit is not None and file.size is not None and file.size > limit:
            raise CheckpointOverBudget(_over_budget(file.size, limit))
        if not checkpoint and file.size is not None and file.size > MAX_DOWNLOAD_BYTES:
            raise SourceRejected(f"{file.name} is larger than a LoRA ({file.size:,} bytes)")
        self._work_dir.mkdir(parents=True, exist_ok=True)
        if checkpoint:
            self._check_disk(file.size or 0)
        dest = self._work_dir / f"{record.id}.safetensors"
        try:
            size = await source.download(file, dest)
            if limit is not None and size > limit:
                raise CheckpointOverBudget(_over_budget(size, limit))
            if checkpoint:
                await asyncio.to_thread(_check_sha256, dest, file)
            yield dest
        finally:
            dest.unlink(missing_ok=True)

    def _check_disk(self, size: int) -> None:
        """Wait (SourceUnavailable: retried later) while the download would leave less
        than ``[probe] checkpoint_min_free_bytes`` free."""
        free = shutil.disk_usage(self._work_dir).free
        keep = self._runtime.settings.probe.checkpoint_min_free_bytes
        if free - size < keep:
            raise SourceUnavailable(
                f"not enough disk for the checkpoint: {free / 1e9:.1f} GB free, "
                f"{size / 1e9:.1f} GB needed and {keep / 1e9:.1f} GB kept free"
            )

    def _screen_local(self, path: Path) -> tuple[Screening, Mapping[str, str]]:
        """The downloaded file's header screened again (the probe plans from its names),
        and its metadata (which names the base it was trained on)."""
        header = read_local_file(path).header
        index = ArtistIndex.build(self._runtime.store.artist_refs())
        return screen_header(header, index), header.metadata


def _screened_file(files: tuple[RemoteFile, ...]) -> RemoteFile:
    chosen = next((f for f in files if f.screen and f.name.endswith(".safetensors")), None)
    if chosen is None:
        raise SourceRejected("the upload has no safetensors file to probe")
    return chosen


def _over_budget(size: int, limit: int) -> str:
    return f"{OVER_BUDGET} ({limit / 1e9:.1f} GB): the checkpoint is {size / 1e9:.2f} GB"


def _check_sha256(path: Path, file: RemoteFile) -> None:
    """A downloaded checkpoint against the hub's SHA-256 (when it gave one); a mismatch is
    a transfer fault, retried later (SourceUnavailable), never probed."""
    expected = file.sha256
    if expected is None:
        return
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    got = digest.hexdigest()
    if got != expected:
        raise SourceUnavailable(
            f"{file.name}: the download's SHA-256 {got[:12]}… is not the hub's "
            f"{expected[:12]}…; it is fetched again later"
        )


def _extra(record: UploadRecord, reason: str) -> dict[str, str]:
    return {
        "source": record.source,
        "upload_id": record.upload_id,
        "stage": "probe",
        "reason": reason,
    }


async def sweep(runtime: Runtime, queue: JobQueue) -> int:
    """Queue every upload waiting for a probe; returns how many were newly queued."""
    families = list(runtime.settings.probe.base_models)
    pks = await asyncio.to_thread(probe_candidates, runtime.engine, families)
    return sum([await queue.enqueue("probe", pk) for pk in pks])


async def sweeping(runtime: Runtime, queue: JobQueue, interval_s: float) -> None:
    """`sweep` every ``interval_s`` seconds until cancelled."""
    while True:
        try:
            queued = await sweep(runtime, queue)
        except Exception:  # a bug or a database fault: logged, the next sweep retries
            log.exception("probe.sweep.failed")
        else:
            if queued:
                log.info("probe.sweep.queued", extra={"stage": "probe", "count": queued})
        await asyncio.sleep(interval_s)
