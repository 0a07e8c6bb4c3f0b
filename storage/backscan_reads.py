"""What a back-scan reads: every recorded upload's screened text, streamed in batches by id
(keyset pages, one short transaction each), so a back-scan of a large database holds one
batch in memory and never blocks writers for long.

Each upload keeps the groups of fields its screening read (``upload.screen_fields``, from
`detectors.rescreen.screen_groups`, as runs of one source: ``[[[source, [text, …]], …], …]``),
written when its files are recorded; an upload recorded
before that column existed gets it computed from its stored metadata and hub text the first
time a back-scan reads it.

A back-scan by style reads the other list here: the probed LoRAs of the families with a
base model (`BackscanReads.probed`), whose kept probe runs it scores again, and puts those
without a kept run back in the probe's queue (`BackscanReads.requeue`).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar
from typing import cast as type_cast

from sqlalchemy import ColumnElement, CursorResult, Engine, Text, cast, func, update
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from detectors.errors import StorageError
from detectors.rescreen import StoredFile, screen_groups
from detectors.results import FileFormat, TextField
from storage.engine import error_summary, write_engine
from storage.loaders import text_fields
from storage.models import ModelFile, Source, Upload
from storage.probe_jobs import PROBED_KINDS

T = TypeVar("T")

BATCH_SIZE = 5_000
# SQL NULL, or JSON null where an ORM insert wrote None.
_NOT_COMPUTED = (None, "null")


@dataclass(frozen=True, slots=True)
class StoredUpload:
    """One recorded upload's screened text (``upload_pk``: its database key).

    ``text`` holds every field's text between non-letters (the stored JSON as it is, when it
    has no escapes): enough for `detectors.rescreen.might_name`; :meth:`groups` decodes the
    fields only for the few uploads that pass it.
    """

    upload_pk: int
    text: str

    def groups(self) -> tuple[tuple[TextField, ...], ...]:
        return _groups(_json_list(self.text))


@dataclass(frozen=True, slots=True)
class ProbedUpload:
    """A recorded upload the probe has run on (``upload_pk``: its database key)."""

    upload_pk: int
    source: str
    upload_id: str


class BackscanReads:
    """The back-scans' read model over one engine: the recorded uploads' screened text in
    batches, the probed LoRAs, and putting probed uploads back in the probe's queue."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._writer = write_engine(engine)

    def count(self) -> int:
        """How many uploads are recorded."""
        return self._run(
            self._engine, lambda s: s.exec(select(func.count()).select_from(Upload)).one()
        )

    def batches(self, size: int = BATCH_SIZE) -> Iterator[list[StoredUpload]]:
        """Every recorded upload, oldest first, ``size`` at a time."""
        after = 0
        while True:
            rows = self._run(self._engine, partial(_page, after=after, size=size))
            if not rows:
                return
            missing = [pk for pk, text in rows if text in _NOT_COMPUTED]
            filled = self._run(self._writer, partial(refresh_screen_fields, upload_pks=missing))
            yield [
                StoredUpload(
                    pk, _cheap_text(json.dumps(filled[pk]) if text in _NOT_COMPUTED else text)
                )
                for pk, text in rows
            ]
            after = rows[-1][0]

    def probed_count(self, families: Collection[str]) -> int:
        """How many LoRAs of ``families`` the probe has run on."""
        return self._run(self._engine, partial(_probed_count, families=families))

    def probed(
        self, families: Collection[str], size: int = BATCH_SIZE
    ) -> Iterator[list[ProbedUpload]]:
        """The LoRAs of ``families`` the probe has run on (state "probed"), oldest first."""
        after = 0
        while True:
            page = partial(_probed_page, families=families, after=after, size=size)
            batch = self._run(self._engine, page)
            if not batch:
                return
            yield batch
            after = batch[-1].upload_pk

    def requeue(self, upload_pks: Iterable[int]) -> int:
        """Put probed uploads back in the probe's queue (state "requeued", which the probe
        worker takes like "screened" and whose findings it marks as a back-scan's).
        Returns how many were still "probed" and are now queued."""
        wanted = sorted(set(upload_pks))
        if not wanted:
            return 0
        return self._run(self._writer, partial(_requeue, upload_pks=wanted))

    def _run(self, engine: Engine, work: Callable[[Session], T]) -> T:
        try:
            with Session(engine) as session, session.begin():
                return work(session)
        except SQLAlchemyError as exc:
            raise StorageError(f"reading recorded uploads failed: {error_summary(exc)}") from exc


