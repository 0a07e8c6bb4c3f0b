"""Schema migrations run from code: ``stylewatch db upgrade`` and start-up call `upgrade`.

Alembic is configured here, pointing into the installed package, so no alembic.ini is
needed at run time. Developers make a new revision with::

    python -c "from storage.migrate import revision; revision('add x')"
"""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from detectors.errors import StorageError
from storage.engine import create_db_engine, error_summary, write_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Alembic's ``context`` and ``op`` are process-wide proxies: one upgrade at a time per
# process. Across processes the database serializes them (env.py).
_UPGRADE_LOCK = threading.Lock()


def alembic_config() -> Config:
    """An Alembic config for the packaged migrations (``%`` is escaped for ConfigParser)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    return config


def upgrade(engine_or_url: Engine | str, revision: str = "head") -> None:
    """Bring the database to ``revision``; a database already there is left as it is.

    Raises ``StorageError`` when the database cannot be reached or a migration fails.
    """
    owned = isinstance(engine_or_url, str)
    engine = create_db_engine(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url
    config = alembic_config()
    try:
        with _UPGRADE_LOCK, write_engine(engine).begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    except SQLAlchemyError as exc:
        url = engine.url.render_as_string(hide_password=True)
        raise StorageError(f"cannot migrate the database {url}: {error_summary(exc)}") from exc
    finally:
        if owned:
            engine.dispose()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for a database never migrated."""
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot read the schema revision: {error_summary(exc)}") from exc


def head_revision() -> str | None:
    """The newest revision the packaged migrations define."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def is_up_to_date(engine: Engine) -> bool:
    """Whether the database is at the packaged head revision."""
    return current_revision(engine) == head_revision()


def revision(message: str, url: str = "sqlite:///:memory:") -> None:
    """Autogenerate a new revision against a database migrated to head (developer tool)."""
    engine = create_db_engine(url)
    try:
        upgrade(engine)
        config = alembic_config()
        with write_engine(engine).begin() as connection:
            config.attributes["connection"] = connection
            heads = ScriptDirectory.from_config(config).get_heads()
            next_id = f"{int(heads[0]) + 1:04d}" if heads else "0001"
            command.revision(config, message, autogenerate=True, rev_id=next_id)
    finally:
        engine.dispose()
