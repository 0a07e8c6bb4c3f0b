"""Reading artists' reference images for the probe: which blobs belong to which artist."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from detectors.errors import StorageError
from storage.models import ReferenceImage


def reference_blobs(
    engine: Engine, artist_ids: Iterable[int] | None = None
) -> dict[int, list[str]]:
    """``{artist_id: [blob sha256, ...]}`` in the order the references were added.

    ``artist_ids`` None means every artist with at least one reference.
    """
    query = select(ReferenceImage.artist_id, ReferenceImage.sha256).order_by(
        col(ReferenceImage.artist_id), col(ReferenceImage.id)
    )
    if artist_ids is not None:
        query = query.where(col(ReferenceImage.artist_id).in_(list(artist_ids)))
    try:
        with Session(engine) as session:
            rows = session.exec(query).all()
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot read reference images: {type(exc).__name__}") from exc
    out: dict[int, list[str]] = {}
    for artist_id, sha in rows:
        out.setdefault(artist_id, []).append(sha)
    return out
