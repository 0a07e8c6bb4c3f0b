"""Artist steps inside a `storage.store.Store` transaction: register, alias, bulk import,
reference images. Names match case-insensitively; user mistakes raise ``InputError``."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, select

from detectors.alias_rules import HeldName, conflict
from detectors.errors import InputError
from storage.loaders import pk
from storage.models import Alias, Artist, ReferenceImage

ArtistEntry = tuple[str, Iterable[str], str | None]


def clean(value: str, what: str) -> str:
    """``value`` without surrounding blanks; ``InputError`` when nothing is left."""
    value = value.strip()
    if not value:
        raise InputError(f"the {what} is empty")
    return value


def artist_by_name(session: Session, name: str) -> Artist | None:
    return session.exec(select(Artist).where(func.lower(Artist.name) == name.lower())).first()


def find_artist(session: Session, artist: str | int) -> Artist:
    """The artist with this id or name; ``InputError`` when there is none."""
    row = (
        session.get(Artist, artist) if isinstance(artist, int) else artist_by_name(session, artist)
    )
    if row is None:
        raise InputError(f"no artist {artist!r}; register it first with `stylewatch artist add`")
    return row


def held_names(session: Session) -> list[HeldName]:
    """Every registered name and alias with the artist holding it."""
    names = session.exec(select(Artist.id, Artist.name)).all()
    aliases = session.exec(select(Alias.artist_id, Alias.alias)).all()
    return [HeldName(pk_, text, True) for pk_, text in names if pk_ is not None] + [
        HeldName(owner, text, False) for owner, text in aliases
    ]


def refuse_held(session: Session, text: str, artist_id: int | None, what: str) -> None:
    """``InputError`` when ``text`` reads as a name or alias another artist holds."""
    other = conflict(text, artist_id, held_names(session), is_name=what == "artist name")
    if other is not None:
        held = "name" if other.is_name else "alias"
        raise InputError(
            f"the {what} {text!r} reads as another artist's {held}; "
            "names and aliases are each held by one artist"
        )


def create_artist(
    session: Session, name: str, aliases: Iterable[str], email: str | None, now: datetime
) -> Artist:
    name = clean(name, "artist name")
    if artist_by_name(session, name) is not None:
        raise InputError(f"an artist named {name!r} already exists; add aliases to it")
    refuse_held(session, name, None, "artist name")
    artist = Artist(name=name, email=email, created_at=now)
    session.add(artist)
    session.flush()
    add_aliases(session, artist, aliases)
    return artist


def add_aliases(session: Session, artist: Artist, aliases: Iterable[str]) -> bool:
    """Add the aliases the artist lacks; True when any was added."""
    wanted = dict.fromkeys(clean(a, "alias") for a in aliases)
    known = set(session.exec(select(Alias.alias).where(Alias.artist_id == pk(artist))).all())
    new = [a for a in wanted if a not in known]
    for alias in new:
        refuse_held(session, alias, pk(artist), "alias")
        session.add(Alias(artist_id=pk(artist), alias=alias))
    session.flush()
    return bool(new)


def import_artists(
    session: Session, entries: Iterable[ArtistEntry], now: datetime
) -> tuple[int, int]:
    """Register new artists; give known ones their missing aliases (and an email if they
    have none). Returns (registered, updated)."""
    added = updated = 0
    for name, aliases, email in entries:
        artist = artist_by_name(session, clean(name, "artist name"))
        if artist is None:
            create_artist(session, name, aliases, email, now)
            added += 1
            continue
        changed = add_aliases(session, artist, aliases)
        if email and not artist.email:
            artist.email = email
            session.add(artist)
            changed = True
        updated += changed
    session.flush()
    return added, updated


def add_reference_image(
    session: Session,
    artist_id: int,
    sha256: str,
    *,
    mime: str,
    width: int,
    height: int,
    size: int,
    now: datetime,
    thumb_sha256: str | None = None,
) -> bool:
    """Link a stored blob to an artist as a reference image; False when already linked."""
    find_artist(session, artist_id)
    key = sha256.lower()
    existing = session.exec(
        select(ReferenceImage).where(
            ReferenceImage.artist_id == artist_id, ReferenceImage.sha256 == key
        )
    ).first()
    if existing is not None:
        if thumb_sha256 is not None and existing.thumb_sha256 is None:
            existing.thumb_sha256 = thumb_sha256
            session.add(existing)
        return False
    session.add(
        ReferenceImage(
            artist_id=artist_id,
            sha256=key,
            mime=mime,
            width=width,
            height=height,
            size=size,
            created_at=now,
            thumb_sha256=thumb_sha256,
        )
    )
    session.flush()
    return True
