"""monitor.artists: the registered artists as people give them to us: artist lists from
CSV or TOML files (`artist_file`), reference images checked and stored (`references`), and
looking an artist up by the name someone typed (`lookup`, one casefold rule)."""

from __future__ import annotations

# Its modules (imported on use, not here).
__all__ = [
    "artist_file",
    "lookup",
    "references",
]
