"""Building the long-lived parts from the settings: the engine, the store, the blob store."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy.engine import Engine, make_url

from detectors.errors import ConfigError, StorageError
from monitor.settings import Settings, StorageSettings, s3_location
from storage.blobs import BlobStore, BlobStoreUnavailable
from storage.engine import create_db_engine
from storage.file_blobs import FileBlobStore
from storage.migrate import is_up_to_date, upgrade
from storage.private_files import make_private_dir
from storage.store import Store

log = logging.getLogger(__name__)
BLOB_RETRY_CAP_S = 5.0
STARTUP_WAIT_FOR_BLOBS_S = 60.0  # serve and workers: an S3 server restarting alongside


@dataclass(frozen=True, slots=True)
class Runtime:
    """The database engine, the store and the blob store of one process; a context manager
    (``with open_runtime(settings) as runtime:``) that closes it on the way out."""

    settings: Settings
    engine: Engine
    store: Store
    blobs: BlobStore

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def stylewatch_version() -> str:
    try:
        return version("stylewatch")
    except PackageNotFoundError:  # running from a source tree without an install
        return "0+unknown"


def safe_database_url(url: str) -> str:
    """The database URL with any password masked, for logs and pages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # a URL that does not parse is shown by its scheme only
        return url.split(":", 1)[0] + ":…"


def open_runtime(settings: Settings, *, wait_for_blobs_s: float = 0.0) -> Runtime:
    """Open the database, migrating the embedded default; PostgreSQL must be upgraded first.

    The blob store is checked too: a store that needs a fix (a missing bucket, refused
    credentials) fails at once; one that does not answer is asked again for up to
    ``wait_for_blobs_s`` (serve and workers, whose S3 server may be restarting too)."""
    make_private_dir(settings.data_dir)
    engine = create_db_engine(settings.database_url)
    try:
        if settings.is_embedded:
            upgrade(engine)
        elif not is_up_to_date(engine):
            raise StorageError(
                "the database schema is not up to date: run `stylewatch db upgrade` first"
            )
        blobs = open_blob_store(settings)
        _check_blobs(blobs, wait_for_blobs_s)
    except Exception:
        engine.dispose()
        raise
    return Runtime(settings=settings, engine=engine, store=Store(engine), blobs=blobs)


def _check_blobs(blobs: BlobStore, wait_s: float) -> None:
    deadline = time.monotonic() + wait_s
    delay_s = 0.5
    while True:
        try:
            blobs.check()
            return
        except BlobStoreUnavailable as exc:
            if time.monotonic() + delay_s > deadline:
                raise
            log.warning("the blob store does not answer yet (again in %.1f s): %s", delay_s, exc)
            time.sleep(delay_s)
            delay_s = min(delay_s * 2, BLOB_RETRY_CAP_S)


def open_blob_store(settings: Settings, target: str | None = None) -> BlobStore:
    """The blob store the settings name (``target`` instead of ``[storage] blobs`` when
    given): a folder, by default ``<data_dir>/blobs``, or an S3 bucket."""
    where = target if target is not None else settings.storage.blobs
    if where is None:
        return FileBlobStore(settings.data_dir / "blobs")
    if not where.startswith("s3:"):
        return FileBlobStore(Path(where).expanduser())
    return s3_blob_store(settings.storage, where)


def s3_blob_store(section: StorageSettings, url: str) -> BlobStore:
    """The bucket at ``url`` (s3://bucket/prefix) reached as ``[storage]`` says. boto3 is
    imported here, so commands that never use S3 start without it."""
    from storage.s3_blobs import S3BlobStore, S3Credentials, S3Options

    try:
        bucket, prefix = s3_location(url)
    except ValueError as exc:
        raise ConfigError([f"blob store: {exc}"]) from exc
    options = S3Options(
        endpoint_url=section.endpoint_url,
        region=section.region,
        addressing_style=section.addressing_style,
        max_attempts=section.max_attempts,
        timeout_s=section.timeout_s,
        part_bytes=section.multipart_mb * 1024 * 1024,
    )
    credentials = S3Credentials(
        access_key_id=_reveal(section.access_key_id),
        secret_access_key=_reveal(section.secret_access_key),
        session_token=_reveal(section.session_token),
    )
    return S3BlobStore(bucket, prefix, options=options, credentials=credentials)


def _reveal(secret: SecretStr | None) -> str | None:
    return None if secret is None else secret.get_secret_value()
