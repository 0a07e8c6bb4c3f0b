"""Persistence: the tables, the engine, migrations, the `Store` repository and the blob store."""

from __future__ import annotations
