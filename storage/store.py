"""The repository the CLI, the pipeline and the web UI call. Sync: async callers use
``asyncio.to_thread``.

Every write runs in one transaction that is safe to repeat: rows are found by their
unique keys before they are inserted, and when two processes insert the same key at once
the loser's ``IntegrityError`` rolls its transaction back and the whole step runs again,
now finding the winner's row. Database errors leave as ``StorageError``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar, get_args

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from detectors.errors import StorageError
from detectors.results import ArtistMatch, ArtistRef, BaseFamily, Kind, TextField, merge_matches
from storage import artists
from storage.backscan_reads import refresh_screen_fields
from storage.loaders import (
    artist_records,
    finding_records,
    pk,
    source_record,
    upload_records,
)
from storage.models import Artist, Finding, ReferenceImage, Source, Subscription, Upload, User
from storage.outbox import enqueue_alerts
from storage.records import (
    ArtistRecord,
    ArtistRemoval,
    FileRecord,
    FindingRecord,
    FindingState,
    SourceRecord,
    StoreCounts,
    UploadRecord,
    UploadState,
)
from storage.transactions import Transactions
from storage.writers import add_evidence, add_files, check_artists

logger = logging.getLogger(__name__)

T = TypeVar("T")


def utc_now() -> datetime:
    return datetime.now(UTC)


class Store:
    """Artists, sources, uploads and findings over one engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utc_now) -> None:
        self._engine = engine
        self._tx = Transactions(engine, clock)
        self._clock = clock

    # -- artists ---------------------------------------------------------------------

    def add_artist(
        self, name: str, aliases: Iterable[str] = (), email: str | None = None
    ) -> ArtistRecord:
        """Register an artist. Raises ``InputError`` when the name (any case) is taken."""
        aliases = list(aliases)

        def work(session: Session) -> ArtistRecord:
            artist = artists.create_artist(session, name, aliases, email, self._clock())
            return artist_records(session, [artist])[0]

        return self._write("add_artist", work)

    def add_alias(self, artist: str | int, alias: str) -> ArtistRecord:
        """Give an artist (by name or id) another alias; an alias it already has is a no-op.
        Raises ``InputError`` for an unknown artist."""

        def work(session: Session) -> ArtistRecord:
            row = artists.find_artist(session, artist)
            artists.add_aliases(session, row, [alias])
            return artist_records(session, [row])[0]

        return self._write("add_alias", work)

    def artist_removal(self, artist: str | int, *, remove: bool = False) -> ArtistRemoval:
        """What removing an artist takes with it (and, with ``remove``, removes it all in one
        transaction): aliases, reference image links, findings with their evidence and audit
        entries, subscriptions with their undelivered alerts. Users linked to the artist keep
        their account, unlinked. ``InputError`` for an unknown artist."""

        def work(session: Session) -> ArtistRemoval:
            row = artists.find_artist(session, artist)
            artist_id = pk(row)

            def count(model: Any, column: Any) -> int:
                return int(
                    session.exec(
                        select(func.count()).select_from(model).where(column == artist_id)
                    ).one()
                )

            removal = ArtistRemoval(
                name=row.name,
                findings=count(Finding, col(Finding.artist_id)),
                subscriptions=count(Subscription, col(Subscription.artist_id)),
                images=count(ReferenceImage, col(ReferenceImage.artist_id)),
                users=count(User, col(User.artist_id)),
            )
            if remove:
                session.delete(row)  # the foreign keys cascade (users: set null)
            return removal

        if remove:
            return self._write("remove_artist", work)
        return self._read("artist_removal", work)

    def import_artists(self, entries: Iterable[artists.ArtistEntry]) -> tuple[int, int]:
        """Register (name, aliases, email) entries in one transaction; known names gain
        their missing aliases. Returns (registered, updated)."""
        listed = [(name, list(aliases), email) for name, aliases, email in entries]
        return self._write(
            "import_artists", lambda s: artists.import_artists(s, listed, self._clock())
        )

    def add_reference_image(
        self,
        artist_id: int,
        sha256: str,
        *,
        mime: str,
        width: int,
        height: int,
        size: int,
        thumb_sha256: str | None = None,
    ) -> bool:
        """Link a blob (`storage.blobs.BlobStore` key) to an artist, with the blob of its
        thumbnail when one was made; False if already linked."""
        return self._write(
            "add_reference_image",
            lambda s: artists.add_reference_image(
                s,
                artist_id,
                sha256,
                mime=mime,
                width=width,
                height=height,
                size=size,
                thumb_sha256=thumb_sha256,
                now=self._clock(),
            ),
        )

    def list_artists(self) -> list[ArtistRecord]:
        def work(session: Session) -> list[ArtistRecord]:
            rows = session.exec(select(Artist).order_by(col(Artist.name))).all()
            return artist_records(session, rows)

        return self._read("list_artists", work)

    def artist_refs(self) -> list[ArtistRef]:
        """Every artist as the matcher needs it."""
        return [ArtistRef(a.id, a.name, a.aliases) for a in self.list_artists()]

    def counts(self) -> StoreCounts:
        """How many artists, uploads and findings are recorded (the home page's summary)."""

        def work(session: Session) -> StoreCounts:
            def count(table: type[Artist | Upload | Finding]) -> int:
                return session.exec(select(func.count()).select_from(table)).one()

            return StoreCounts(
                artists=count(Artist), uploads=count(Upload), findings=count(Finding)
            )

        return self._read("counts", work)

    # -- sources ---------------------------------------------------------------------

    def ensure_source(self, name: str) -> int:
        """The id of the source called ``name``, created on first use."""
        return self._write("ensure_source", lambda s: pk(self._source(s, name)))

    def get_source(self, name: str) -> SourceRecord:
        return self._write("get_source", lambda s: source_record(self._source(s, name)))

    def save_source(
        self, name: str, *, high_water: str | None, state: dict[str, Any] | None = None
    ) -> SourceRecord:
        """Store a source's poll watermark (and its free-form state, when given)."""

        def work(session: Session) -> SourceRecord:
            source = self._source(session, name)
            source.high_water = high_water
            if state is not None:
                source.state = state
            source.updated_at = self._clock()
            session.add(source)
            session.flush()
            return source_record(source)

        return self._write("save_source", work)

    # -- uploads ---------------------------------------------------------------------

    def record_upload(
        self,
        source: str,
        upload_id: str,
        name: str,
        *,
        url: str | None = None,
        uploader: str | None = None,
        kind: Kind = "unknown",
        base_family: BaseFamily = "unknown",
        files: Sequence[FileRecord] = (),
        hub_text: Sequence[TextField] = (),
        reupload_of: int | None = None,
        hub_base_model: str | None = None,
    ) -> tuple[UploadRecord, bool]:
        """Record an upload once. A repeat of (source, upload_id) changes nothing and
        returns the stored upload with ``created`` False."""

        def work(session: Session) -> tuple[UploadRecord, bool]:
            source_row = self._source(session, source)
            existing = _upload_row(session, pk(source_row), upload_id)
            if existing is not None:
                return upload_records(session, [existing])[0], False
            now = self._clock()
            upload = Upload(
                source_id=pk(source_row),
                upload_id=upload_id,
                name=name,
                url=url,
                uploader=uploader,
                kind=kind,
                base_family=base_family,
                hub_text=[{"source": t.source, "text": t.text} for t in hub_text],
                reupload_of=reupload_of,
                hub_base_model=hub_base_model,
                created_at=now,
                updated_at=now,
            )
            session.add(upload)
            session.flush()
            add_files(session, pk(upload), files)
            refresh_screen_fields(session, [pk(upload)])
            return upload_records(session, [upload])[0], True

        record, created = self._write("record_upload", work)
        if created:
            logger.info(
                "storage.upload.recorded",
                extra={"source": source, "upload_id": upload_id, "stage": "record"},
            )
        return record, created

    def get_upload(self, source: str, upload_id: str) -> UploadRecord | None:
        def work(session: Session) -> UploadRecord | None:
            row = session.exec(
                select(Upload)
                .join(Source, col(Source.id) == col(Upload.source_id))
                .where(Source.name == source, Upload.upload_id == upload_id)
            ).first()
            return None if row is None else upload_records(session, [row])[0]

        return self._read("get_upload", work)

    def set_upload_state(
        self,
        upload_pk: int,
        state: UploadState,
        *,
        error: str | None = None,
        kind: Kind | None = None,
        base_family: BaseFamily | None = None,
        reupload_of: int | None = None,
    ) -> UploadRecord:
        """Move an upload to ``state``; ``error`` is stored (or cleared when None).
        ``kind``, ``base_family`` and ``reupload_of`` are updated only when given."""
        if state not in get_args(UploadState):
            raise ValueError(f"unknown upload state {state!r}")

        def work(session: Session) -> UploadRecord:
            upload = _get(session, Upload, upload_pk)
            upload.state = state
            upload.error = error
            upload.kind = kind or upload.kind
            upload.base_family = base_family or upload.base_family
            upload.reupload_of = reupload_of or upload.reupload_of
            upload.updated_at = self._clock()
            session.add(upload)
            session.flush()
            return upload_records(session, [upload])[0]

        return self._write("set_upload_state", work)

    def list_uploads(self, source: str | None = None) -> list[UploadRecord]:
        """Every recorded upload (of one source, when given), oldest first."""

        def work(session: Session) -> list[UploadRecord]:
            query = select(Upload).order_by(col(Upload.id))
            if source is not None:
                query = query.join(Source, col(Source.id) == col(Upload.source_id)).where(
                    Source.name == source
                )
            return upload_records(session, session.exec(query).all())

        return self._read("list_uploads", work)

    # -- findings --------------------------------------------------------------------

    def record_findings(
        self, upload_pk: int, matches: Sequence[ArtistMatch], *, backscan: bool = False
    ) -> list[FindingRecord]:
        """Record what screening or the probe found in an upload, one finding per artist.

        A repeat never adds rows: a higher score raises the stored one (and takes its
        stage), new evidence is added, known evidence is skipped. ``backscan`` marks the
        findings this call creates as found by a back-scan of earlier uploads. Returns the
        upload's findings for the given artists, in the order first given.
        """
        return self.record_many_findings([(upload_pk, matches)], backscan=backscan)

    def record_many_findings(
        self, found: Sequence[tuple[int, Sequence[ArtistMatch]]], *, backscan: bool = False
    ) -> list[FindingRecord]:
        """`record_findings` for several uploads (upload key, matches) in one transaction."""

        def work(session: Session) -> list[FindingRecord]:
            findings, changed = [], []
            for upload_pk, matches in found:
                merged = merge_matches(matches)
                _get(session, Upload, upload_pk)
                check_artists(session, set(merged))
                for match in merged.values():
                    finding, is_news = self._upsert_finding(session, upload_pk, match, backscan)
                    findings.append(finding)
                    if is_news:
                        changed.append(finding)
            self._enqueue_alerts(session, changed)
            return finding_records(session, findings)

        return self._write("record_findings", work)

    def list_findings(self, state: FindingState | None = None) -> list[FindingRecord]:
        """Findings (in one triage state, when given), highest score first."""

        def work(session: Session) -> list[FindingRecord]:
            query = select(Finding).order_by(col(Finding.score).desc(), col(Finding.id))
            if state is not None:
                query = query.where(Finding.state == state)
            return finding_records(session, session.exec(query).all())

        return self._read("list_findings", work)

    def _upsert_finding(
        self, session: Session, upload_pk: int, match: ArtistMatch, backscan: bool
    ) -> tuple[Finding, bool]:
        """The finding for (upload, artist), created or raised; True when users should hear."""
        now = self._clock()
        finding = session.exec(
            select(Finding).where(
                Finding.upload_pk == upload_pk, Finding.artist_id == match.artist_id
            )
        ).first()
        is_news = finding is None
        if finding is None:
            finding = Finding(
                upload_pk=upload_pk,
                artist_id=match.artist_id,
                score=match.score,
                stage=match.stage,
                backscan=backscan,
                created_at=now,
                updated_at=now,
            )
        elif match.score > finding.score:
            finding.score, finding.stage, finding.updated_at = match.score, match.stage, now
            is_news = True
        session.add(finding)
        session.flush()
        if add_evidence(session, pk(finding), match.evidence, now):
            finding.updated_at = now
            session.add(finding)
        return finding, is_news

    def _enqueue_alerts(self, session: Session, findings: list[Finding]) -> None:
        """Outbox hook: alerts/ writes one delivery per subscriber here, in the same
        transaction as the findings, for findings that are new or whose score rose."""
        enqueue_alerts(session, findings, self._clock())

    # -- plumbing --------------------------------------------------------------------

    def _source(self, session: Session, name: str) -> Source:
        source = session.exec(select(Source).where(Source.name == name)).first()
        if source is None:
            source = Source(name=artists.clean(name, "source name"), updated_at=self._clock())
            session.add(source)
            session.flush()
        return source

    def _write(self, op: str, work: Callable[[Session], T]) -> T:
        return self._tx.write(op, work)

    def _read(self, op: str, work: Callable[[Session], T]) -> T:
        return self._tx.read(op, work)


def _get(session: Session, table: type[Upload], key: int) -> Upload:
    row = session.get(table, key)
    if row is None:
        raise StorageError(f"no {table.__tablename__} with id {key}")
    return row


def _upload_row(session: Session, source_id: int, upload_id: str) -> Upload | None:
    return session.exec(
        select(Upload).where(Upload.source_id == source_id, Upload.upload_id == upload_id)
    ).first()
