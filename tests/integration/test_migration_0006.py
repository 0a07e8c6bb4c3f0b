"""Migration 0006 (hub searches, hub checks, finding.taken_down_at) on SQLite and PostgreSQL:
it upgrades a database holding findings without losing them, and downgrades cleanly."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, text

from storage.engine import create_db_engine, write_engine
from storage.migrate import alembic_config, current_revision, upgrade


def _downgrade(engine, revision: str) -> None:
    config = alembic_config()
    with write_engine(engine).begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def test_0006_keeps_findings_and_downgrades(empty_db_url):
    engine = create_db_engine(empty_db_url)
    try:
        upgrade(engine, "0005")
        with engine.begin() as connection:
            connection.execute(
                text("INSERT INTO artist (id, name, created_at) VALUES (1, 'Ilse', '2026-01-01');")
            )
            connection.execute(
                text(
                    "INSERT INTO source (id, name, state, updated_at)"
                    " VALUES (1, 'civitai', '{}', '2026-01-01')"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO upload (id, source_id, upload_id, name, kind, base_family,"
                    " state, hub_text, created_at, updated_at) VALUES (1, 1, '7', 'x',"
                    " 'lora', 'sd1', 'screened', '[]', '2026-01-01', '2026-01-01')"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO finding (id, upload_pk, artist_id, score, stage, state,"
                    " backscan, created_at, updated_at) VALUES (1, 1, 1, 0.9, 'metadata',"
                    " 'confirmed', false, '2026-01-01', '2026-01-01')"
                )
            )

        upgrade(engine, "0006")

        tables = set(inspect(engine).get_table_names())
        assert {"hub_search", "hub_check"} <= tables
        with engine.connect() as connection:
            row = connection.execute(text("SELECT state, taken_down_at FROM finding")).one()
        assert tuple(row) == ("confirmed", None)

        _downgrade(engine, "0005")
        assert current_revision(engine) == "0005"
        inspector = inspect(engine)
        assert "hub_search" not in inspector.get_table_names()
        assert "taken_down_at" not in {c["name"] for c in inspector.get_columns("finding")}
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM finding")).scalar() == 1
    finally:
        engine.dispose()
