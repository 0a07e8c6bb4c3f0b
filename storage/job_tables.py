"""procrastinate's tables in our PostgreSQL database: applying its schema once (``stylewatch
db upgrade``) and reading what /metrics shows about the jobs (queue depth, live workers).

procrastinate ships its schema as one SQL file and no revision table of its own, so
"applied" means its jobs table exists; an advisory lock keeps two upgrades from racing.
"""

from __future__ import annotations

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from detectors.errors import StorageError
from storage.engine import error_summary

JOBS_TABLE = "procrastinate_jobs"
# pg_advisory_xact_lock key for schema application ("SWJOBS" in ASCII).
SCHEMA_LOCK_KEY = 0x53574A4F4253


def job_schema_present(engine: Engine) -> bool:
    """Whether procrastinate's tables exist (False on SQLite, which never has them)."""
    if engine.dialect.name != "postgresql":
        return False
    try:
        with engine.connect() as conn:
            found = conn.execute(text(f"SELECT to_regclass('{JOBS_TABLE}') IS NOT NULL"))
            return bool(found.scalar_one())
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot read the job queue tables: {error_summary(exc)}") from exc


def apply_job_schema(engine: Engine) -> bool:
    """Create procrastinate's tables, functions and triggers unless they exist; True when
    they were created now. Raises StorageError (one line) when PostgreSQL refuses."""
    from procrastinate.schema import SchemaManager

    if engine.dialect.name != "postgresql":
        raise StorageError("the procrastinate job queue needs a PostgreSQL database")
    schema = SchemaManager.get_schema()
    try:
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
            found = conn.execute(text(f"SELECT to_regclass('{JOBS_TABLE}') IS NOT NULL"))
            if found.scalar_one():
                return False
            # The driver's own cursor, without parameters: the script's "%" stay literal
            # and its many statements go in one round trip.
            cursor = conn.connection.cursor()
            try:
                cursor.execute(schema)
            finally:
                cursor.close()
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot create the job queue tables: {error_summary(exc)}") from exc
    return True


def job_counts(engine: Engine) -> dict[tuple[str, str], int]:
    """Jobs per (queue, status): todo is the queue's depth, doing what runs now."""
    query = text(
        f"SELECT queue_name, status::text, count(*) FROM {JOBS_TABLE} GROUP BY queue_name, status"
    )
    try:
        with engine.connect() as conn:
            rows = conn.execute(query).all()
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot count jobs: {error_summary(exc)}") from exc
    return {(str(queue), str(status)): int(count) for queue, status, count in rows}


def live_workers(engine: Engine, stalled_after_s: float) -> int:
    """Workers whose last heartbeat is younger than ``stalled_after_s`` seconds."""
    query = text(
        "SELECT count(*) FROM procrastinate_workers "
        "WHERE last_heartbeat >= NOW() - make_interval(secs => :seconds)"
    )
    try:
        with engine.connect() as conn:
            return int(conn.execute(query, {"seconds": stalled_after_s}).scalar_one())
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot count workers: {error_summary(exc)}") from exc
