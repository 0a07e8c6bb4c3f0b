"""Read models of the web UI and JSON API: the triage queue, a finding with its upload
and evidence, an artist's portal, and the counts behind /metrics."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Engine, and_, func, or_
from sqlmodel import Session, col, select

from storage.loaders import artist_records, finding_records, upload_records
from storage.models import (
    Alias,
    Artist,
    Finding,
    ModelFile,
    Outbox,
    ReferenceImage,
    Source,
    Upload,
)
from storage.models import Evidence as EvidenceRow
from storage.records import ArtistRecord, FindingRecord, FindingState, UploadRecord
from storage.transactions import Transactions, utc_now

MAX_PAGE = 500


@dataclass(frozen=True, slots=True)
class EvidenceItem:
    """One piece of evidence; ``blob_sha256`` names an image (an evidence sheet) if any."""

    source: str
    text: str
    blob_sha256: str | None


@dataclass(frozen=True, slots=True)
class FindingView:
    """A finding with its upload, its evidence and the artist's names (for highlighting)."""

    finding: FindingRecord
    upload: UploadRecord
    evidence: tuple[EvidenceItem, ...]
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ReferenceImageRecord:
    sha256: str
    mime: str
    width: int
    height: int
    size: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    uploads_by_source: dict[str, int]
    findings_by_state: dict[str, int]
    deliveries_by_status: dict[str, int]
    malformed_by_source: dict[str, int]  # uploads with a file whose metadata is malformed


QUEUE_PAGE = 50
QueueSort = Literal["score", "newest", "oldest"]


@dataclass(frozen=True, slots=True)
class QueueFilter:
    """What a moderator narrowed the queue to; every field is optional."""

    text: str = ""  # upload name, hub id, uploader, artist name, or a file's sha256
    artist: str = ""  # an artist's registered name (any case)
    source: str = ""
    stage: str = ""
    min_score: float = 0.0
    since: datetime | None = None
    sort: QueueSort = "score"


@dataclass(frozen=True, slots=True)
class QueuePage:
    views: list[FindingView]
    total: int  # findings matching the filter, on every page
    next_after: int | None  # the cursor of the next page (a finding id), None on the last


