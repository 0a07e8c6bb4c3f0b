"""Registered artists' names found in an upload's text, with one automaton for every artist.

:meth:`ArtistIndex.build` folds each registered name and alias with
:func:`~detectors.name_normalise.normalise` and puts its *skeleton* (words joined without
spaces, ``i``/``l``/``1`` as one letter) into a single Aho-Corasick automaton, so screening
costs the same for ten artists or a hundred thousand. Because the skeleton has no spaces,
``mara quellbrook``, ``mara_quellbrook``, ``MaraQuellbrook`` and ``maraquellbrook`` are one
pattern. A name whose last word is a *distinctive surname* (at least
:data:`~detectors.name_keys.MIN_SURNAME_CHARS` letters, not in
:data:`~detectors.name_stoplist.COMMON_SURNAMES`, the last word of no other
artist's name) is keyed on that surname, and the words before it are checked on a hit; so
``quellbrook`` alone matches too, while ``smith`` alone matches nobody.

:meth:`ArtistIndex.match` first runs the automaton once over all fields joined, in a cheap
screening form (:func:`~detectors.name_normalise.screen_forms`: two bytes passes, separators
kept as ``|``); a raw hit that cannot end a word (``harbo`` in ``harbor``) is dropped at once,
so most uploads never leave this pass. Fields with a raw hit left are tokenised properly (and
remembered: tags recur across uploads), and a hit counts only when it starts and ends on word
boundaries (``arthur`` does not match inside ``arthurian``; ``quellbrook-000010``,
``quellbrook_v2``, ``quellbrookV2`` and ``quellbrook style`` do match). A hit inside a longer
hit is dropped (``Arthur`` does not match inside ``Arthur Rackham``). Not matched: a surname
glued behind other letters (``TheQuellbrook``; the full ``MaraQuellbrook`` does match) and
a name split by a lone ``@`` or ``$`` between words.

Scoring. Each hit has a *strength* (:data:`STRENGTH`) from what matched, the kind of field and
whether the words around it say "this artist's style":

============================  =====================  ================  ============
matched                       name field             tag field         free text
============================  =====================  ================  ============
full name, with context       0.95                   0.95              0.65
full name                     0.90                   0.80              0.50
surname only, with context    0.40                   0.40              0.35
surname only                  0.35                   0.35              0.30
============================  =====================  ================  ============

*Name fields* are dataset folders and file or model names (``ss_dataset_dirs``,
``ss_output_name``, ``modelspec.title``, …); *tag fields* are training tags, trigger words and
prompts (``ss_tag_frequency``, ``trainedWords``, ``prompt``, ``modelspec.tags``, …); anything
else is free text (descriptions, ``ss_training_comment``). *Context* is ``by <name>``,
``artist <name>``, ``style of <name>`` (so ``in the style of <name>``) or ``<name> style``
(``<name>'s style``, ``<name> art style``). A one-word name that is a common word or shorter
than ``MIN_SURNAME_CHARS`` scores as a surname. An artist's score combines the strongest
hit of each source (metadata key) by noisy-or, ``1 - prod(1 - s)``, capped at
:data:`MAX_SCORE`: independent fields raise it, repeats in one field do not.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from typing import Literal

import ahocorasick

from detectors.name_keys import NameKeys, build_keys
from detectors.name_normalise import Token, normalise, screen_forms, skeleton_words, tokens
from detectors.results import ArtistMatch, ArtistRef, Evidence, TextField

HitKind = Literal["name", "surname", "word"]
FieldKind = Literal["name", "tag", "text"]

MAX_QUOTE_CHARS = 200
MAX_SCORE = 0.99
MAX_CACHED_FIELDS = 65_536
_FIELD_SEPARATOR = "\x00"
_FIELD_START = _FIELD_SEPARATOR + "|"

STRENGTH: Mapping[tuple[HitKind, FieldKind, bool], float] = {
    ("name", "name", True): 0.95,
    ("name", "name", False): 0.90,
    ("name", "tag", True): 0.95,
    ("name", "tag", False): 0.80,
    ("name", "text", True): 0.65,
    ("name", "text", False): 0.50,
    **{("surname", kind, True): 0.40 for kind in ("name", "tag")},
    **{("surname", kind, False): 0.35 for kind in ("name", "tag")},
    ("surname", "text", True): 0.35,
    ("surname", "text", False): 0.30,
}
_NAME_SOURCE_PARTS = ("output_name", "title", "dataset", "_dirs", "filename", "ot_config")
_TAG_SOURCE_PARTS = ("tag", "trigger", "trained", "prompt", "class_token", "keyword", "style")
_BEFORE_ONE = frozenset({"by", "artist"})
_BEFORE_TWO = frozenset({("style", "of"), ("styles", "of"), ("works", "of")})
_AFTER_ONE = frozenset({"style", "styled", "artstyle", "aesthetic"})
_AFTER_TWO = frozenset({("s", "style"), ("art", "style"), ("s", "art")})


@dataclass(frozen=True, slots=True)
class NameHit:
    """One place a registered name matched, and why it counts as much as it does.

    ``text`` is the field as found (or a window of :data:`MAX_QUOTE_CHARS` around the hit);
    ``start``/``end`` the hit's span in the field's text; ``matched`` the normalised words
    that matched; ``strength`` is :data:`STRENGTH` of (``kind``, ``field_kind``, ``context``).
    """

    artist_id: int
    artist: str
    source: str
    text: str
    start: int
    end: int
    matched: str
    kind: HitKind
    field_kind: FieldKind
    context: bool
    strength: float

    @property
    def evidence(self) -> Evidence:
        return Evidence(source=self.source, text=self.text)


@dataclass(frozen=True, slots=True)
class _Span:
    """A verified hit in one field's token list: words ``first..last`` inclusive."""

    start: int  # skeleton offsets, for dropping hits inside longer ones
    end: int
    first: int
    last: int
    artist: int
    kind: HitKind


