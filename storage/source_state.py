"""Queries the pollers need beyond `storage.store.Store`: which listed uploads are already
settled, the files of an upload screened on a later try, and earlier uploads of a file.

Sync, like the store: async callers use ``asyncio.to_thread``. Errors leave as
``StorageError``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from detectors.errors import StorageError
from storage.engine import error_summary, write_engine
from storage.models import ModelFile, Source, Upload
from storage.records import FileRecord

T = TypeVar("T")

# An upload still "new" was interrupted before its screening finished: it is not settled.
UNSETTLED_STATES = ("new",)


class SourceState:
    """The pollers' extra reads and writes over one engine."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._writer = write_engine(engine)

    def settled_upload_ids(self, source: str, upload_ids: Iterable[str]) -> set[str]:
        """Those of ``upload_ids`` recorded for ``source`` past the "new" state."""
        wanted = list(dict.fromkeys(upload_ids))
        if not wanted:
            return set()

        def work(session: Session) -> set[str]:
            rows = session.exec(
                select(Upload.upload_id)
                .join(Source, col(Source.id) == col(Upload.source_id))
                .where(Source.name == source)
                .where(col(Upload.upload_id).in_(wanted))
                .where(col(Upload.state).not_in(UNSETTLED_STATES))
            ).all()
            return set(rows)

        return self._run("settled_upload_ids", self._engine, work)

    def save_files(self, upload_pk: int, files: Sequence[FileRecord]) -> None:
        """Insert or update an upload's files by filename (a retry fills in what failed)."""

        def work(session: Session) -> None:
            rows = session.exec(select(ModelFile).where(ModelFile.upload_pk == upload_pk)).all()
            by_name = {row.filename: row for row in rows}
            for f in files:
                row = by_name.get(f.filename) or ModelFile(upload_pk=upload_pk, filename=f.filename)
                row.sha256, row.size, row.format = f.sha256, f.size, f.format
                row.kind, row.base_family, row.layout = f.kind, f.base_family, f.layout
                row.header_metadata, row.hashes = dict(f.metadata), dict(f.hashes)
                session.add(row)
                by_name[f.filename] = row
            session.flush()

        self._run("save_files", self._writer, work)

    def earliest_upload_with(self, sha256s: Iterable[str], *, besides: int) -> int | None:
        """The first recorded upload (by id) holding a file with one of these sha256s,
        other than upload ``besides``: what a re-upload is a re-upload of."""
        hashes = sorted({h.lower() for h in sha256s if h})
        if not hashes:
            return None

        def work(session: Session) -> int | None:
            row = session.exec(
                select(ModelFile.upload_pk)
                .where(col(ModelFile.sha256).in_(hashes))
                .where(ModelFile.upload_pk != besides)
                .order_by(col(ModelFile.upload_pk))
            ).first()
            return row

        return self._run("earliest_upload_with", self._engine, work)

    def _run(self, op: str, engine: Engine, work: Callable[[Session], T]) -> T:
        try:
            with Session(engine, expire_on_commit=False) as session, session.begin():
                return work(session)
        except SQLAlchemyError as exc:
            raise StorageError(f"{op} failed: {error_summary(exc)}") from exc
