"""Building the long-lived parts from the settings: the engine, the store, the blob store."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from sqlalchemy.engine import Engine, make_url

from detectors.errors import StorageError
from monitor.settings import Settings
from storage.blobs import BlobStore
from storage.engine import create_db_engine
from storage.migrate import is_up_to_date, upgrade
from storage.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Runtime:
    """The database engine, the store and the blob store of one process."""

    settings: Settings
    engine: Engine
    store: Store
    blobs: BlobStore

    def close(self) -> None:
        self.engine.dispose()


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


def open_runtime(settings: Settings) -> Runtime:
    """Open the database, migrating the embedded default; PostgreSQL must be upgraded first."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_db_engine(settings.database_url)
    try:
        if settings.is_embedded:
            upgrade(engine)
        elif not is_up_to_date(engine):
            raise StorageError(
                "the database schema is not up to date: run `stylewatch db upgrade` first"
            )
    except Exception:
        engine.dispose()
        raise
    return Runtime(
        settings=settings,
        engine=engine,
        store=Store(engine),
        blobs=BlobStore(settings.data_dir / "blobs"),
    )
