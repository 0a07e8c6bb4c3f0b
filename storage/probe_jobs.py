"""The probe stage's work list, read from the uploads' states (the database is the queue's
memory: an upload left "probing" by a crash is found again)."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from detectors.results import ADAPTER_KINDS
from storage.loaders import upload_records
from storage.models import Source, Upload
from storage.records import LOCAL_SOURCE, UploadRecord

PROBED_KINDS = (*ADAPTER_KINDS, "checkpoint")
# "requeued": a back-scan asked for a new probe (its findings are marked as the back-scan's).
WAITING_STATES = ("screened", "probing", "requeued")
# `scan` probes local files itself; the worker probes what the pollers recorded.
SKIPPED_SOURCES = (LOCAL_SOURCE,)
# A checkpoint over [probe] checkpoint_max_bytes is "failed" with an error starting so; a
# moderator who queues it from its finding puts it back to "screened" with PROBE_ASKED,
# which the worker takes as leave to go past the budget (never past the free-disk floor).
OVER_BUDGET = "not probed: over the size budget"
PROBE_ASKED = "a moderator asked for this probe over the size budget"


def probe_candidates(engine: Engine, families: Collection[str], limit: int = 100) -> list[int]:
    """Uploads waiting for a probe (oldest first): LoRAs and checkpoints of a family with a
    base model."""
    if not families:
        return []
    with Session(engine) as session:
        rows = session.exec(
            select(Upload.id)
            .join(Source, col(Source.id) == col(Upload.source_id))
            .where(
                col(Upload.state).in_(WAITING_STATES),
                col(Upload.kind).in_(PROBED_KINDS),
                col(Upload.base_family).in_(list(families)),
                col(Source.name).not_in(SKIPPED_SOURCES),
            )
            .order_by(col(Upload.id))
            .limit(limit)
        ).all()
    return [int(r) for r in rows if r is not None]


def upload_by_pk(engine: Engine, upload_pk: int) -> UploadRecord | None:
    with Session(engine) as session:
        row = session.get(Upload, upload_pk)
        return None if row is None else upload_records(session, [row])[0]
