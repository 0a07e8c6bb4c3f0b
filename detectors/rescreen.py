"""Screening an upload again from what storage kept of it: its files' ``__metadata__`` and
the hub's text. A back-scan runs this over every recorded upload for newly registered names.

:func:`screen_groups` turns the stored metadata and hub text into the groups of fields the
first screening matched together: each readable file's metadata fields on their own (the
first one with the hub text), or the hub text alone for an upload with no readable file.
Storage keeps these groups, so a back-scan reads a few hundred characters per upload instead
of decoding whole headers again. :func:`rescreen` matches them, after one cheap pass over
all their text joined: most uploads name nobody, and a name absent from the joined text is
absent from every field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from detectors.metadata import metadata_fields
from detectors.names import ArtistIndex
from detectors.results import ArtistMatch, FileFormat, TextField

_JOINED_SOURCE = "stored text"
_SEPARATOR = "\n"

FieldGroups = Sequence[Sequence[TextField]]


@dataclass(frozen=True, slots=True)
class StoredFile:
    """One recorded file as a re-screen needs it."""

    format: FileFormat
    metadata: Mapping[str, str]


def screen_groups(
    files: Sequence[StoredFile], hub_text: Sequence[TextField]
) -> list[list[TextField]]:
    """The fields screening matched together, one group per readable file (hub text with
    the first), or the hub text alone when no file was readable."""
    readable = [f for f in files if f.format == "safetensors"]
    if not readable:
        return [list(hub_text)] if hub_text else []
    groups = [metadata_fields(f.metadata) for f in readable]
    groups[0].extend(hub_text)
    return groups


def rescreen(index: ArtistIndex, groups: FieldGroups) -> list[ArtistMatch]:
    """The artists of ``index`` the groups name: what screening would have found."""
    if not might_name(index, _SEPARATOR.join(f.text for group in groups for f in group)):
        return []
    return [match for group in groups for match in index.match(group)]


def might_name(index: ArtistIndex, text: str) -> bool:
    """False only when no artist of ``index`` can be named by fields whose texts all lie in
    ``text`` between non-letters (a cheap pass: one automaton run over the whole text)."""
    return bool(text) and bool(index.match([TextField(_JOINED_SOURCE, text)]))
