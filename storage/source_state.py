"""Queries the pollers need beyond `storage.store.Store`: which listed uploads are already
settled, the files of an upload screened on a later try, and earlier uploads of a file (by
SHA-256, or by weight fingerprint) with the decisions made on them.

Sync, like the store: async callers use ``asyncio.to_thread``. Errors leave as
``StorageError``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import Engine, and_, or_
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from detectors.errors import StorageError
from detectors.fingerprint import Fingerprint
from storage.backscan_reads import refresh_screen_fields
from storage.engine import error_summary, write_engine
from storage.fingerprint_index import fingerprint_index
from storage.loaders import finding_records
from storage.models import Finding, ModelFile, Source, Upload
from storage.models import Fingerprint as FingerprintRow
from storage.records import FileRecord, FindingRecord

T = TypeVar("T")

# An upload still "new" was interrupted before its screening finished: it is not settled.
UNSETTLED_STATES = ("new",)
AUTOV2_CHARS = 10
# Findings whose re-uploads become findings at once.
DECIDED_STATES = ("confirmed", "taken_down")


class SourceState:
    """The pollers' extra reads and writes over one engine."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._writer = write_engine(engine)

    def settled_upload_ids(self, source: str, upload_ids: Iterable[str]) -> set[str]:
        """Those of ``upload_ids`` recorded for ``source`` past the "new" state."""
        return self._recorded_ids("settled_upload_ids", source, upload_ids, UNSETTLED_STATES)

    def screened_upload_ids(self, source: str, upload_ids: Iterable[str]) -> set[str]:
        """Those of ``upload_ids`` recorded for ``source`` and screened (not "new" and not
        "failed"): what a hub history search need not screen again."""
        return self._recorded_ids(
            "screened_upload_ids", source, upload_ids, (*UNSETTLED_STATES, "failed")
        )

    def _recorded_ids(
        self, name: str, source: str, upload_ids: Iterable[str], excluded: Iterable[str]
    ) -> set[str]:
        """Those of ``upload_ids`` recorded for ``source`` in a state not in ``excluded``."""
        wanted, states = list(dict.fromkeys(upload_ids)), list(excluded)
        if not wanted:
            return set()

        def work(session: Session) -> set[str]:
            rows = session.exec(
                select(Upload.upload_id)
                .join(Source, col(Source.id) == col(Upload.source_id))
                .where(Source.name == source)
                .where(col(Upload.upload_id).in_(wanted))
                .where(col(Upload.state).not_in(states))
            ).all()
            return set(rows)

        return self._run(name, self._engine, work)

    def file_hashes_of(self, source: str, upload_id: str, revision_prefix: str) -> set[str]:
        """The sha256s of the files recorded for ``source``'s upload ``upload_id`` and for
        its revisions (upload ids starting with ``revision_prefix``): what a new revision of
        the same repo need not read again."""

        def work(session: Session) -> set[str]:
            prefix = revision_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            rows = session.exec(
                select(ModelFile.sha256)
                .join(Upload, col(Upload.id) == col(ModelFile.upload_pk))
                .join(Source, col(Source.id) == col(Upload.source_id))
                .where(Source.name == source)
                .where(
                    or_(
                        col(Upload.upload_id) == upload_id,
                        col(Upload.upload_id).like(prefix + "%", escape="\\"),
                    )
                )
                .where(col(Upload.state).not_in(list(UNSETTLED_STATES)))
            ).all()
            return {h for h in rows if h}

        return self._run("file_hashes_of", self._engine, work)

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
                row.fingerprint, row.malformed = f.fingerprint, f.malformed
                session.add(row)
                by_name[f.filename] = row
            session.flush()
            refresh_screen_fields(session, [upload_pk])

        self._run("save_files", self._writer, work)

    def earliest_upload_with(
        self,
        sha256s: Iterable[str],
        *,
        besides: int | None = None,
        autov2s: Iterable[str] = (),
        besides_upload: tuple[str, str] | None = None,
    ) -> int | None:
        """The first recorded upload (by id) holding a file with one of these sha256s, or
        whose sha256 starts with one of these AutoV2 hashes (Civitai's first 10 hex of the
        SHA-256, for files it gives no SHA256 for), other than upload ``besides`` (a key) or
        ``besides_upload`` (source, upload id): what a re-upload is a re-upload of."""
        hashes = sorted({h.lower() for h in sha256s if h})
        prefixes = sorted({h.lower() for h in autov2s if len(h) == AUTOV2_CHARS} - {""})
        if not hashes and not prefixes:
            return None

        def work(session: Session) -> int | None:
            # A prefix is a range of the indexed column: ``[prefix, prefix + "g")`` in hex.
            ranges = [
                and_(col(ModelFile.sha256) >= p, col(ModelFile.sha256) < p + "g") for p in prefixes
            ]
            query = (
                select(ModelFile.upload_pk)
                .where(or_(col(ModelFile.sha256).in_(hashes), *ranges))
                .order_by(col(ModelFile.upload_pk))
            )
            if besides is not None:
                query = query.where(ModelFile.upload_pk != besides)
            if besides_upload is not None:
                own = (
                    select(Upload.id)
                    .join(Source, col(Source.id) == col(Upload.source_id))
                    .where(Source.name == besides_upload[0])
                    .where(Upload.upload_id == besides_upload[1])
                )
                query = query.where(col(ModelFile.upload_pk).not_in(own))
            return session.exec(query).first()

        return self._run("earliest_upload_with", self._engine, work)

    def save_fingerprints(self, upload_pk: int, prints: Sequence[tuple[str, Fingerprint]]) -> None:
        """Store the weight fingerprints of an upload's files (by filename; a repeat replaces)."""
        if not prints:
            return

        def work(session: Session) -> None:
            rows = session.exec(select(FingerprintRow).where(FingerprintRow.upload_pk == upload_pk))
            by_name = {row.filename: row for row in rows.all()}
            for filename, fp in prints:
                row = by_name.get(filename)
                if row is None:
                    row = FingerprintRow(
                        upload_pk=upload_pk,
                        filename=filename,
                        modules_key=fp.modules_key,
                        vector=fp.vector,
                        created_at=datetime.now(UTC),
                    )
                row.modules_key, row.vector = fp.modules_key, fp.vector
                session.add(row)
            session.flush()

        self._run("save_fingerprints", self._writer, work)

    def similar_upload(self, prints: Iterable[Fingerprint], *, besides: int) -> int | None:
        """The first recorded upload (by id), other than ``besides``, with a file whose
        fingerprint is at least ``SIMILAR_AT`` like one of ``prints`` (through the
        process's `storage.fingerprint_index.FingerprintIndex`)."""
        return fingerprint_index(self._engine).similar_upload(prints, besides=besides)

    def decided_findings(self, upload_pk: int) -> list[FindingRecord]:
        """The upload's findings a moderator confirmed or that were taken down."""

        def work(session: Session) -> list[FindingRecord]:
            rows = session.exec(
                select(Finding)
                .where(Finding.upload_pk == upload_pk)
                .where(col(Finding.state).in_(DECIDED_STATES))
                .order_by(col(Finding.id))
            ).all()
            return finding_records(session, rows)

        return self._run("decided_findings", self._engine, work)

    def _run(self, op: str, engine: Engine, work: Callable[[Session], T]) -> T:
        try:
            with Session(engine, expire_on_commit=False) as session, session.begin():
                return work(session)
        except SQLAlchemyError as exc:
            raise StorageError(f"{op} failed: {error_summary(exc)}") from exc