@dataclass(frozen=True, slots=True)
class _Found:
    """A verified hit in a text, whatever field it came in: original span, words, context."""

    artist: int
    kind: HitKind
    start: int
    end: int
    matched: str
    context: bool


def field_kind(source: str) -> FieldKind:
    """Whether a field names the training data, tags it, or is free text (see the table)."""
    lowered = source.lower()
    if "negative" in lowered:
        return "text"
    if lowered == "name" or lowered.endswith(".name") or _has_part(lowered, _NAME_SOURCE_PARTS):
        return "name"
    return "tag" if _has_part(lowered, _TAG_SOURCE_PARTS) else "text"


# Sources are metadata keys, a few dozen names in practice; bounded against hostile headers.
_field_kind = lru_cache(maxsize=4096)(field_kind)


def _has_part(source: str, parts: Sequence[str]) -> bool:
    return any(part in source for part in parts)


class ArtistIndex:
    """Every registered artist's names in one automaton. Build once, match many times."""

    __slots__ = ("_artists", "_automaton", "_field_cache", "_keys")

    def __init__(self, artists: tuple[ArtistRef, ...], keys: NameKeys) -> None:
        self._artists = artists
        self._keys = keys
        self._automaton: ahocorasick.Automaton | None = None
        # Tags and folder names recur across uploads and fields ("10_quellbrook style" is in
        # ss_dataset_dirs and ss_tag_frequency); a text the cheap pass flags is verified once.
        # Bounded: cleared when full.
        self._field_cache: dict[str, tuple[_Found, ...]] = {}
        if keys.keys:
            self._automaton = ahocorasick.Automaton(ahocorasick.STORE_INTS)
            add_word = self._automaton.add_word
            for key_id, key in enumerate(keys.keys):
                add_word(key, key_id)
            self._automaton.make_automaton()

    @classmethod
    def build(cls, artists: Iterable[ArtistRef]) -> ArtistIndex:
        """Index every artist's name and aliases (and their transliterations)."""
        refs = tuple(artists)
        return cls(refs, build_keys(refs))

    @property
    def unindexed(self) -> list[tuple[int, str]]:
        """(artist_id, normalised name) of names too short to match safely (not indexed)."""
        return [(self._artists[owner].artist_id, name) for owner, name in self._keys.unindexed]

    def clear_cache(self) -> None:
        """Forget the verified fields (the cache is bounded; this is for memory and benchmarks)."""
        self._field_cache.clear()

    @property
    def automaton(self) -> ahocorasick.Automaton | None:
        """The one automaton (for benchmarks and diagnostics; do not add words to it)."""
        return self._automaton

    def match(self, fields: Iterable[TextField]) -> list[ArtistMatch]:
        """One :class:`ArtistMatch` per artist named in ``fields``, highest score first."""
        scored: list[_Scored] = []
        for field, where in self._located(fields):
            ref = self._artists[where.artist]
            strength = _strength(where, _field_kind(field.source))
            scored.append((ref.artist_id, ref.name, field.source, field.text, where, strength))
        return _combine(scored)

    def hits(self, fields: Iterable[TextField]) -> list[NameHit]:
        """Every verified hit, in field order, to explain a match."""
        return [self._hit(field, where) for field, where in self._located(fields)]

    def _located(self, fields: Iterable[TextField]) -> list[tuple[TextField, _Found]]:
        """Each verified hit with the field it is in, in field order."""
        field_list = fields if isinstance(fields, list | tuple) else tuple(fields)
        if self._automaton is None or not field_list:
            return []
        found: list[tuple[TextField, _Found]] = []
        automaton = self._automaton
        cache = self._field_cache
        for index in sorted(self._flagged(field_list, automaton)):
            field = field_list[index]
            in_text = cache.get(field.text)
            if in_text is None:
                in_text = tuple(self._found(field.text, automaton))
                if len(cache) >= MAX_CACHED_FIELDS:
                    cache.clear()
                cache[field.text] = in_text
            found.extend((field, where) for where in in_text)
        return found

    def _flagged(self, fields: Sequence[TextField], automaton: ahocorasick.Automaton) -> set[int]:
        """Indexes of the fields the cheap pass over all fields at once finds anything in."""
        texts = [field.text for field in fields]
        joined = _FIELD_SEPARATOR.join(texts)
        if joined.count(_FIELD_SEPARATOR) != len(fields) - 1:
            texts = [text.replace(_FIELD_SEPARATOR, " ") for text in texts]
        # Each field starts with a separator, so keys anchored on "|" match at its start too.
        joined = "|" + _FIELD_START.join(texts)
        forms = [screen_forms(joined)]
        if not joined.isascii():
            forms.append(screen_forms(joined, homoglyphs=False))
        flagged: set[int] = set()
        for form, cased in forms:
            for end, _ in automaton.iter(form):
                if _ends_word(cased, end):
                    flagged.add(form.count(_FIELD_SEPARATOR, 0, end))
        return flagged

    def _found(self, text: str, automaton: ahocorasick.Automaton) -> Iterator[_Found]:
        """Verified hits in one text: cheap word lists first, offsets only when something holds."""
        seen: set[tuple[int, HitKind, int, int]] = set()
        for homoglyphs, words in _word_forms(text):
            spans = _outermost(list(self._spans(words, automaton)))
            if not spans:
                continue
            located = tokens(text, homoglyphs=homoglyphs)
            for span in spans:
                start, end = located[span.first].start, located[span.last].end
                if (span.artist, span.kind, start, end) not in seen:
                    seen.add((span.artist, span.kind, start, end))
                    matched = " ".join(word.text for word in located[span.first : span.last + 1])
                    context = _has_context(located, span.first, span.last)
                    yield _Found(span.artist, span.kind, start, end, matched, context)

    def _spans(self, words: Sequence[str], automaton: ahocorasick.Automaton) -> Iterator[_Span]:
        """Automaton hits on the words' skeleton that start and end on word boundaries."""
        skeletons = skeleton_words(words)
        text = "".join(skeletons)
        bounds = _WordBounds(list(accumulate(map(len, skeletons))))
        for end, key_id in automaton.iter(text):
            if end + 1 in bounds.ends:
                begin = end + 1 - len(self._keys.keys[key_id])
                spellings = self._keys.spellings(key_id)
                owner = self._keys.surname_of(key_id)
                yield from _key_spans(spellings, owner, text, (begin, end + 1), bounds)

    def _hit(self, field: TextField, where: _Found) -> NameHit:
        kind = _field_kind(field.source)
        ref = self._artists[where.artist]
        return NameHit(
            artist_id=ref.artist_id,
            artist=ref.name,
            source=field.source,
            text=quote(field.text, where.start, where.end),
            start=where.start,
            end=where.end,
            matched=where.matched,
            kind=where.kind,
            field_kind=kind,
            context=where.context,
            strength=_strength(where, kind),
        )


