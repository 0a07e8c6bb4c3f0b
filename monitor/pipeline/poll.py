"""One poll of one source: list what is new, hydrate it, read each header, screen it, and
record the upload and its findings exactly once.

Exactly once rests on three things: storage keys uploads by (source, hub id), so a repeat
is a no-op; a listed upload already past the "new" state is skipped before any request; and
the source's cursor is saved only after a listing that reached its high-water mark, so an
interrupted poll (or a killed process) reads the same stretch again. An upload whose hub
was unavailable is recorded as "failed" with its error and kept in the source's retry
queue (saved at once, with what the listing said about it), then tried again on the next
polls until it is screened or ``retry_limit`` tries are spent. A fault of one upload is
recorded and logged, and the loop goes on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from detectors.errors import (
    InputError,
    RefusedFile,
    SourceError,
    SourceUnavailable,
    StorageError,
    UploadNotReady,
)
from detectors.fingerprint import Fingerprint
from detectors.names import ArtistIndex
from detectors.results import ADAPTER_KINDS, ArtistMatch, FileFormat, SafetensorsHeader
from detectors.screening import (
    Screening,
    screen_header,
)
from monitor.pipeline.record import ReuploadLinker, remote_fingerprint
from monitor.pipeline.states import move
from monitor.sources.base import Cursor, ListedUpload, Listing, RemoteFile, Source, Upload
from monitor.sources.headers import header_reads
from monitor.sources.http import ByteBudget, OverBudget, byte_budget
from storage.records import FileRecord
from storage.source_state import SourceState
from storage.store import Store

log = logging.getLogger(__name__)

# Everything the poller may fetch for one upload (hub JSON, header, fingerprint ranges):
# `[sources] max_bytes_per_upload`.
MAX_BYTES_PER_UPLOAD = 4 * 1024 * 1024
RETRY_LIMIT = 6
UPLOAD_CONCURRENCY = 4
# A listing hint naming the upload an upload is a later revision of (Hugging Face).
REVISION_OF = "revision_of"
REVISION_PREFIX = "revision_prefix"  # what the upload ids of that upload's revisions start with


@dataclass
class PollCounters:
    """Running totals for /metrics (one instance per process, shared by the pollers)."""

    polls: int = 0
    incomplete_polls: int = 0
    listed: int = 0
    screened: int = 0
    flagged: int = 0
    failed: int = 0
    malformed: int = 0
    retried: int = 0
    bytes_fetched: int = 0
    # Called with the seconds each upload's screening took (a /metrics histogram's observe).
    observe_screening: Callable[[float], None] | None = None


@dataclass(frozen=True, slots=True)
class PollSummary:
    """What one poll of one source did; ``bytes_per_upload`` for each upload it screened."""

    source: str
    listed: int
    screened: int
    flagged: int
    failed: int
    retried: int
    bytes_fetched: int
    bytes_per_upload: tuple[int, ...] = ()
    malformed: int = 0
    complete: bool = True
    error: str | None = None


@dataclass(frozen=True, slots=True)
class _Outcome:
    state: Literal["screened", "failed", "unchanged"]
    flagged: bool = False
    malformed: bool = False
    bytes_read: int = 0
    unavailable: str | None = None  # the hub's transient fault, when it failed for one


@dataclass
class _Meter:
    """The bytes one upload cost: what its source's reads report, or, for a hub, everything
    its byte budget counted (hub JSON included), whichever is more."""

    bytes_read: int = 0

    def charge(self, budget: ByteBudget) -> None:
        self.bytes_read = max(self.bytes_read, budget.spent)


@dataclass
class _Screened:
    files: list[FileRecord] = field(default_factory=list)
    matches: list[ArtistMatch] = field(default_factory=list)
    prints: list[tuple[str, Fingerprint]] = field(default_factory=list)
    first: Screening | None = None
    error: str | None = None
    malformed: bool = False


async def fetch_header(source: Source, file: RemoteFile, meter: _Meter) -> SafetensorsHeader:
    """The file's safetensors header by Range reads (`monitor.sources.headers.header_reads`:
    ``PREFIX_BYTES``, then only the missing bytes when the header is longer). Raises
    ``InputError``s for a bad, refused or oversized header and ``SourceError``s from the
    source."""
    reads = header_reads(file.name)
    offset, length = next(reads)
    try:
        while True:
            got = await source.read_bytes(file, offset, length)
            meter.bytes_read += got.bytes_read
            offset, length = reads.send((got.data, got.total_size))
    except StopIteration as done:
        header: SafetensorsHeader = done.value
        return header


@dataclass(frozen=True, slots=True)
class UploadScan:
    """One upload screened on demand (``stylewatch scan hf:…``): what was found and recorded."""

    upload: Upload
    files: tuple[FileRecord, ...]
    first: Screening | None
    matches: tuple[ArtistMatch, ...]
    error: str | None
    bytes_read: int

    @property
    def malformed(self) -> str | None:
        """Why a file's metadata is malformed (the first such file's reason), or None."""
        return next((f"{f.filename}: {f.malformed}" for f in self.files if f.malformed), None)


class Poller:
    """Polls one source into storage. ``poll`` never raises for a hub fault.

    A ``history`` poller records what a hub history search found (`screen_found`): its
    findings are back-scan findings, and an upload its hub failed for is not put in the
    poll's retry queue (the search reads that page again instead).
    """

    def __init__(
        self,
        source: Source,
        store: Store,
        state: SourceState,
        *,
        threshold: float,
        counters: PollCounters | None = None,
        concurrency: int = UPLOAD_CONCURRENCY,
        retry_limit: int = RETRY_LIMIT,
        history: bool = False,
        max_bytes_per_upload: int = MAX_BYTES_PER_UPLOAD,
    ) -> None:
        self.source = source
        self._store, self._state = store, state
        self._threshold = threshold
        self.counters = counters or PollCounters()
        self._slots = asyncio.Semaphore(concurrency)
        self._retry_limit = retry_limit
        self._history = history
        self._max_bytes = max_bytes_per_upload
        self._queue: dict[str, dict[str, Any]] = {}
        self._linker = ReuploadLinker(store, state)
        self._saved = Cursor()
        self._save_lock = asyncio.Lock()

    @property
    def name(self) -> str:
        return self.source.name

    async def poll(self) -> PollSummary:
        """One cycle: list, then screen and record every unsettled and queued upload."""
        record = await asyncio.to_thread(self._store.get_source, self.name)
        self._saved = Cursor(record.high_water, _mapping(record.state.get("cursor")))
        self._queue = dict(_mapping(record.state.get("retry")))
        index = ArtistIndex.build(await asyncio.to_thread(self._store.artist_refs))
        listing = await self._list()
        fresh, queued = await self._work(listing)
        # Revisions of a repo (a hub's later commit of it) after the uploads themselves, so a
        # revision sees the files the first sight of its repo just recorded.
        todo = fresh + queued
        first = [u for u in todo if REVISION_OF not in u.hint]
        later = [u for u in todo if REVISION_OF in u.hint]
        outcomes = await asyncio.gather(*(self._guarded(u, index) for u in first))
        outcomes += await asyncio.gather(*(self._guarded(u, index) for u in later))
        if listing.complete:
            self._saved = listing.cursor
        await self._save()
        return self._summarise(listing, outcomes, retried=len(queued))

    async def screen_found(self, found: Sequence[ListedUpload]) -> PollSummary:
        """Screen and record uploads found outside a poll (a page of a hub search), as a
        poll would, skipping those already screened. ``complete`` is False when the hub
        failed transiently for one of them: the caller should read them again later."""
        index = ArtistIndex.build(await asyncio.to_thread(self._store.artist_refs))
        unique = list({u.upload_id: u for u in found}.values())
        ids = [u.upload_id for u in unique]
        done = await asyncio.to_thread(self._state.screened_upload_ids, self.name, ids)
        todo = [u for u in unique if u.upload_id not in done]
        outcomes = await asyncio.gather(*(self._guarded(u, index) for u in todo))
        error = next((o.unavailable for o in outcomes if o.unavailable), None)
        listing = Listing(tuple(unique), self._saved, complete=error is None, error=error)
        return self._summarise(listing, outcomes, retried=0)

    async def scan_one(self, listed: ListedUpload, only_file: str | None = None) -> UploadScan:
        """Hydrate, screen and record one upload now, as a poll would.

        Raises ``SourceError`` when the hub fails and ``InputError`` when ``only_file`` is
        not one of the upload's files.
        """
        index = ArtistIndex.build(await asyncio.to_thread(self._store.artist_refs))
        upload = await self.source.hydrate(listed)
        if only_file is not None:
            chosen = tuple(replace(f, screen=True) for f in upload.files if f.name == only_file)
            if not chosen:
                names = ", ".join(f.name for f in upload.files) or "none"
                raise InputError(f"{upload.upload_id} has no file {only_file} (files: {names})")
            upload = replace(upload, files=chosen)
        meter = _Meter()
        with byte_budget(self._max_bytes) as budget:
            try:
                screened = await self._screen(upload, index, meter)
            finally:
                meter.charge(budget)
        await self._record(listed, upload, screened, meter)
        return UploadScan(
            upload,
            tuple(screened.files),
            screened.first,
            tuple(screened.matches),
            screened.error,
            meter.bytes_read,
        )

    async def _list(self) -> Listing:
        try:
            return await self.source.list_new(self._saved)
        except SourceError as exc:
            log.warning("poll.list.failed", extra={"source": self.name, "reason": str(exc)})
            return Listing((), self._saved, complete=False, error=str(exc))

    async def _work(self, listing: Listing) -> tuple[list[ListedUpload], list[ListedUpload]]:
        """The listed uploads not yet settled, and the retry queue's uploads."""
        ids = [u.upload_id for u in listing.uploads]
        settled = await asyncio.to_thread(self._state.settled_upload_ids, self.name, ids)
        fresh = [
            u
            for u in listing.uploads
            if u.upload_id not in settled and u.upload_id not in self._queue
        ]
        queued = [_from_entry(k, v) for k, v in self._queue.items()]
        return fresh, queued

    async def _guarded(self, listed: ListedUpload, index: ArtistIndex) -> _Outcome:
        async with self._slots:
            try:
                return await self._process(listed, index)
            except StorageError as exc:
                log.warning(
                    "poll.upload.unrecorded",
                    extra={"source": self.name, "upload_id": listed.upload_id, "reason": str(exc)},
                )
            except Exception:  # a bug: logged with its traceback, the loop goes on
                log.exception(
                    "poll.upload.bug", extra={"source": self.name, "upload_id": listed.upload_id}
                )
            return _Outcome("failed")

    async def _process(self, listed: ListedUpload, index: ArtistIndex) -> _Outcome:
        upload: Upload | None = None
        meter = _Meter()
        try:
            with byte_budget(self._max_bytes) as budget:
                try:
                    upload = await self._new_files_of(listed, await self.source.hydrate(listed))
                    if upload is None:
                        return _Outcome("unchanged", bytes_read=budget.spent)
                    started = time.monotonic()
                    screened = await self._screen(upload, index, meter)
                finally:
                    meter.charge(budget)
            if self.counters.observe_screening is not None:
                self.counters.observe_screening(time.monotonic() - started)
        except SourceUnavailable as exc:
            failed = await self._fail(listed, upload, str(exc), meter, retry=not self._history)
            hub_fault = not isinstance(exc, UploadNotReady)  # the hub itself is unavailable
            return replace(failed, unavailable=str(exc) if hub_fault else None)
        except SourceError as exc:
            return await self._fail(listed, upload, str(exc), meter, retry=False)
        return await self._record(listed, upload, screened, meter)

    async def _screen(self, upload: Upload, index: ArtistIndex, meter: _Meter) -> _Screened:
        result = _Screened()
        for file in upload.files:
            if not file.screen:
                result.files.append(_file_record(file))
                continue
            try:
                header = await fetch_header(self.source, file, meter)
            except (InputError, OverBudget) as exc:  # recorded as unreadable; the rest goes on
                fmt = "pickle" if isinstance(exc, RefusedFile) and exc.format == "pickle" else None
                result.files.append(_file_record(file, format=fmt))
                result.error = result.error or str(exc)
                continue
            hub_text = upload.hub_text if result.first is None else ()
            screening = await asyncio.to_thread(
                screen_header, header, index, hub_text, upload.base_model
            )
            result.first = result.first or screening
            result.matches.extend(screening.matches)
            result.malformed = result.malformed or screening.malformed is not None
            status = await self._fingerprint(upload, file, header, screening, meter, result)
            result.files.append(_file_record(file, screening=screening, fingerprint=status))
        if result.first is None:
            result.matches = index.match(upload.hub_text)
        else:
            result.error = None  # one readable file is enough to screen the upload
        return result

    async def _new_files_of(self, listed: ListedUpload, upload: Upload) -> Upload | None:
        """A revision of a repo with only the model files no earlier upload of the repo
        holds (by sha256); None when it has none: nothing changed that needs a read."""
        repo, prefix = listed.hint.get(REVISION_OF), listed.hint.get(REVISION_PREFIX)
        if not isinstance(repo, str) or not isinstance(prefix, str):
            return upload
        if repo in self._queue:  # the repo itself waits for a retry: it comes first
            return None
        known = await asyncio.to_thread(self._state.file_hashes_of, self.name, repo, prefix)
        files = tuple(f for f in upload.files if not (f.sha256 and f.sha256 in known))
        if not any(f.screen for f in files):
            log.info("poll.revision.unchanged", extra={"source": self.name, "upload_id": repo})
            return None
        return replace(upload, files=files)

    async def _fingerprint(
        self,
        upload: Upload,
        file: RemoteFile,
        header: SafetensorsHeader,
        screening: Screening,
        meter: _Meter,
        result: _Screened,
    ) -> str | None:
        """Read the file's weight fingerprint when its kind has one and the hub's hashes do
        not already link it; what its record says about it."""
        if screening.kind not in ADAPTER_KINDS:
            return None
        if await self._known(upload, file):
            return "known"
        got = await remote_fingerprint(self.source, file, header)
        meter.bytes_read += got.bytes_read
        if got.fingerprint is not None:
            result.prints.append((file.name, got.fingerprint))
        return got.status

    async def _known(self, upload: Upload, file: RemoteFile) -> bool:
        """Whether an earlier upload holds this very file by the hub's own hashes (SHA256,
        else AutoV2): the exact link needs no weight fingerprint, so none is read."""
        sha256s = [file.sha256] if file.sha256 else []
        autov2s = [file.hashes["autov2"]] if not sha256s and "autov2" in file.hashes else []
        if not sha256s and not autov2s:
            return False
        earlier = await asyncio.to_thread(
            lambda: self._state.earliest_upload_with(
                sha256s, autov2s=autov2s, besides_upload=(self.name, upload.upload_id)
            )
        )
        return earlier is not None

    async def _record(
        self, listed: ListedUpload, upload: Upload, screened: _Screened, meter: _Meter
    ) -> _Outcome:
        first = screened.first
        kind = first.kind if first else "unknown"
        family = first.base_family if first else "unknown"
        pk = await self._record_upload(upload, (), listed)
        await asyncio.to_thread(self._state.save_files, pk, screened.files)
        await asyncio.to_thread(
            lambda: self._store.record_findings(pk, screened.matches, backscan=self._history)
        )
        hashes = [f.sha256 for f in screened.files if f.sha256]
        autov2s = [
            f.hashes["autov2"] for f in screened.files if not f.sha256 and "autov2" in f.hashes
        ]
        earlier = await asyncio.to_thread(self._linker.link, pk, hashes, screened.prints, autov2s)
        state: Literal["screened", "failed"] = "failed" if screened.error else "screened"
        await asyncio.to_thread(
            move,
            self._store,
            "poll",
            pk,
            state,
            error=screened.error,
            kind=kind,
            base_family=family,
            reupload_of=earlier,
        )
        await self._dequeue(listed.upload_id)
        flagged = any(m.score >= self._threshold for m in screened.matches)
        log.info(
            "poll.upload.%s",
            "flagged" if flagged else state,
            extra={
                "source": self.name,
                "upload_id": upload.upload_id,
                "stage": "screening",
                "bytes": meter.bytes_read,
                "malformed": screened.malformed,
            },
        )
        return _Outcome(
            state, flagged=flagged, malformed=screened.malformed, bytes_read=meter.bytes_read
        )

    async def _record_upload(
        self, upload: Upload | None, files: Sequence[FileRecord], listed: ListedUpload
    ) -> int:
        record, _ = await asyncio.to_thread(
            lambda: self._store.record_upload(
                self.name,
                listed.upload_id,
                upload.name if upload else listed.name,
                url=upload.url if upload else None,
                uploader=upload.uploader if upload else None,
                files=files,
                hub_text=upload.hub_text if upload else (),
                hub_base_model=upload.base_model if upload else None,
            )
        )
        return record.id

    async def _fail(
        self, listed: ListedUpload, upload: Upload | None, error: str, meter: _Meter, *, retry: bool
    ) -> _Outcome:
        attempts = int(self._queue.get(listed.upload_id, {}).get("attempts", 0)) + 1
        if retry and attempts < self._retry_limit:
            await self._enqueue(listed, attempts, error)
        else:
            await self._dequeue(listed.upload_id)
        files = [_file_record(f) for f in upload.files] if upload else []
        pk = await self._record_upload(upload, files, listed)
        await asyncio.to_thread(move, self._store, "poll", pk, "failed", error=error)
        log.warning(
            "poll.upload.failed",
            extra={
                "source": self.name,
                "upload_id": listed.upload_id,
                "reason": error,
                "attempts": attempts,
                "will_retry": retry and attempts < self._retry_limit,
            },
        )
        return _Outcome("failed", bytes_read=meter.bytes_read)

    async def _enqueue(self, listed: ListedUpload, attempts: int, error: str) -> None:
        self._queue[listed.upload_id] = {
            "name": listed.name,
            "position": listed.position,
            "hint": dict(listed.hint),
            "attempts": attempts,
            "error": error,
        }
        await self._save()  # before the failure is recorded: a crash cannot lose the retry

    async def _dequeue(self, upload_id: str) -> None:
        if self._queue.pop(upload_id, None) is not None:
            await self._save()

    async def _save(self) -> None:
        async with self._save_lock:
            state = {"cursor": dict(self._saved.extra), "retry": dict(self._queue)}
            await asyncio.to_thread(
                self._store.save_source, self.name, high_water=self._saved.high_water, state=state
            )

    def _summarise(
        self, listing: Listing, outcomes: Sequence[_Outcome], *, retried: int
    ) -> PollSummary:
        summary = PollSummary(
            source=self.name,
            listed=len(listing.uploads),
            screened=sum(o.state == "screened" for o in outcomes),
            flagged=sum(o.flagged for o in outcomes),
            failed=sum(o.state == "failed" for o in outcomes),
            malformed=sum(o.malformed for o in outcomes),
            retried=retried,
            bytes_fetched=sum(o.bytes_read for o in outcomes),
            bytes_per_upload=tuple(o.bytes_read for o in outcomes if o.state == "screened"),
            complete=listing.complete,
            error=listing.error,
        )
        _count(self.counters, summary)
        return summary


