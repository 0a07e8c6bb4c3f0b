"""Sentences the CLI and the web pages both say, written once."""

from __future__ import annotations

from storage.records import ArtistRemoval


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 artist``, ``2 artists``, ``0 artists`` (``many`` where adding an s is wrong)."""
    return f"{count:,} {word if count == 1 else many or word + 's'}"


def removal_text(removal: ArtistRemoval, *, done: bool) -> str:
    """What removing an artist takes with it (``done``: what it took)."""
    what = (
        f"{plural(removal.findings, 'finding')}, {plural(removal.subscriptions, 'subscription')}"
        f" and {plural(removal.images, 'reference image')}"
    )
    users = (
        f"; {plural(removal.users, 'web user')} linked to them will keep the account, unlinked"
        if removal.users
        else ""
    )
    if done:
        return f"removed {removal.name} with {what}"
    return f"removing {removal.name} removes {what}{users}"
