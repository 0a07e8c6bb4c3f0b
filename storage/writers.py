"""Values to rows: the inserts `storage.store.Store` shares between its write steps.

Each function works inside the caller's transaction and flushes, so ids are ready.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlmodel import Session, col, select

from detectors.errors import StorageError
from detectors.results import Evidence as EvidenceValue
from storage.models import Artist, Evidence, ModelFile
from storage.records import FileRecord
from storage.stored_metadata import to_column

# Evidence text is part of a unique key; PostgreSQL btree entries must stay well under 2.7 kB.
MAX_EVIDENCE_CHARS = 1000


def add_files(session: Session, upload_pk: int, files: Sequence[FileRecord]) -> None:
    """Add an upload's files; a filename given twice keeps its first entry."""
    unique: dict[str, FileRecord] = {}
    for f in files:
        unique.setdefault(f.filename, f)
    for f in unique.values():
        session.add(
            ModelFile(
                upload_pk=upload_pk,
                filename=f.filename,
                sha256=f.sha256,
                size=f.size,
                format=f.format,
                kind=f.kind,
                base_family=f.base_family,
                layout=f.layout,
                header_metadata=to_column(f.metadata),
                hashes=dict(f.hashes),
                fingerprint=f.fingerprint,
                malformed=f.malformed,
            )
        )
    session.flush()


def check_artists(session: Session, ids: set[int]) -> None:
    known = set(session.exec(select(Artist.id).where(col(Artist.id).in_(ids))).all())
    missing = sorted(ids - known)
    if missing:
        raise StorageError(f"no artist with id {missing[0]}: findings need a registered artist")


def add_evidence(
    session: Session, finding_pk: int, evidence: Iterable[EvidenceValue], now: datetime
) -> bool:
    """Add the evidence the finding lacks; True when anything was added."""
    rows = session.exec(
        select(Evidence.source, Evidence.text).where(Evidence.finding_id == finding_pk)
    ).all()
    known = {(source, text) for source, text in rows}
    added = False
    for item in evidence:
        key = (item.source, item.text[:MAX_EVIDENCE_CHARS])
        if key not in known:
            known.add(key)
            session.add(
                Evidence(
                    finding_id=finding_pk,
                    source=key[0],
                    text=key[1],
                    blob_sha256=item.blob_sha256,
                    created_at=now,
                )
            )
            added = True
    session.flush()
    return added
