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

:meth:`ArtistIndex.match` first runs the automaton over all fields at once in a cheap,
coarser form (:func:`~detectors.name_normalise.screen_form`: one bytes pass); only fields with
a raw hit are tokenised properly, and a hit counts only when it starts and ends on word
boundaries (``arthur`` does not match inside ``arthurian``; ``quellbrook-000010``,
``quellbrook_v2``, ``quellbrookV2`` and ``quellbrook style`` do match). A hit inside a longer
hit is dropped (``Arthur`` does not match inside ``Arthur Rackham``).

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

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import ahocorasick

from detectors.name_keys import NameKeys, build_keys
from detectors.name_normalise import Token, screen_form, skeleton, tokens
from detectors.results import ArtistMatch, ArtistRef, Evidence, TextField

HitKind = Literal["name", "surname", "word"]
FieldKind = Literal["name", "tag", "text"]

MAX_QUOTE_CHARS = 200
MAX_SCORE = 0.99
_FIELD_SEPARATOR = "\x00"

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
    ``matched`` the normalised words that matched; ``strength`` is :data:`STRENGTH` of
    (``kind``, ``field_kind``, ``context``).
    """

    artist_id: int
    artist: str
    source: str
    text: str
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


def field_kind(source: str) -> FieldKind:
    """Whether a field names the training data, tags it, or is free text (see the table)."""
    lowered = source.lower()
    if "negative" in lowered:
        return "text"
    if lowered == "name" or lowered.endswith(".name") or _has_part(lowered, _NAME_SOURCE_PARTS):
        return "name"
    return "tag" if _has_part(lowered, _TAG_SOURCE_PARTS) else "text"


def _has_part(source: str, parts: Sequence[str]) -> bool:
    return any(part in source for part in parts)


class ArtistIndex:
    """Every registered artist's names in one automaton. Build once, match many times."""

    __slots__ = ("_artists", "_automaton", "_keys")

    def __init__(self, artists: tuple[ArtistRef, ...], keys: NameKeys) -> None:
        self._artists = artists
        self._keys = keys
        self._automaton: ahocorasick.Automaton | None = None
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

    @property
    def automaton(self) -> ahocorasick.Automaton | None:
        """The one automaton (for benchmarks and diagnostics; do not add words to it)."""
        return self._automaton

    def match(self, fields: Iterable[TextField]) -> list[ArtistMatch]:
        """One :class:`ArtistMatch` per artist named in ``fields``, highest score first."""
        return matches_from_hits(self.hits(fields))

    def hits(self, fields: Iterable[TextField]) -> list[NameHit]:
        """Every verified hit, in field order, to explain a match."""
        field_list = tuple(fields)
        if self._automaton is None or not field_list:
            return []
        found: list[NameHit] = []
        automaton = self._automaton
        for index in sorted(self._flagged(field_list, automaton)):
            found.extend(self._field_hits(field_list[index], automaton))
        return found

    def _flagged(self, fields: Sequence[TextField], automaton: ahocorasick.Automaton) -> set[int]:
        """Indexes of the fields the cheap pass over all fields at once finds anything in."""
        joined = _FIELD_SEPARATOR.join([field.text for field in fields])
        if joined.count(_FIELD_SEPARATOR) != len(fields) - 1:
            texts = [field.text.replace(_FIELD_SEPARATOR, " ") for field in fields]
            joined = _FIELD_SEPARATOR.join(texts)
        forms = [screen_form(joined)]
        if not joined.isascii():
            forms.append(screen_form(joined, homoglyphs=False))
        flagged: set[int] = set()
        for form in forms:
            for end, _ in automaton.iter(form):
                flagged.add(form.count(_FIELD_SEPARATOR, 0, end))
        return flagged

    def _field_hits(self, field: TextField, automaton: ahocorasick.Automaton) -> Iterator[NameHit]:
        seen: set[tuple[int, HitKind, int, int]] = set()
        for words in _token_forms(field.text):
            for span in _outermost(list(self._spans(words, automaton))):
                start, end = words[span.first].start, words[span.last].end
                if (span.artist, span.kind, start, end) not in seen:
                    seen.add((span.artist, span.kind, start, end))
                    yield self._hit(field, words, span)

    def _spans(self, words: Sequence[Token], automaton: ahocorasick.Automaton) -> Iterator[_Span]:
        """Automaton hits on the field's skeleton that start and end on word boundaries."""
        skeletons = [skeleton(word.text) for word in words]
        text = "".join(skeletons)
        starts: dict[int, int] = {}
        ends: dict[int, int] = {}
        offset = 0
        for index, part in enumerate(skeletons):
            starts[offset] = index
            offset += len(part)
            ends[offset] = index
        for end, key_id in automaton.iter(text):
            last = ends.get(end + 1)
            if last is not None:
                begin = end + 1 - len(self._keys.keys[key_id])
                spellings = self._keys.spellings(key_id)
                owner = self._keys.surname_of(key_id)
                yield from _key_spans(spellings, owner, text, (begin, end + 1), starts, last)

    def _hit(self, field: TextField, words: Sequence[Token], span: _Span) -> NameHit:
        kind = field_kind(field.source)
        context = _has_context(words, span.first, span.last)
        start, end = words[span.first].start, words[span.last].end
        return NameHit(
            artist_id=self._artists[span.artist].artist_id,
            artist=self._artists[span.artist].name,
            source=field.source,
            text=quote(field.text, start, end),
            matched=" ".join(word.text for word in words[span.first : span.last + 1]),
            kind=span.kind,
            field_kind=kind,
            context=context,
            strength=STRENGTH["surname" if span.kind == "word" else span.kind, kind, context],
        )