class WebQueries:
    """What the pages and the API read, plus the artist portal's small edits."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utc_now) -> None:
        self._tx = Transactions(engine, clock)

    def queue(self, states: Sequence[FindingState], limit: int = MAX_PAGE) -> list[FindingView]:
        """Findings in these states, highest score first, then oldest first."""

        def work(session: Session) -> list[FindingView]:
            rows = session.exec(
                select(Finding)
                .where(col(Finding.state).in_(states))
                .order_by(col(Finding.score).desc(), col(Finding.created_at), col(Finding.id))
                .limit(min(limit, MAX_PAGE))
            ).all()
            return _views(session, rows)

        return self._tx.read("queue", work)

    def queue_page(
        self,
        states: Sequence[FindingState],
        where: QueueFilter,
        after: int | None = None,
        limit: int = QUEUE_PAGE,
    ) -> QueuePage:
        """One page of the queue, filtered and sorted as asked, by keyset: ``after`` is the
        last finding of the page before, so a page never shifts when findings are decided."""

        def work(session: Session) -> QueuePage:
            query = _queue_filtered(select(Finding), states, where)
            counted = _queue_filtered(select(func.count(col(Finding.id))), states, where)
            total = session.exec(counted).one()
            if after is not None:
                query = query.where(_after(session, after, where.sort))
            rows = session.exec(query.order_by(*_queue_order(where.sort)).limit(limit + 1)).all()
            more = len(rows) > limit
            rows = rows[:limit]
            next_after = rows[-1].id if more and rows else None
            return QueuePage(_views(session, rows), int(total), next_after)

        return self._tx.read("queue_page", work)

    def malformed_uploads(self, limit: int = MAX_PAGE) -> list[UploadRecord]:
        """Uploads with a file whose metadata is malformed, newest first."""

        def work(session: Session) -> list[UploadRecord]:
            odd = select(ModelFile.upload_pk).where(col(ModelFile.malformed).is_not(None))
            rows = session.exec(
                select(Upload)
                .where(col(Upload.id).in_(odd))
                .order_by(col(Upload.created_at).desc(), col(Upload.id).desc())
                .limit(min(limit, MAX_PAGE))
            ).all()
            return upload_records(session, rows)

        return self._tx.read("malformed_uploads", work)

    def finding(self, finding_id: int) -> FindingView | None:
        def work(session: Session) -> FindingView | None:
            row = session.get(Finding, finding_id)
            return None if row is None else _views(session, [row])[0]

        return self._tx.read("finding", work)

    def findings(
        self,
        state: FindingState | None = None,
        artist_id: int | None = None,
        limit: int = MAX_PAGE,
        offset: int = 0,
    ) -> list[FindingRecord]:
        """Findings, newest first, filtered by state and artist when given."""

        def work(session: Session) -> list[FindingRecord]:
            query = select(Finding).order_by(col(Finding.id).desc())
            if state is not None:
                query = query.where(Finding.state == state)
            if artist_id is not None:
                query = query.where(Finding.artist_id == artist_id)
            rows = session.exec(query.offset(offset).limit(min(limit, MAX_PAGE))).all()
            return finding_records(session, rows)

        return self._tx.read("findings", work)

    def uploads(
        self, source: str | None = None, limit: int = MAX_PAGE, offset: int = 0
    ) -> list[UploadRecord]:
        """Uploads, newest first (of one source, when given)."""

        def work(session: Session) -> list[UploadRecord]:
            query = select(Upload).order_by(col(Upload.id).desc())
            if source is not None:
                query = query.join(Source, col(Source.id) == col(Upload.source_id)).where(
                    Source.name == source
                )
            rows = session.exec(query.offset(offset).limit(min(limit, MAX_PAGE))).all()
            return upload_records(session, rows)

        return self._tx.read("uploads", work)

    def upload(self, upload_pk: int) -> UploadRecord | None:
        def work(session: Session) -> UploadRecord | None:
            row = session.get(Upload, upload_pk)
            return None if row is None else upload_records(session, [row])[0]

        return self._tx.read("upload", work)

    def artist(self, artist_id: int) -> ArtistRecord | None:
        def work(session: Session) -> ArtistRecord | None:
            row = session.get(Artist, artist_id)
            return None if row is None else artist_records(session, [row])[0]

        return self._tx.read("artist", work)

    def remove_alias(self, artist_id: int, alias: str) -> bool:
        def work(session: Session) -> bool:
            row = session.exec(
                select(Alias).where(Alias.artist_id == artist_id, Alias.alias == alias)
            ).first()
            if row is not None:
                session.delete(row)
            return row is not None

        return self._tx.write("remove_alias", work)

    def reference_images(self, artist_id: int) -> list[ReferenceImageRecord]:
        def work(session: Session) -> list[ReferenceImageRecord]:
            rows = session.exec(
                select(ReferenceImage)
                .where(ReferenceImage.artist_id == artist_id)
                .order_by(col(ReferenceImage.id))
            ).all()
            return [
                ReferenceImageRecord(r.sha256, r.mime, r.width, r.height, r.size, r.created_at)
                for r in rows
            ]

        return self._tx.read("reference_images", work)

    def thumbnail_of(self, sha256: str) -> str | None:
        """The blob key of the thumbnail made when this reference image was taken, if any."""

        def work(session: Session) -> str | None:
            return session.exec(
                select(ReferenceImage.thumb_sha256).where(
                    ReferenceImage.sha256 == sha256,
                    col(ReferenceImage.thumb_sha256).is_not(None),
                )
            ).first()

        return self._tx.read("thumbnail_of", work)

    def remove_reference_image(self, artist_id: int, sha256: str) -> bool:
        def work(session: Session) -> bool:
            row = session.exec(
                select(ReferenceImage).where(
                    ReferenceImage.artist_id == artist_id, ReferenceImage.sha256 == sha256
                )
            ).first()
            if row is not None:
                session.delete(row)
            return row is not None

        return self._tx.write("remove_reference_image", work)

    def blob_belongs_to_artist(self, artist_id: int, sha256: str) -> bool:
        """Whether a blob is one of the artist's reference images or evidence about them."""

        def work(session: Session) -> bool:
            reference = session.exec(
                select(ReferenceImage.id).where(
                    ReferenceImage.artist_id == artist_id, ReferenceImage.sha256 == sha256
                )
            ).first()
            evidence = session.exec(
                select(EvidenceRow.id)
                .join(Finding, col(Finding.id) == col(EvidenceRow.finding_id))
                .where(Finding.artist_id == artist_id, EvidenceRow.blob_sha256 == sha256)
            ).first()
            return reference is not None or evidence is not None

        return self._tx.read("blob_belongs_to_artist", work)

    def metrics(self) -> MetricsSnapshot:
        def work(session: Session) -> MetricsSnapshot:
            uploads = session.exec(
                select(Source.name, func.count(col(Upload.id)))
                .join(Upload, col(Upload.source_id) == col(Source.id))
                .group_by(Source.name)
            ).all()
            states = session.exec(
                select(Finding.state, func.count(col(Finding.id))).group_by(Finding.state)
            ).all()
            deliveries = session.exec(
                select(Outbox.status, func.count(col(Outbox.id))).group_by(Outbox.status)
            ).all()
            malformed = session.exec(
                select(Source.name, func.count(func.distinct(col(ModelFile.upload_pk))))
                .join(Upload, col(Upload.source_id) == col(Source.id))
                .join(ModelFile, col(ModelFile.upload_pk) == col(Upload.id))
                .where(col(ModelFile.malformed).is_not(None))
                .group_by(Source.name)
            ).all()
            return MetricsSnapshot(dict(uploads), dict(states), dict(deliveries), dict(malformed))

        return self._tx.read("metrics", work)


