"""Alembic migrations of the stylewatch schema; run them with `storage.migrate.upgrade`."""
