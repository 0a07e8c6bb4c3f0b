"""Persistence: SQLModel tables, the engine, migrations and the content-addressed blob store."""

from __future__ import annotations