def refresh_screen_fields(session: Session, upload_pks: Iterable[int]) -> dict[int, list[Any]]:
    """Compute and store the screened text of these uploads from their files and hub text;
    returns it by upload key."""
    wanted = sorted(set(upload_pks))
    if not wanted:
        return {}
    files: dict[int, list[StoredFile]] = defaultdict(list)
    rows = session.exec(
        select(ModelFile.upload_pk, ModelFile.format, ModelFile.header_metadata)
        .where(col(ModelFile.upload_pk).in_(wanted))
        .order_by(col(ModelFile.id))
    ).all()
    for upload_pk, fmt, metadata in rows:
        values = {str(k): v for k, v in metadata.items() if isinstance(v, str)}
        files[upload_pk].append(StoredFile(type_cast(FileFormat, fmt), values))
    hub = session.exec(select(Upload.id, Upload.hub_text).where(col(Upload.id).in_(wanted))).all()
    filled: dict[int, list[Any]] = {}
    for key, hub_text in hub:
        if key is not None:
            groups = screen_groups(files[key], text_fields(list(hub_text)))
            filled[key] = [_runs(group) for group in groups]
    if filled:  # a bulk UPDATE by primary key: one executemany
        session.execute(
            update(Upload), [{"id": pk, "screen_fields": groups} for pk, groups in filled.items()]
        )
    return filled


def _probed_filter(families: Collection[str]) -> list[ColumnElement[bool]]:
    return [
        col(Upload.state) == "probed",
        col(Upload.kind).in_(PROBED_KINDS),
        col(Upload.base_family).in_(list(families)),
    ]


def _probed_count(session: Session, *, families: Collection[str]) -> int:
    query = select(func.count()).select_from(Upload).where(*_probed_filter(families))
    return session.exec(query).one()


def _probed_page(
    session: Session, *, families: Collection[str], after: int, size: int
) -> list[ProbedUpload]:
    rows = session.exec(
        select(Upload.id, Source.name, Upload.upload_id)
        .join(Source, col(Source.id) == col(Upload.source_id))
        .where(*_probed_filter(families), col(Upload.id) > after)
        .order_by(col(Upload.id))
        .limit(size)
    ).all()
    return [ProbedUpload(pk, source, upload_id) for pk, source, upload_id in rows if pk]


def _requeue(session: Session, *, upload_pks: list[int]) -> int:
    result = session.execute(
        update(Upload)
        .where(col(Upload.id).in_(upload_pks), col(Upload.state) == "probed")
        .values(state="requeued", updated_at=datetime.now(UTC))
    )
    # An UPDATE's result is a CursorResult (rowcount); Session.execute is typed as Result.
    return type_cast("CursorResult[Any]", result).rowcount


def _page(session: Session, *, after: int, size: int) -> list[tuple[int, str | None]]:
    """A page of (upload key, screened text as stored JSON); the JSON is left undecoded."""
    rows = session.execute(
        select(col(Upload.id), cast(col(Upload.screen_fields), Text))
        .where(col(Upload.id) > after)
        .order_by(col(Upload.id))
        .limit(size)
    ).all()
    return [(pk, text) for pk, text in rows]


def _cheap_text(stored: str) -> str:
    """The stored JSON itself when no escape can hide a letter in it, else its decoded texts
    (so ``\\u00e4`` is there as ``ä``), each kept whole."""
    if "\\" not in stored:
        return stored
    return "\n".join(f.text for group in _groups(_json_list(stored)) for f in group)


def _json_list(stored: str) -> list[Any]:
    try:
        value = json.loads(stored)
    except ValueError:  # only storage writes the column: unreadable means nothing to screen
        return []
    return value if isinstance(value, list) else []


def _runs(fields: Sequence[TextField]) -> list[Any]:
    """A group stored compactly, in order: ``[[source, [text, …]], …]`` per run of one source."""
    runs: list[Any] = []
    for field in fields:
        if runs and runs[-1][0] == field.source:
            runs[-1][1].append(field.text)
        else:
            runs.append([field.source, [field.text]])
    return runs


def _groups(raw: list[Any]) -> tuple[tuple[TextField, ...], ...]:
    """The groups back from :func:`_runs` form, read tolerantly (malformed parts skipped)."""
    groups = []
    for group in raw:
        fields = []
        for run in group if isinstance(group, list) else ():
            if isinstance(run, list) and len(run) == 2 and isinstance(run[0], str):
                texts = run[1] if isinstance(run[1], list) else []
                fields += [TextField(run[0], t) for t in texts if isinstance(t, str)]
        groups.append(tuple(fields))
    return tuple(groups)