def _strength(where: _Found, field: FieldKind) -> float:
    return STRENGTH["surname" if where.kind == "word" else where.kind, field, where.context]


class _WordBounds:
    """Where the words of a skeleton text end, to test and index word boundaries."""

    __slots__ = ("ends", "offsets")

    def __init__(self, offsets: list[int]) -> None:
        self.offsets = offsets
        self.ends = set(offsets)

    def starting_at(self, offset: int) -> int | None:
        """The index of the word starting at ``offset``, or None inside a word."""
        if offset == 0:
            return 0
        return bisect_left(self.offsets, offset) + 1 if offset in self.ends else None

    def ending_at(self, offset: int) -> int:
        """The index of the word ending at ``offset`` (which must be a word end)."""
        return bisect_left(self.offsets, offset)


def _key_spans(
    spellings: Iterable[tuple[int, str, bool]],
    owner: int,
    text: str,
    span: tuple[int, int],
    bounds: _WordBounds,
) -> Iterator[_Span]:
    """The spellings under a key whose words before the key are there too; then the surname."""
    begin, end = span
    last = bounds.ending_at(end)
    named: set[int] = set()
    for artist, prefix, weak in spellings:
        first = bounds.starting_at(begin - len(prefix))
        if first is not None and text.startswith(prefix, begin - len(prefix)):
            named.add(artist)
            kind: HitKind = "word" if weak else "name"
            yield _Span(begin - len(prefix), end, first, last, artist, kind)
    if owner >= 0 and owner not in named and (first := bounds.starting_at(begin)) is not None:
        yield _Span(begin, end, first, last, owner, "surname")


