"""The tables. Unique keys make every pipeline stage idempotent: a repeat finds its row.

Closed sets are plain strings in the database (no DB enums, so migrations stay simple);
their ``Literal`` types live in `storage.records`. Timestamps are aware UTC
(`UTCDateTime`). Foreign keys to ``upload.id`` are named ``upload_pk`` because
``upload_id`` is the hub's own id.
Rows are written only by `storage.store.Store`; the rest of the code sees records.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from storage.columns import UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Base(SQLModel, registry=registry(metadata=metadata)):
    """Every stylewatch table; its own metadata keeps constraint names stable for Alembic."""


def _json_list() -> Any:
    return Field(default_factory=list, sa_column=Column(JSON, nullable=False))


def _json_dict(name: str | None = None) -> Any:
    column = Column(name, JSON, nullable=False) if name else Column(JSON, nullable=False)
    return Field(default_factory=dict, sa_column=column)


def _when(nullable: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable)


class Artist(Base, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_type=String, unique=True)
    email: str | None = Field(default=None, sa_type=String)
    created_at: datetime = _when()


class Alias(Base, table=True):
    __table_args__ = (UniqueConstraint("artist_id", "alias"),)

    id: int | None = Field(default=None, primary_key=True)
    artist_id: int = Field(foreign_key="artist.id", ondelete="CASCADE")
    alias: str = Field(sa_type=String)


class ReferenceImage(Base, table=True):
    __tablename__ = "reference_image"
    __table_args__ = (UniqueConstraint("artist_id", "sha256"),)

    id: int | None = Field(default=None, primary_key=True)
    artist_id: int = Field(foreign_key="artist.id", ondelete="CASCADE")
    sha256: str = Field(sa_type=String)
    mime: str = Field(sa_type=String)
    width: int
    height: int
    size: int = Field(sa_type=BigInteger)
    created_at: datetime = _when()
    # The PNG thumbnail made when the image was taken (migration 0010); None before then.
    thumb_sha256: str | None = Field(default=None, sa_type=String)


class Source(Base, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_type=String, unique=True)
    high_water: str | None = Field(default=None, sa_type=String)
    state: dict[str, Any] = _json_dict()
    updated_at: datetime = _when()


class Upload(Base, table=True):
    __table_args__ = (
        UniqueConstraint("source_id", "upload_id"),
        Index("ix_upload_state", "state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source_id: int = Field(foreign_key="source.id")
    upload_id: str = Field(sa_type=String)
    name: str = Field(sa_type=String)
    url: str | None = Field(default=None, sa_type=String)
    uploader: str | None = Field(default=None, sa_type=String)
    kind: str = Field(default="unknown", sa_type=String)
    base_family: str = Field(default="unknown", sa_type=String)
    # The base model the hub names (Civitai baseModel "Pony", HF base_model): picks the
    # probe's base for SDXL derivatives (detectors.probe.bases).
    hub_base_model: str | None = Field(default=None, sa_type=String)
    state: str = Field(default="new", sa_type=String)
    error: str | None = Field(default=None, sa_type=Text)
    hub_text: list[dict[str, str]] = _json_list()
    reupload_of: int | None = Field(default=None, foreign_key="upload.id", ondelete="SET NULL")
    created_at: datetime = _when()
    updated_at: datetime = _when()
    # The text screening reads, kept for back-scans: groups of {source, text} matched together
    # (`detectors.rescreen.screen_groups`). NULL until first computed.
    screen_fields: list[Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class ModelFile(Base, table=True):
    __tablename__ = "model_file"
    __table_args__ = (
        UniqueConstraint("upload_pk", "filename"),
        Index("ix_model_file_sha256", "sha256"),
    )

    id: int | None = Field(default=None, primary_key=True)
    upload_pk: int = Field(foreign_key="upload.id", ondelete="CASCADE")
    filename: str = Field(sa_type=String)
    sha256: str | None = Field(default=None, sa_type=String)
    size: int | None = Field(default=None, sa_type=BigInteger)
    format: str = Field(default="unknown", sa_type=String)
    kind: str = Field(default="unknown", sa_type=String)
    base_family: str = Field(default="unknown", sa_type=String)
    layout: str = Field(default="unknown", sa_type=String)
    # ``metadata`` is reserved on declarative classes; the column keeps the domain name.
    header_metadata: dict[str, Any] = _json_dict("metadata")
    hashes: dict[str, Any] = _json_dict()
    # "read", "known" (linked by the hub's hash) or "not available: <reason>"; None when the
    # file is of no fingerprinted kind.
    fingerprint: str | None = Field(default=None, sa_type=Text)
    # Why the file's metadata is malformed (`detectors.screening.Screening.malformed`); None
    # when it is well formed or was never read.
    malformed: str | None = Field(default=None, sa_type=Text)


class Fingerprint(Base, table=True):
    """A LoRA file's weight fingerprint (`detectors.fingerprint`): ``modules_key`` names the
    modules it sketches (only fingerprints with the same key compare), ``vector`` the
    float32 sketch."""

    __table_args__ = (UniqueConstraint("upload_pk", "filename"),)

    id: int | None = Field(default=None, primary_key=True)
    upload_pk: int = Field(foreign_key="upload.id", ondelete="CASCADE")
    filename: str = Field(sa_type=String)
    modules_key: str = Field(sa_type=String, index=True)
    vector: bytes = Field(sa_type=LargeBinary)
    created_at: datetime = _when()


class HubSearch(Base, table=True):
    """One name's history search on one hub for one artist: ``cursor`` is where paging
    stopped (the next page's URL), ``done_at`` when the last page was read."""

    __tablename__ = "hub_search"
    __table_args__ = (UniqueConstraint("artist_id", "source", "query"),)

    id: int | None = Field(default=None, primary_key=True)
    artist_id: int = Field(foreign_key="artist.id", ondelete="CASCADE")
    source: str = Field(sa_type=String)
    query: str = Field(sa_type=String)
    cursor: str | None = Field(default=None, sa_type=Text)
    pages: int = 0
    listed: int = 0
    error: str | None = Field(default=None, sa_type=Text)
    done_at: datetime | None = _when(nullable=True)
    updated_at: datetime = _when()


class HubCheck(Base, table=True):
    """The last takedown check of an upload on its hub: ``status`` says what the hub showed
    (``up``, ``removed``, ``hidden``, ``unpublished``, ``gated``), ``gone_at`` when first gone."""

    __tablename__ = "hub_check"

    upload_pk: int = Field(foreign_key="upload.id", ondelete="CASCADE", primary_key=True)
    up: bool
    status: str = Field(sa_type=String)
    reason: str | None = Field(default=None, sa_type=Text)
    checked_at: datetime = _when()
    gone_at: datetime | None = _when(nullable=True)


class Finding(Base, table=True):
    __table_args__ = (
        UniqueConstraint("upload_pk", "artist_id"),
        Index("ix_finding_state", "state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    upload_pk: int = Field(foreign_key="upload.id", ondelete="CASCADE")
    artist_id: int = Field(foreign_key="artist.id", ondelete="CASCADE")
    score: float
    stage: str = Field(sa_type=String)
    state: str = Field(default="needs_review", sa_type=String)
    backscan: bool = False
    created_at: datetime = _when()
    updated_at: datetime = _when()
    # When takedown tracking saw the upload gone from its hub (state "taken_down").
    taken_down_at: datetime | None = _when(nullable=True)


class Evidence(Base, table=True):
    __table_args__ = (UniqueConstraint("finding_id", "source", "text"),)

    id: int | None = Field(default=None, primary_key=True)
    finding_id: int = Field(foreign_key="finding.id", ondelete="CASCADE")
    source: str = Field(sa_type=String)
    text: str = Field(sa_type=Text)
    blob_sha256: str | None = Field(default=None, sa_type=String)
    created_at: datetime = _when()


class Subscription(Base, table=True):
    # NULLs are distinct in unique keys: team subscriptions (artist NULL) are not deduplicated here.
    __table_args__ = (UniqueConstraint("artist_id", "channel", "address"),)

    id: int | None = Field(default=None, primary_key=True)
    artist_id: int | None = Field(default=None, foreign_key="artist.id", ondelete="CASCADE")
    team: str | None = Field(default=None, sa_type=String)
    channel: str = Field(sa_type=String)
    address: str = Field(sa_type=String)
    min_score: float = 0.0
    confirmed_at: datetime | None = _when(nullable=True)
    created_at: datetime = _when()
    # Set when the endpoint said it is gone (HTTP 410): nothing more is enqueued for it.
    disabled_at: datetime | None = _when(nullable=True)
    disabled_reason: str | None = Field(default=None, sa_type=Text)


class Outbox(Base, table=True):
    """One row per delivery; ``idempotency_key`` is (finding, subscriber, channel)."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_outbox_batch_key", "batch_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(sa_type=String, unique=True)
    finding_id: int | None = Field(default=None, foreign_key="finding.id", ondelete="SET NULL")
    subscription_id: int = Field(foreign_key="subscription.id", ondelete="CASCADE")
    channel: str = Field(sa_type=String)
    payload: dict[str, Any] = _json_dict()
    status: str = Field(default="pending", sa_type=String)
    attempts: int = 0
    next_attempt_at: datetime = _when()
    last_error: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = _when()
    sent_at: datetime | None = _when(nullable=True)
    # The message this row went out in: set when first claimed, kept across retries, so a
    # resend carries the same Message-ID / webhook-id (receivers dedupe on it).
    batch_key: str | None = Field(default=None, sa_type=String)


class TriageEvent(Base, table=True):
    """Append-only: every triage action on a finding, with who and why."""

    __tablename__ = "triage_event"

    id: int | None = Field(default=None, primary_key=True)
    finding_id: int = Field(foreign_key="finding.id", ondelete="CASCADE", index=True)
    user_id: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    action: str = Field(sa_type=String)
    reason: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = _when()


class User(Base, table=True):
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(sa_type=String, unique=True)
    role: str = Field(sa_type=String)
    password_hash: str = Field(sa_type=String)
    artist_id: int | None = Field(default=None, foreign_key="artist.id", ondelete="SET NULL")
    created_at: datetime = _when()


class WebSession(Base, table=True):
    """A signed-in browser session; the cookie carries its id, only the sha256 is stored.
    Signing out, a password change or the user's removal deletes the row, so a cookie saved
    before then opens nothing."""

    __tablename__ = "web_session"

    sid_sha256: str = Field(sa_type=String, primary_key=True)
    user_id: int = Field(foreign_key="user.id", ondelete="CASCADE", index=True)
    created_at: datetime = _when()
    expires_at: datetime = _when()


class FindingLease(Base, table=True):
    """Who is working a finding, until when: a moderator's claim keeps others off it."""

    __tablename__ = "finding_lease"

    finding_id: int = Field(foreign_key="finding.id", ondelete="CASCADE", primary_key=True)
    user_id: int = Field(foreign_key="user.id", ondelete="CASCADE")
    expires_at: datetime = _when()


class ApiToken(Base, table=True):
    """An integration's bearer token; only its sha256 is stored."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", ondelete="CASCADE", index=True)
    name: str = Field(sa_type=String)
    token_sha256: str = Field(sa_type=String, unique=True)
    created_at: datetime = _when()
    last_used_at: datetime | None = _when(nullable=True)