def _queue_filtered(query: Any, states: Sequence[FindingState], where: QueueFilter) -> Any:
    query = query.where(col(Finding.state).in_(states))
    if where.text or where.artist or where.source:
        query = (
            query.join(Upload, col(Upload.id) == col(Finding.upload_pk))
            .join(Artist, col(Artist.id) == col(Finding.artist_id))
            .join(Source, col(Source.id) == col(Upload.source_id))
        )
    if where.text:
        needle = where.text.strip().lower()
        hashed = select(ModelFile.upload_pk).where(ModelFile.sha256 == needle)
        query = query.where(
            or_(
                *(
                    func.lower(column).contains(needle, autoescape=True)
                    for column in (
                        col(Upload.name),
                        col(Upload.upload_id),
                        col(Upload.uploader),
                        col(Artist.name),
                    )
                ),
                col(Finding.upload_pk).in_(hashed),
            )
        )
    if where.artist:
        query = query.where(func.lower(col(Artist.name)) == where.artist.strip().lower())
    if where.source:
        query = query.where(Source.name == where.source)
    if where.stage:
        query = query.where(Finding.stage == where.stage)
    if where.min_score > 0:
        query = query.where(col(Finding.score) >= where.min_score)
    if where.since is not None:
        query = query.where(col(Finding.created_at) >= where.since)
    return query


def _queue_order(sort: QueueSort) -> tuple[Any, ...]:
    if sort == "newest":
        return (col(Finding.id).desc(),)
    if sort == "oldest":
        return (col(Finding.id),)
    return (col(Finding.score).desc(), col(Finding.created_at), col(Finding.id))


def _after(session: Session, after: int, sort: QueueSort) -> Any:
    """Rows that sort after finding ``after`` (one that is gone sorts by its id alone)."""
    if sort == "newest":
        return col(Finding.id) < after
    if sort == "oldest":
        return col(Finding.id) > after
    last = session.get(Finding, after)
    if last is None:
        return col(Finding.id) > after
    score, created = col(Finding.score), col(Finding.created_at)
    return or_(
        score < last.score,
        and_(score == last.score, created > last.created_at),
        and_(score == last.score, created == last.created_at, col(Finding.id) > after),
    )


def _views(session: Session, rows: Sequence[Finding]) -> list[FindingView]:
    if not rows:
        return []
    findings = finding_records(session, rows)
    upload_rows = session.exec(
        select(Upload).where(col(Upload.id).in_({f.upload_pk for f in findings}))
    ).all()
    uploads = {u.id: u for u in upload_records(session, upload_rows)}
    evidence = _evidence(session, [f.id for f in findings])
    names = _names(session, {f.artist_id for f in findings})
    return [
        FindingView(f, uploads[f.upload_pk], tuple(evidence[f.id]), names[f.artist_id])
        for f in findings
    ]


def _evidence(session: Session, finding_ids: list[int]) -> dict[int, list[EvidenceItem]]:
    items: dict[int, list[EvidenceItem]] = defaultdict(list)
    rows = session.exec(
        select(EvidenceRow)
        .where(col(EvidenceRow.finding_id).in_(finding_ids))
        .order_by(col(EvidenceRow.id))
    ).all()
    for row in rows:
        items[row.finding_id].append(EvidenceItem(row.source, row.text, row.blob_sha256))
    return items


def _names(session: Session, artist_ids: set[int]) -> dict[int, tuple[str, ...]]:
    rows = session.exec(select(Artist).where(col(Artist.id).in_(artist_ids))).all()
    return {r.id: (r.name, *r.aliases) for r in artist_records(session, rows)}