def _ends_word(cased: bytes, end: int) -> bool:
    """Whether a word can end after ``cased[end]`` (a screening form, separators as ``|``)."""
    after = cased[end + 1 : end + 2]
    if not after.isalpha():
        return True  # a separator, the end, a digit (maybe leet), ``@`` or ``$``
    before = cased[end : end + 1]
    return not before.isalpha() or (before.islower() and after.isupper())


def _outermost(spans: list[_Span]) -> list[_Span]:
    """Drop spans that lie strictly inside another span."""
    return [
        span
        for span in spans
        if not any(
            other.start <= span.start
            and span.end <= other.end
            and other.end - other.start > span.end - span.start
            for other in spans
        )
    ]


def _word_forms(text: str) -> list[tuple[bool, list[str]]]:
    """The field's normalised words with homoglyphs folded, plus transliterated if different."""
    folded = normalise(text).split(" ")
    if text.isascii():
        return [(True, folded)]
    plain = normalise(text, homoglyphs=False).split(" ")
    return [(True, folded)] if plain == folded else [(True, folded), (False, plain)]


def _has_context(words: Sequence[Token], first: int, last: int) -> bool:
    before = tuple(word.text for word in words[max(0, first - 2) : first])
    after = tuple(word.text for word in words[last + 1 : last + 3])
    return (
        (bool(before) and before[-1] in _BEFORE_ONE)
        or before in _BEFORE_TWO
        or (bool(after) and after[0] in _AFTER_ONE)
        or after in _AFTER_TWO
    )


def quote(text: str, start: int, end: int) -> str:
    """``text`` as found when short, else a :data:`MAX_QUOTE_CHARS` window around the hit."""
    if len(text) <= MAX_QUOTE_CHARS:
        return text
    if end - start >= MAX_QUOTE_CHARS:
        return text[start:end]
    left = start - (MAX_QUOTE_CHARS - (end - start)) // 2
    left = max(0, min(left, len(text) - MAX_QUOTE_CHARS))
    return text[left : left + MAX_QUOTE_CHARS]


def matches_from_hits(hits: Sequence[NameHit]) -> list[ArtistMatch]:
    """Combine hits into one :class:`ArtistMatch` per artist (see the module's scoring)."""
    return _combine([(h.artist_id, h.artist, h.source, h.text, None, h.strength) for h in hits])


# A hit as scoring needs it: artist id and name, source, the field's text (quoted as is when
# the place is None), the place in it, strength.
_Scored = tuple[int, str, str, str, "_Found | None", float]


def _combine(scored: Sequence[_Scored]) -> list[ArtistMatch]:
    if not scored:
        return []
    by_artist: dict[int, list[_Scored]] = {}
    for hit in scored:
        by_artist.setdefault(hit[0], []).append(hit)
    matches = [_artist_match(artist_hits) for artist_hits in by_artist.values()]
    return sorted(matches, key=lambda m: (-m.score, m.artist, m.artist_id))


def _artist_match(hits: Sequence[_Scored]) -> ArtistMatch:
    best_per_source: dict[str, float] = {}
    best_per_quote: dict[tuple[str, str], float] = {}
    for _, _, source, text, where, strength in hits:
        best_per_source[source] = max(best_per_source.get(source, 0.0), strength)
        quoted = (source, text if where is None else quote(text, where.start, where.end))
        best_per_quote[quoted] = max(best_per_quote.get(quoted, 0.0), strength)
    missing = 1.0
    for strength in best_per_source.values():
        missing *= 1.0 - strength
    ranked = sorted(best_per_quote, key=lambda q: (-best_per_quote[q], q))
    return ArtistMatch(
        artist_id=hits[0][0],
        artist=hits[0][1],
        score=round(min(MAX_SCORE, 1.0 - missing), 4),
        stage="metadata",
        evidence=tuple(Evidence(source=source, text=text) for source, text in ranked),
    )
