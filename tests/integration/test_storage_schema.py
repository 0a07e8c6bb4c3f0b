"""Migrations, schema and engine settings, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from detectors.errors import StorageError
from storage.engine import create_db_engine
from storage.migrate import current_revision, head_revision, is_up_to_date, upgrade
from storage.models import metadata
from storage.store import Store


def test_upgrade_from_empty_is_idempotent(empty_db_url):
    engine = create_db_engine(empty_db_url)
    try:
        assert current_revision(engine) is None
        assert not is_up_to_date(engine)
        upgrade(engine)
        upgrade(engine)
        upgrade(empty_db_url)
        assert current_revision(engine) == head_revision() is not None
        assert is_up_to_date(engine)
        tables = set(inspect(engine).get_table_names())
        assert set(metadata.tables) <= tables
    finally:
        engine.dispose()


def test_concurrent_upgrades_from_several_processes_agree(empty_db_url):
    # Processes, not threads: a scheduler and workers may all start against a new database.
    code = "import sys; from storage.migrate import upgrade; upgrade(sys.argv[1])"
    runs = [
        subprocess.Popen([sys.executable, "-c", code, empty_db_url], stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    for run in runs:
        _, stderr = run.communicate(timeout=60)
        assert run.returncode == 0, stderr.decode()
    engine = create_db_engine(empty_db_url)
    try:
        assert is_up_to_date(engine)
    finally:
        engine.dispose()


def test_migrated_schema_matches_models(engine: Engine):
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []


def test_sqlite_connections_use_wal_and_foreign_keys(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'nested' / 'dir' / 'stylewatch.db'}"
    upgrade(url)
    engine = create_db_engine(url)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
    finally:
        engine.dispose()


def test_foreign_keys_are_enforced(engine: Engine):
    insert = text("INSERT INTO alias (artist_id, alias) VALUES (999, 'ghost')")
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(insert)


@pytest.mark.parametrize(
    "url",
    [
        "not a url",
        "mysql://user:s3cret@localhost/db",
        "postgresql+asyncpg://user:s3cret@localhost/db",
        "oracle://user:s3cret@host/db",
    ],
)
def test_unusable_urls_raise_storage_error_without_secrets(url):
    with pytest.raises(StorageError) as caught:
        create_db_engine(url)
    message = str(caught.value)
    assert "s3cret" not in message
    assert "\n" not in message


def test_unreachable_server_raises_storage_error_without_secrets():
    engine = create_db_engine("postgresql://user:s3cret@127.0.0.1:1/stylewatch")
    try:
        with pytest.raises(StorageError) as caught:
            Store(engine).list_artists()
        assert "s3cret" not in str(caught.value)
        with pytest.raises(StorageError) as caught:
            upgrade(engine)
        assert "s3cret" not in str(caught.value)
        assert "***" in str(caught.value)
    finally:
        engine.dispose()


def test_plain_postgresql_scheme_means_psycopg():
    engine = create_db_engine("postgresql://localhost/stylewatch")
    try:
        assert engine.dialect.driver == "psycopg"
    finally:
        engine.dispose()
