"""The database engine: SQLite (the embedded default) or PostgreSQL through psycopg 3.

SQLite connections run in WAL mode with foreign keys on and a busy timeout. Transactions
begin DEFERRED, or IMMEDIATE on an engine derived with ``write_engine``, so a writer takes
the write lock before it reads and two writers queue instead of failing with "database is
locked" half way through.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.pool import ConnectionPoolEntry

from detectors.errors import StorageError
from storage.private_files import create_private_file, make_private_dir

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
WRITE_OPTION = "stylewatch_write"
_POSTGRES_SCHEMES = {"postgres", "postgresql", "postgresql+psycopg"}
_SQLITE_SCHEMES = {"sqlite", "sqlite+pysqlite"}


def create_db_engine(url: str | URL) -> Engine:
    """An engine for ``sqlite:///PATH`` or ``postgresql+psycopg://…``.

    ``postgresql://`` and ``postgres://`` mean psycopg 3 too. The parent folder of a SQLite
    file is created. Raises ``StorageError`` for a URL that cannot be used.
    """
    parsed = parse_url(url)
    try:
        if parsed.get_backend_name() == "sqlite":
            engine = _sqlite_engine(parsed)
        else:
            engine = create_engine(parsed, pool_pre_ping=True)
    except (ArgumentError, NoSuchModuleError, TypeError, ValueError) as exc:
        raise StorageError(f"cannot use database url {_safe(parsed)}: {exc}") from exc
    logger.debug("storage.engine.created", extra={"url": _safe(parsed)})
    return engine


def write_engine(engine: Engine) -> Engine:
    """The same engine (shared pool) whose transactions take SQLite's write lock up front."""
    return engine.execution_options(**{WRITE_OPTION: True})


def parse_url(url: str | URL) -> URL:
    """Parse and normalize a database URL; raise ``StorageError`` for unsupported ones."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StorageError(
            "cannot parse the database url: expected sqlite:///PATH or postgresql+psycopg://…"
        ) from exc
    if parsed.drivername in _POSTGRES_SCHEMES:
        return parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername in _SQLITE_SCHEMES:
        return parsed.set(drivername="sqlite+pysqlite")
    raise StorageError(
        f"unsupported database url {_safe(parsed)}: use sqlite:///PATH or postgresql+psycopg://…"
    )


def error_summary(exc: BaseException) -> str:
    """The first line of a driver error: enough to act on, without the DETAIL lines that
    quote row values."""
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__


def _safe(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def _sqlite_engine(url: URL) -> Engine:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        path = Path(database).expanduser()
        try:
            make_private_dir(path.parent)
        except OSError as exc:
            raise StorageError(
                f"cannot create the folder for the database {database}: {exc.strerror}"
            ) from exc
        try:
            create_private_file(path)
        except OSError as exc:
            raise StorageError(f"cannot create the database {database}: {exc.strerror}") from exc
    engine = create_engine(url)
    event.listen(engine, "connect", _on_sqlite_connect)
    event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def _on_sqlite_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    assert isinstance(dbapi_connection, sqlite3.Connection)
    # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own is broken for DDL
    # and savepoints, and cannot say IMMEDIATE).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _on_sqlite_begin(connection: Connection) -> None:
    immediate = connection.get_execution_options().get(WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
