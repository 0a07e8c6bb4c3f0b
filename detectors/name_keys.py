"""What the name automaton is keyed on: one key per registered spelling.

A spelling is a registered name or alias after :func:`~detectors.name_normalise.normalise`
(plus its plain transliteration when the name is not ASCII). Its key is the skeleton of the
whole spelling (``maraqueiibrook``; plus ``|john|smith``, which only the screening pass can
see, for a name keyed on all its words), or of its last word alone when that word is a
*distinctive surname*: at least ``MIN_SURNAME_CHARS`` letters, not in
:data:`~detectors.name_stoplist.COMMON_SURNAMES`, and the last word of no other artist's
spelling. A surname key remembers the words before it (the *prefix*) so a hit can be checked
for the full name, and which artist it alone names.

Spellings are kept in flat parallel lists chained per key, not as one object each: a build
for 100,000 artists makes hundreds of thousands of them, and container objects would make
the garbage collector rescan them all again and again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TypeVar

from detectors.name_normalise import normalise_many, skeleton_lines
from detectors.name_stoplist import COMMON_SURNAMES
from detectors.results import ArtistRef

MIN_KEY_CHARS = 4  # shorter names (after folding) are not indexed: they match everywhere
MIN_SURNAME_CHARS = 5
T = TypeVar("T")
_NAME_SUFFIXES = frozenset({"jr", "sr", "ii", "iii", "iv"})


@dataclass(frozen=True, slots=True)
class NameKeys:
    """Keys (by key id) and the spellings under each, in parallel lists.

    ``unindexed`` holds (artist index, normalised name) for names too short to index.
    """

    keys: list[str]
    heads: list[int]
    artist: list[int]
    prefix: list[str]
    weak: list[bool]
    chain: list[int]
    surnames: dict[str, int]
    unindexed: tuple[tuple[int, str], ...]

    def spellings(self, key_id: int) -> Iterator[tuple[int, str, bool]]:
        """(artist index, skeleton prefix, weak) of each spelling under a key."""
        index = self.heads[key_id]
        while index >= 0:
            yield self.artist[index], self.prefix[index], self.weak[index]
            index = self.chain[index]

    def surname_of(self, key_id: int) -> int:
        """The artist whose distinctive surname the key is, or -1."""
        return self.surnames.get(self.keys[key_id], -1)


def build_keys(refs: Sequence[ArtistRef]) -> NameKeys:
    """Key every spelling of every artist (see the module docstring)."""
    owners, lines = _spellings(refs)
    lasts = [line[line.rfind(" ") + 1 :] for line in lines]
    surnames = _distinctive_surnames(owners, lasts)
    # Whole-list passes, not one loop with helper calls: they run once per spelling and
    # dominate the build time. A spelling is keyed on its surname or on all its words.
    on_surname = [
        len(last) < len(line) and surnames.get(last) == owner
        for owner, line, last in zip(owners, lines, lasts, strict=True)
    ]
    keys = [
        last if surname else line.replace(" ", "")
        for surname, line, last in zip(on_surname, lines, lasts, strict=True)
    ]
    unindexed = [
        (o, line) for o, line, k in zip(owners, lines, keys, strict=True) if len(k) < MIN_KEY_CHARS
    ]
    if unindexed:
        kept = [index for index, key in enumerate(keys) if len(key) >= MIN_KEY_CHARS]
        owners, lines, lasts = _pick(owners, kept), _pick(lines, kept), _pick(lasts, kept)
        keys, on_surname = _pick(keys, kept), _pick(on_surname, kept)
    common = _common_skeletons()
    prefix = [
        line[: -len(last) - 1].replace(" ", "") if surname else ""
        for surname, line, last in zip(on_surname, lines, lasts, strict=True)
    ]
    weak = [
        len(key) == len(line) and (len(key) < MIN_SURNAME_CHARS or key in common)
        for key, line in zip(keys, lines, strict=True)
    ]
    heads: dict[str, int] = {}
    chain: list[int] = []
    for index, key in enumerate(keys):
        chain.append(heads.get(key, -1))
        heads[key] = index
    multi_word = zip(lines, keys, on_surname, strict=True)
    _add_screening_keys(
        heads, (line for line, k, on in multi_word if not on and len(k) < len(line))
    )
    used = {key: owner for key, owner in surnames.items() if key in heads}
    return NameKeys(
        list(heads), list(heads.values()), owners, prefix, weak, chain, used, tuple(unindexed)
    )


def _pick(values: list[T], indexes: Iterable[int]) -> list[T]:
    return [values[index] for index in indexes]


def _add_screening_keys(heads: dict[str, int], lines: Iterable[str]) -> None:
    """Key multi-word spellings as the screening pass sees them (``|john|smith``).

    The screening pass sees separators as ``|``, so ``johnsmith`` alone would not flag the
    field ``john smith``. A spelling one of whose words is a key already needs no key of its
    own: that word, ending on a word boundary, flags the same fields.
    """
    keyed = heads.keys()
    for line in lines:
        words = line.split(" ")
        if keyed.isdisjoint(words):
            heads.setdefault("|" + "|".join(words), -1)


def _spellings(refs: Sequence[ArtistRef]) -> tuple[list[int], list[str]]:
    """Parallel lists: artist index and skeleton line of each non-empty spelling."""
    owners: list[int] = []
    names: list[str] = []
    for index, ref in enumerate(refs):
        names.append(ref.name)
        names.extend(ref.aliases)
        owners.extend([index] * (1 + len(ref.aliases)))
    forms = normalise_many(names)
    if not "".join(names).isascii():
        foreign = [index for index, name in enumerate(names) if not name.isascii()]
        forms.extend(normalise_many([names[index] for index in foreign], homoglyphs=False))
        owners.extend([owners[index] for index in foreign])
    if "" in forms:
        kept = [index for index, form in enumerate(forms) if form]
        owners = [owners[index] for index in kept]
        forms = [forms[index] for index in kept]
    return owners, skeleton_lines(forms)


def _distinctive_surnames(owners: Sequence[int], lasts: Sequence[str]) -> dict[str, int]:
    """Skeleton of each distinctive last word -> the one artist it belongs to."""
    owner_of: dict[str, int] = {}
    common = _common_skeletons()
    for owner, last in zip(owners, lasts, strict=True):
        if owner_of.setdefault(last, owner) != owner:
            owner_of[last] = -1
    return {
        surname: owner
        for surname, owner in owner_of.items()
        if owner >= 0 and len(surname) >= MIN_SURNAME_CHARS and surname not in common
    }


def is_common(word: str) -> bool:
    """Whether a skeleton word is too short or too common to name an artist on its own."""
    return len(word) < MIN_SURNAME_CHARS or word in _common_skeletons()


@cache
def _common_skeletons() -> frozenset[str]:
    return frozenset(skeleton_lines(sorted(COMMON_SURNAMES | _NAME_SUFFIXES)))
