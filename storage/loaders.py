"""Rows to records: each function loads what a batch of rows needs in a few queries.

Strings read back from closed-set columns are cast to their ``Literal`` types: only
`storage.store.Store` writes those columns, and it writes only the allowed values.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, cast

from sqlmodel import Session, col, select

from detectors.results import BaseFamily, Evidence, FileFormat, Kind, Stage, TextField
from storage.models import Alias, Artist, Finding, ModelFile, Source, Upload
from storage.models import Evidence as EvidenceRow
from storage.records import (
    ArtistRecord,
    FileRecord,
    FindingRecord,
    FindingState,
    SourceRecord,
    UploadRecord,
    UploadRef,
    UploadState,
)
from storage.stored_metadata import from_column


def pk(row: Artist | Source | Upload | Finding) -> int:
    """The primary key of a row that has been flushed."""
    if row.id is None:
        raise RuntimeError(f"{type(row).__name__} row has no id: flush before reading it")
    return row.id


def artist_records(session: Session, artists: Sequence[Artist]) -> list[ArtistRecord]:
    ids = [pk(a) for a in artists]
    aliases: dict[int, list[str]] = defaultdict(list)
    rows = session.exec(
        select(Alias).where(col(Alias.artist_id).in_(ids)).order_by(col(Alias.id))
    ).all()
    for alias in rows:
        aliases[alias.artist_id].append(alias.alias)
    return [
        ArtistRecord(
            id=pk(a),
            name=a.name,
            aliases=tuple(aliases[pk(a)]),
            email=a.email,
            created_at=a.created_at,
        )
        for a in artists
    ]


def source_record(source: Source) -> SourceRecord:
    return SourceRecord(
        id=pk(source),
        name=source.name,
        high_water=source.high_water,
        state=dict(source.state),
        updated_at=source.updated_at,
    )


def upload_records(session: Session, uploads: Sequence[Upload]) -> list[UploadRecord]:
    ids = [pk(u) for u in uploads]
    sources = _source_names(session, {u.source_id for u in uploads})
    files = _files(session, ids)
    artists = _artist_names(session, ids)
    refs = _upload_refs(session, {u.reupload_of for u in uploads if u.reupload_of is not None})
    return [
        UploadRecord(
            id=pk(u),
            source=sources[u.source_id],
            upload_id=u.upload_id,
            name=u.name,
            state=cast(UploadState, u.state),
            kind=cast(Kind, u.kind),
            base_family=cast(BaseFamily, u.base_family),
            artists=tuple(artists[pk(u)]),
            reupload_of=refs.get(u.reupload_of) if u.reupload_of is not None else None,
            url=u.url,
            uploader=u.uploader,
            error=u.error,
            hub_text=tuple(text_fields(u.hub_text)),
            files=tuple(files[pk(u)]),
            created_at=u.created_at,
            updated_at=u.updated_at,
            hub_base_model=u.hub_base_model,
        )
        for u in uploads
    ]


def finding_records(session: Session, findings: Sequence[Finding]) -> list[FindingRecord]:
    ids = [pk(f) for f in findings]
    uploads = {
        pk(u): u
        for u in session.exec(
            select(Upload).where(col(Upload.id).in_({f.upload_pk for f in findings}))
        ).all()
    }
    sources = _source_names(session, {u.source_id for u in uploads.values()})
    names = _names_of_artists(session, {f.artist_id for f in findings})
    evidence: dict[int, list[Evidence]] = defaultdict(list)
    rows = session.exec(
        select(EvidenceRow)
        .where(col(EvidenceRow.finding_id).in_(ids))
        .order_by(col(EvidenceRow.id))
    ).all()
    for row in rows:
        evidence[row.finding_id].append(
            Evidence(source=row.source, text=row.text, blob_sha256=row.blob_sha256)
        )
    records = []
    for f in findings:
        upload = uploads[f.upload_pk]
        records.append(
            FindingRecord(
                id=pk(f),
                upload_pk=f.upload_pk,
                source=sources[upload.source_id],
                upload_id=upload.upload_id,
                name=upload.name,
                artist_id=f.artist_id,
                artist=names[f.artist_id],
                score=f.score,
                stage=cast(Stage, f.stage),
                state=cast(FindingState, f.state),
                backscan=f.backscan,
                evidence=tuple(evidence[pk(f)]),
                created_at=f.created_at,
                updated_at=f.updated_at,
                taken_down_at=f.taken_down_at,
            )
        )
    return records


def _source_names(session: Session, ids: set[int]) -> dict[int, str]:
    rows = session.exec(select(Source).where(col(Source.id).in_(ids))).all()
    return {pk(s): s.name for s in rows}


def _names_of_artists(session: Session, ids: set[int]) -> dict[int, str]:
    rows = session.exec(select(Artist).where(col(Artist.id).in_(ids))).all()
    return {pk(a): a.name for a in rows}


def _files(session: Session, upload_pks: list[int]) -> dict[int, list[FileRecord]]:
    files: dict[int, list[FileRecord]] = defaultdict(list)
    rows = session.exec(
        select(ModelFile)
        .where(col(ModelFile.upload_pk).in_(upload_pks))
        .order_by(col(ModelFile.id))
    ).all()
    for f in rows:
        metadata, cut = from_column(f.header_metadata)
        files[f.upload_pk].append(
            FileRecord(
                filename=f.filename,
                sha256=f.sha256,
                size=f.size,
                format=cast(FileFormat, f.format),
                kind=cast(Kind, f.kind),
                base_family=cast(BaseFamily, f.base_family),
                layout=f.layout,
                metadata=metadata,
                hashes=dict(f.hashes),
                fingerprint=f.fingerprint,
                malformed=f.malformed,
                metadata_cut=cut,
            )
        )
    return files


def _artist_names(session: Session, upload_pks: list[int]) -> dict[int, list[str]]:
    """Names of the artists found in each upload, highest score first."""
    names: dict[int, list[str]] = defaultdict(list)
    rows = session.exec(
        select(Finding.upload_pk, Artist.name)
        .join(Artist, col(Artist.id) == col(Finding.artist_id))
        .where(col(Finding.upload_pk).in_(upload_pks))
        .order_by(col(Finding.score).desc(), col(Finding.id))
    ).all()
    for upload_pk, name in rows:
        names[upload_pk].append(name)
    return names


def _upload_refs(session: Session, ids: set[int]) -> dict[int, UploadRef]:
    rows = session.exec(
        select(Upload.id, Source.name, Upload.upload_id)
        .join(Source, col(Source.id) == col(Upload.source_id))
        .where(col(Upload.id).in_(ids))
    ).all()
    return {
        upload_pk: UploadRef(source, upload_id)
        for upload_pk, source, upload_id in rows
        if upload_pk is not None
    }


def text_fields(items: list[Any]) -> list[TextField]:
    """Tolerant read of the ``hub_text`` JSON: entries that are not {source, text} are skipped."""
    fields = []
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("source"), str):
            text = item.get("text")
            if isinstance(text, str):
                fields.append(TextField(source=item["source"], text=text))
    return fields
