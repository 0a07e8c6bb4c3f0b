"""Looking registered artists up by the name people type: one rule, case-insensitive by
``str.casefold`` (so "Straße" and "STRASSE" are one name), surrounding spaces ignored."""

from __future__ import annotations

from collections.abc import Iterable

from storage.records import ArtistRecord
from storage.store import Store

__all__ = ["artist_named", "artists_named", "name_key"]


def name_key(name: str) -> str:
    """What two names typed for one artist have in common."""
    return name.strip().casefold()


def artists_named(store: Store, names: Iterable[str]) -> list[ArtistRecord]:
    """The registered artists called any of ``names`` (any case), in the store's order."""
    wanted = {name_key(n) for n in names}
    return [a for a in store.list_artists() if name_key(a.name) in wanted]


def artist_named(store: Store, name: str) -> ArtistRecord | None:
    """The registered artist called ``name`` (any case), or None."""
    return next(iter(artists_named(store, [name])), None)
