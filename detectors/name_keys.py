"""What the name automaton is keyed on: one key per registered spelling.

A spelling is a registered name or alias after :func:`~detectors.name_normalise.normalise`
(plus its plain transliteration when the name is not ASCII). Its key is the skeleton of the
whole spelling (``maraqueiibrook``; plus ``|john|smith``, which only the screening pass can
see, for a name keyed on all its words), or of its surname alone when that is a *distinctive
surname*: at least ``MIN_SURNAME_CHARS`` letters, no common word
(:func:`~detectors.name_frequency.common_words`, decided from word and surname frequency
data), and the surname of no other artist's spelling. The surname is the registered name's
last word as written (``Müller-Brandt``, ``O'Keeffe`` and ``McDonald`` are one surname of two
normalised words, so ``brandt`` or ``donald`` alone is never a key), with a particle before
it (``van Gogh``). A surname key remembers the words before it (the *prefix*) so a hit can
be checked for the full name in either order, and which artist it alone names.

Spellings are kept in flat parallel lists chained per key, not as one object each: a build
for 100,000 artists makes hundreds of thousands of them, and container objects would make
the garbage collector rescan them all again and again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TypeVar

from detectors.name_frequency import common_words
from detectors.name_normalise import normalise_many, skeleton_lines
from detectors.results import ArtistRef

MIN_KEY_CHARS = 4  # shorter names (after folding) are not indexed: they match everywhere
MIN_SURNAME_CHARS = 4
T = TypeVar("T")
_NAME_SUFFIXES = frozenset({"jr", "sr", "ii", "iii", "iv"})
_UMLAUTS = frozenset("äöüÄÖÜ")
_UMLAUT_SPELLING = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue"})
_PARTICLES = frozenset(
    {"van", "von", "de", "der", "den", "da", "di", "du", "del", "della", "la", "le", "ten", "ter"}
)
# A last word that normalises to more than one word: a separator, a digit, or a capital
# after its first letter (``Müller-Brandt``, ``O'Keeffe``, ``McDonald``).
_COMPOUND = re.compile(r"\S*(?:[^\w\s]|\d|(?<=\w)[A-Z])\S*$")


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
    owners, lines, sizes = _spellings(refs)
    lasts = [
        line[line.rfind(" ") + 1 :] if size == 1 else " ".join(line.split(" ")[-size:])
        for line, size in zip(lines, sizes, strict=True)
    ]
    surnames = _distinctive_surnames(owners, lasts)
    # Whole-list passes, not one loop with helper calls: they run once per spelling and
    # dominate the build time. A spelling is keyed on its surname or on all its words.
    on_surname = [
        len(last) < len(line) and surnames.get(last) == owner
        for owner, line, last in zip(owners, lines, lasts, strict=True)
    ]
    keys = [
        (last.replace(" ", "") if " " in last else last) if surname else line.replace(" ", "")
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
    joined = ((key.replace(" ", ""), owner) for key, owner in surnames.items())
    used = {key: owner for key, owner in joined if key in heads}
    return NameKeys(
        list(heads), list(heads.values()), owners, prefix, weak, chain, used, tuple(unindexed)
    )


def _pick(values: list[T], indexes: Iterable[int]) -> list[T]:
    return [values[index] for index in indexes]


def _spellings(refs: Sequence[ArtistRef]) -> tuple[list[int], list[str], list[int]]:
    """Parallel lists: artist index, skeleton line and surname size (in words) of each
    non-empty spelling."""
    owners: list[int] = []
    names: list[str] = []
    for index, ref in enumerate(refs):
        names.append(ref.name)
        names.extend(ref.aliases)
        owners.extend([index] * (1 + len(ref.aliases)))
    forms = normalise_many(names)
    sources = list(names)
    if not "".join(names).isascii():
        foreign = [index for index, name in enumerate(names) if not name.isascii()]
        more = [names[index] for index in foreign]
        forms.extend(normalise_many(more, homoglyphs=False))
        owners.extend([owners[index] for index in foreign])
        sources.extend(more)
        # German umlauts are also written ae, oe, ue (Müller, Mueller).
        umlauts = [index for index in foreign if _UMLAUTS.intersection(names[index])]
        more = [names[index].translate(_UMLAUT_SPELLING) for index in umlauts]
        forms.extend(normalise_many(more))
        owners.extend([owners[index] for index in umlauts])
        sources.extend(more)
    sizes = _surname_sizes(sources, forms)
    if "" in forms:
        kept = [index for index, form in enumerate(forms) if form]
        owners = [owners[index] for index in kept]
        forms = [forms[index] for index in kept]
        sizes = [sizes[index] for index in kept]
    return owners, skeleton_lines(forms), sizes


def _surname_sizes(sources: Sequence[str], forms: Sequence[str]) -> list[int]:
    """How many of each form's last normalised words are its surname (see the docstring).

    ``sources`` are the spellings as registered, one per form; a surname of one word, the
    usual case, costs one regex search.
    """
    sizes = [1] * len(forms)
    for index, (name, form) in enumerate(zip(sources, forms, strict=True)):
        words = name.split()
        compound = len(words) > 1 and _COMPOUND.match(words[-1]) is not None
        particle = len(words) > 2 and words[-2].lower() in _PARTICLES
        if compound or particle:
            tail = " ".join(words[-2:] if particle else words[-1:])
            size = len(normalise_many([tail])[0].split())
            sizes[index] = max(1, min(size, form.count(" ")))
    return sizes


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
        if owner >= 0 and len(surname) >= MIN_SURNAME_CHARS and _distinctive(surname, common)
    }


def _distinctive(surname: str, common: frozenset[str]) -> bool:
    """A one-word surname outside the common words; a compound one whose joined form is
    not common and one of whose words is neither common nor a particle."""
    if " " not in surname:
        return surname not in common
    words = surname.split(" ")
    if "".join(words) in common:
        return False
    return any(w not in common and w not in _PARTICLES and len(w) > 2 for w in words)


def is_common(word: str) -> bool:
    """Whether a skeleton word is too short or too common to name an artist on its own."""
    return len(word) < MIN_SURNAME_CHARS or word in _common_skeletons()


@cache
def _common_skeletons() -> frozenset[str]:
    return frozenset(skeleton_lines(sorted(common_words() | _NAME_SUFFIXES)))