def _key_spans(
    spellings: Iterable[tuple[int, str, bool]],
    owner: int,
    text: str,
    span: tuple[int, int],
    starts: Mapping[int, int],
    last: int,
) -> Iterator[_Span]:
    """The spellings under a key whose words before the key are there too; then the surname."""
    begin, end = span
    named: set[int] = set()
    for artist, prefix, weak in spellings:
        first = starts.get(begin - len(prefix))
        if first is not None and text.startswith(prefix, begin - len(prefix)):
            named.add(artist)
            kind: HitKind = "word" if weak else "name"
            yield _Span(begin - len(prefix), end, first, last, artist, kind)
    if owner >= 0 and owner not in named and begin in starts:
        yield _Span(begin, end, starts[begin], last, owner, "surname")


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


def _token_forms(text: str) -> list[list[Token]]:
    """The field's words with homoglyphs folded, plus transliterated when that differs."""
    folded = tokens(text)
    if text.isascii():
        return [folded]
    plain = tokens(text, homoglyphs=False)
    same = [t.text for t in plain] == [t.text for t in folded]
    return [folded] if same else [folded, plain]


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


def matches_from_hits(hits: Iterable[NameHit]) -> list[ArtistMatch]:
    """Combine hits into one :class:`ArtistMatch` per artist (see the module's scoring)."""
    by_artist: dict[int, list[NameHit]] = {}
    for hit in hits:
        by_artist.setdefault(hit.artist_id, []).append(hit)
    matches = [_artist_match(artist_hits) for artist_hits in by_artist.values()]
    return sorted(matches, key=lambda m: (-m.score, m.artist, m.artist_id))


def _artist_match(hits: Sequence[NameHit]) -> ArtistMatch:
    best_per_source: dict[str, float] = {}
    best_per_quote: dict[tuple[str, str], float] = {}
    for hit in hits:
        best_per_source[hit.source] = max(best_per_source.get(hit.source, 0.0), hit.strength)
        quoted = (hit.source, hit.text)
        best_per_quote[quoted] = max(best_per_quote.get(quoted, 0.0), hit.strength)
    missing = 1.0
    for strength in best_per_source.values():
        missing *= 1.0 - strength
    ranked = sorted(best_per_quote, key=lambda q: (-best_per_quote[q], q))
    return ArtistMatch(
        artist_id=hits[0].artist_id,
        artist=hits[0].artist,
        score=round(min(MAX_SCORE, 1.0 - missing), 4),
        stage="metadata",
        evidence=tuple(Evidence(source=source, text=text) for source, text in ranked),
    )
