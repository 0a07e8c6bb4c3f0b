"""Alembic's entry point, driven by `storage.migrate` (no alembic.ini).

The caller hands over an open connection in ``config.attributes["connection"]``; with
only ``sqlalchemy.url`` set, an engine is made here. SQLite gets batch mode (it cannot
ALTER most things in place). On PostgreSQL an advisory lock lets two processes start
``upgrade`` at once without racing each other.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Connection, text
from sqlmodel.sql.sqltypes import AutoString

from storage.columns import UTCDateTime
from storage.engine import create_db_engine, write_engine
from storage.models import metadata

MIGRATION_LOCK_KEY = 0x5717_1E00  # any constant; names the migration lock in pg_locks


def _render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Write plain SQLAlchemy types into revisions so they never import app code."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if type_ == "type" and isinstance(obj, AutoString):
        return "sa.String()"
    return False


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        transactional_ddl=True,
        compare_type=True,
        render_item=_render_item,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
        context.run_migrations()


def _main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("storage migrations need a connection or sqlalchemy.url")
    engine = create_db_engine(url)
    try:
        with write_engine(engine).begin() as connection:
            _run(connection)
    finally:
        engine.dispose()


_main()
