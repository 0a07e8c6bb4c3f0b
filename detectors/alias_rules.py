"""Which names and aliases an artist may hold: none that another artist already holds.

Names are compared in the matcher's own folded form (:func:`name_key`: normalised, then
skeleton), so ``Tоmasz Wren`` with a Cyrillic ``о``, ``T0masz_Wren`` and ``TomaszWren`` are
all the name ``Tomasz Wren``: if one artist could add another's name as an alias in any of
these spellings, the matcher would flag her on the other artist's uploads.

:func:`conflict` says whether a spelling reads as one another artist holds (equal keys, the
other's full name inside it as whole words, or the other's distinctive surname as one of its
words). :func:`indistinct` says whether a self-service alias is too short or too generic
("lora", "a", "style") to name one artist; operators may still register such aliases.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from detectors.name_frequency import common_words
from detectors.name_keys import MIN_SURNAME_CHARS, is_common
from detectors.name_normalise import normalise, skeleton, skeleton_words

# An alias an artist adds herself needs this many letters or digits once folded.
MIN_ALIAS_CHARS = 5
# Words of model files and their pages that name no artist, beyond the common surnames.
_GENERIC = """
    lora lycoris locon loha lokr model checkpoint embedding textual inversion style styles
    art artwork artstyle artist illustration painting drawing sketch anime realistic photo
    portrait character concept fanart sd sdxl xl pony flux illustrious noob v epoch final
    best quality masterpiece by the of and a an in on with
"""
GENERIC_WORDS: frozenset[str] = frozenset(skeleton_words(_GENERIC.split()))


@dataclass(frozen=True, slots=True)
class HeldName:
    """One spelling (a registered name or alias) and which artist holds it."""

    artist_id: int
    text: str
    is_name: bool


@cache
def _common_words() -> frozenset[str]:
    return GENERIC_WORDS | frozenset(skeleton_words(sorted(common_words())))


def name_key(text: str) -> str:
    """The folded form two spellings share when the matcher cannot tell them apart."""
    return skeleton(normalise(text))


def _words(text: str) -> list[str]:
    return [w for w in skeleton_words(normalise(text).split()) if w]


def _contains(words: list[str], part: list[str]) -> bool:
    n = len(part)
    return n > 0 and any(words[i : i + n] == part for i in range(len(words) - n + 1))


def conflict(
    text: str, artist_id: int | None, held: Iterable[HeldName], *, is_name: bool = False
) -> HeldName | None:
    """The first spelling of another artist that ``text`` reads as, or None.

    ``artist_id`` is the artist who would hold ``text`` (None for a new artist). A new
    artist's name conflicts only when its key equals another spelling's: two people may
    share a surname; an alias may not carry another artist's surname or full name.
    """
    key, words = name_key(text), _words(text)
    for other in held:
        if other.artist_id == artist_id:
            continue
        if name_key(other.text) == key and key:
            return other
        if is_name:
            continue
        other_words = _words(other.text)
        if other.is_name and len(other_words) > 1 and _contains(words, other_words):
            return other
        surname = other_words[-1] if other.is_name and other_words else ""
        if len(surname) >= MIN_SURNAME_CHARS and not is_common(surname) and surname in words:
            return other
    return None


def indistinct(alias: str) -> str | None:
    """Why a self-service alias names no one artist (one clause), or None when it does."""
    key = name_key(alias)
    if len(key) < MIN_ALIAS_CHARS:
        return f"it needs at least {MIN_ALIAS_CHARS} letters or digits"
    words, common = _words(alias), _common_words()
    if all(w in common or len(w) <= 2 or w.isdigit() for w in words):
        return "its words are too common to name one artist"
    return None