def _count(counters: PollCounters, summary: PollSummary) -> None:
    counters.polls += 1
    counters.incomplete_polls += not summary.complete
    counters.listed += summary.listed
    counters.screened += summary.screened
    counters.flagged += summary.flagged
    counters.failed += summary.failed
    counters.malformed += summary.malformed
    counters.retried += summary.retried
    counters.bytes_fetched += summary.bytes_fetched


def _file_record(
    file: RemoteFile,
    *,
    screening: Screening | None = None,
    format: str | None = None,
    fingerprint: str | None = None,
) -> FileRecord:
    hashes = {k: v.lower() if k == "sha256" else v for k, v in file.hashes.items()}
    if screening is None:
        fmt: FileFormat = "pickle" if format == "pickle" else "unknown"
        return FileRecord(file.name, file.sha256, file.size, format=fmt, hashes=hashes)
    return FileRecord(
        filename=file.name,
        sha256=file.sha256,
        size=screening.header.file_size,
        format=screening.format,
        kind=screening.kind,
        base_family=screening.base_family,
        layout=screening.layout,
        metadata=dict(screening.header.metadata),
        hashes=hashes,
        fingerprint=fingerprint,
        malformed=screening.malformed,
    )


def _mapping(raw: object) -> Mapping[str, Any]:
    return raw if isinstance(raw, dict) else {}


def _from_entry(upload_id: str, entry: Any) -> ListedUpload:
    entry = _mapping(entry)
    position = entry.get("position")
    return ListedUpload(
        upload_id=upload_id,
        name=str(entry.get("name") or upload_id),
        position=position if isinstance(position, str) else None,
        hint=_mapping(entry.get("hint")),
    )
