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

:meth:`ArtistIndex.match` first runs the automaton once over all fields joined that it has not
seen before (what a text names is remembered: tags recur across uploads), in a cheap
screening form (:func:`~detectors.name_normalise.screen_forms`: two bytes passes, separators
kept as ``|``); a raw hit that cannot end a word (``harbo`` in ``harbor``) is dropped at once,
so most uploads never leave this pass. Fields with a raw hit left are tokenised properly,
and a hit counts only when it starts and ends on word
boundaries (``arthur`` does not match inside ``arthurian``; ``quellbrook-000010``,
``quellbrook_v2``, ``quellbrookV2`` and ``quellbrook style`` do match). A hit inside a longer
hit is dropped (``Arthur`` does not match inside ``Arthur Rackham``). A name split inside a
word to dodge filters (``quell brook``, ``Quell-brook``, ``j o h n smith``) matches too: a
cheap pass runs over the text with its separators taken out (one pass), and flags a key
that crosses one and starts and ends on word boundaries. Not matched: a surname
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

import itertools
import re
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial
from itertools import accumulate
from operator import itemgetter
from typing import Literal, NamedTuple

import ahocorasick

from detectors.name_frequency import why as frequency_why
from detectors.name_keys import NameKeys, build_keys
from detectors.name_normalise import (
    MARKED_TABLE,
    SCREEN_TABLE,
    fold,
    normalised_words,
    screen_forms,
    skeleton,
    word_places,
)
from detectors.results import ArtistMatch, ArtistRef, Evidence, TextField

HitKind = Literal["name", "reversed", "surname", "word"]
FieldKind = Literal["name", "tag", "text"]
# What fired, as the evidence names it (see :func:`rule_of`).
Rule = Literal[
    "full_name", "reversed_name", "surname_cue", "surname", "common_name_cue", "common_name"
]

MAX_QUOTE_CHARS = 200
MAX_SCORE = 0.99
MAX_CACHED_FIELDS = 65_536  # screened texts remembered (then the cache starts afresh)
MAX_CACHED_CLEAN_CHARS = 256  # a longer text that names nobody is not remembered
_FIELD_SEPARATOR = "\x00"
_FIELD_START = _FIELD_SEPARATOR + "|"

STRENGTH: Mapping[tuple[HitKind, FieldKind, bool], float] = {
    ("name", "name", True): 0.95,
    ("name", "name", False): 0.90,
    ("name", "tag", True): 0.95,
    ("name", "tag", False): 0.80,
    ("name", "text", True): 0.65,
    ("name", "text", False): 0.50,
    ("reversed", "name", True): 0.95,
    ("reversed", "name", False): 0.85,
    ("reversed", "tag", True): 0.95,
    ("reversed", "tag", False): 0.75,
    ("reversed", "text", True): 0.65,
    ("reversed", "text", False): 0.50,
    **{("surname", kind, True): 0.60 for kind in ("name", "tag")},
    **{("surname", kind, False): 0.35 for kind in ("name", "tag")},
    ("surname", "text", True): 0.55,
    ("surname", "text", False): 0.30,
}
# Characters that end a tag or a phrase: a name never matches across them (only a
# "Surname, Given" name crosses one comma, and not in a tag field, where it joins two tags).
_BREAKS = frozenset(',;|/\\\n\r\t()[]{}<>:+=#*"')
_NO_BREAKS = bytes(byte for byte in range(256) if chr(byte) not in _BREAKS)  # deleted
_NAME_SOURCE_PARTS = ("output_name", "title", "dataset", "_dirs", "filename", "ot_config")
_TAG_SOURCE_PARTS = ("tag", "trigger", "trained", "prompt", "class_token", "keyword", "style")
_BEFORE_ONE = frozenset({"by", "artist"})
_BEFORE_TWO = frozenset(
    {("style", "of"), ("styles", "of"), ("works", "of"), ("inspired", "by"), ("homage", "to")}
)
_AFTER_ONE = frozenset({"style", "styled", "styles", "artstyle", "aesthetic", "esque", "inspired"})
_AFTER_TWO = frozenset({("s", "style"), ("art", "style"), ("s", "art"), ("painting", "style")})
_ESQUE = "esque"
# In the screening form: three or more single letters or digits, each set apart.
_SPACED_LETTERS = re.compile(r"\|(?:[a-z0-9]\|){2,}[a-z0-9](?![a-z0-9])")
# Its cheap test first, on the cased bytes: what the form has as a letter or digit is "a",
# each "|" stays; only text with three such single characters in a row goes to the regex.
_SPACED_TABLE = bytes(
    ord("a") if chr(f).isascii() and chr(f).isalnum() else f if f == ord("|") else ord(".")
    for f in SCREEN_TABLE
)
_SPACED_RUN = b"|a|a|a"
# Both tests at once on the cased bytes of ASCII text: "||" (a run to collapse) or three
# single characters set apart (what _SPACED_RUN finds after _SPACED_TABLE).
_RUN_OR_SPACED = re.compile(rb"\|(?:\||[A-Za-z0-9@$]\|[A-Za-z0-9@$]\|[A-Za-z0-9@$])")


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
    rule: Rule = "full_name"
    why: str = ""

    @property
    def evidence(self) -> Evidence:
        return Evidence(
            source=self.source,
            text=self.text,
            rule=self.rule,
            confidence=self.strength,
            why=self.why,
        )


# A verified hit in one field's word list: skeleton offsets ``start``/``end`` (for dropping hits
# inside longer ones), words ``first..last`` inclusive, artist index and kind. A plain tuple:
# verification makes one per candidate, and tuples cost a fraction of an object.
_Span = tuple[int, int, int, int, int, HitKind]


class _Found(NamedTuple):
    """A verified hit in a text, whatever field it came in: original span, words, context;
    ``crossed`` when a "Surname, Given" name crosses a comma (two tags in a tag field)."""

    artist: int
    kind: HitKind
    start: int
    end: int
    matched: str
    context: bool
    crossed: bool = False


_new_found = partial(tuple.__new__, _Found)  # _Found(*fields) without its Python __new__
_LAST_WORD = itemgetter(3)  # of a _Span
_CLEAN: tuple[_Found, ...] = ()  # what the cache holds for a text that names nobody


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

    __slots__ = ("_artists", "_automaton", "_clean", "_keys", "_named")

    def __init__(self, artists: tuple[ArtistRef, ...], keys: NameKeys) -> None:
        self._artists = artists
        self._keys = keys
        self._automaton: ahocorasick.Automaton | None = None
        # Tags and folder names recur across uploads and fields ("10_quellbrook style" is in
        # ss_dataset_dirs and ss_tag_frequency; "1girl" and "masterpiece" in most uploads): a
        # text is screened and verified once, and only new texts go through the automaton.
        # ``_clean`` holds short texts that name nobody (tags), ``_named`` the verified hits of
        # every other text the cheap pass flagged. Bounded: each is cleared when full.
        self._clean: set[str] = set()
        self._named: dict[str, tuple[_Found, ...]] = {}
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
        """Forget the screened texts (the cache is bounded; this is for memory and benchmarks)."""
        self._clean.clear()
        self._named.clear()

    @property
    def automaton(self) -> ahocorasick.Automaton | None:
        """The one automaton (for benchmarks and diagnostics; do not add words to it)."""
        return self._automaton

    def match(self, fields: Iterable[TextField]) -> list[ArtistMatch]:
        """One :class:`ArtistMatch` per artist named in ``fields``, highest score first."""
        located = self._located(fields)
        if not located:  # most uploads: one cheap pass, nothing to score
            return []
        scored: list[_Scored] = []
        for field, where in located:
            ref = self._artists[where.artist]
            kind = _field_kind(field.source)
            rule = rule_of(where, kind)
            scored.append(
                (
                    ref.artist_id,
                    ref.name,
                    field.source,
                    field.text,
                    where,
                    _strength(where, kind),
                    rule,
                )
            )
        return _combine(scored)

    def hits(self, fields: Iterable[TextField]) -> list[NameHit]:
        """Every verified hit, in field order, to explain a match."""
        return [self._hit(field, where) for field, where in self._located(fields)]

    def _located(self, fields: Iterable[TextField]) -> list[tuple[TextField, _Found]]:
        """Each verified hit with the field it is in, in field order.

        What a text names is remembered: tags and folder names recur across uploads, so most
        fields cost a set look-up. The texts not seen before get one cheap automaton pass, all
        at once, as the bare automaton would take; only the texts it flags are verified. Most
        uploads name nobody and cost that one pass over their new texts at most.
        """
        field_list = fields if isinstance(fields, (list, tuple)) else tuple(fields)
        automaton = self._automaton
        if automaton is None or not field_list:
            return []
        clean, named = self._clean, self._named
        if len(clean) > MAX_CACHED_FIELDS - len(field_list):  # room for every text, up front:
            clean.clear()  # what a look-up below finds stays until the end of this call
        if len(named) > MAX_CACHED_FIELDS - len(field_list):
            named.clear()
        # Texts not known to name nobody: new ones, and (rarely) ones known to name someone.
        # (A comprehension: on CPython 3.11 it is twice as fast as filterfalse over map.)
        unknown = [field.text for field in field_list if field.text not in clean]
        if not unknown:
            return []
        new = [text for text in unknown if text not in named] if named else unknown
        if new and not self._screen_new(new, automaton) and len(new) == len(unknown):
            return []  # every text was new, and none of them names anyone
        return [(field, where) for field in field_list for where in named.get(field.text, _CLEAN)]

    def _screen_new(self, new: list[str], automaton: ahocorasick.Automaton) -> bool:
        """Screen texts not seen before, verify what the cheap pass flags, remember both;
        whether any of them names someone."""
        clean, named = self._clean, self._named
        flagged = _flagged(new, automaton, self._keys.keys)
        if not flagged:
            if max(map(len, new)) <= MAX_CACHED_CLEAN_CHARS:
                clean.update(new)
            else:
                clean.update(text for text in new if len(text) <= MAX_CACHED_CLEAN_CHARS)
            return False
        names = False
        for position, text in enumerate(new):
            if position in flagged:
                if text not in named and text not in clean:  # once, if twice in ``new``
                    in_text = self._found(text, automaton)
                    if in_text or len(text) > MAX_CACHED_CLEAN_CHARS:
                        named[text] = in_text
                        names = names or bool(in_text)
                    else:
                        clean.add(text)
            elif len(text) <= MAX_CACHED_CLEAN_CHARS:
                clean.add(text)
        return names

    def _found(self, text: str, automaton: ahocorasick.Automaton) -> tuple[_Found, ...]:
        """Verified hits in one text: cheap word lists first, offsets only when something holds."""
        found: list[_Found] = []
        seen: set[tuple[int, HitKind, int, int]] = set()
        for homoglyphs, (words, cut) in _word_forms(text):
            spans = self._spans(words, automaton)
            if not spans:
                continue
            count = min(len(words), max(map(_LAST_WORD, spans)) + 3)
            places = word_places(text, cut, count, homoglyphs=homoglyphs)
            gaps = _gaps(text, places)
            spans = [span for span in spans if _inside_one_phrase(span, gaps)]
            if len(spans) > 1:
                spans = _outermost(spans)
            for _, _, first, last, artist, kind in spans:
                start, end = places[first][0], places[last][1]
                if (artist, kind, start, end) not in seen:
                    seen.add((artist, kind, start, end))
                    matched = " ".join(words[first : last + 1])
                    context = _has_context(words, first, last, gaps)
                    crossed = "," in gaps[first:last]
                    found.append(_new_found((artist, kind, start, end, matched, context, crossed)))
        return tuple(found)

    def _spans(self, words: Sequence[str], automaton: ahocorasick.Automaton) -> list[_Span]:
        """Automaton hits on the words' skeleton that start and end on word boundaries.

        Per hit, the spellings under its key whose words before the key are there too, then
        the artist whose distinctive surname the key is (unless a spelling named them).
        """
        text = skeleton("".join(words))
        # Skeleton offset where a word ends -> that word's index; the next word starts there.
        ending = dict(zip(accumulate(map(len, words)), itertools.count()))
        keys = self._keys
        key_text, heads, prefixes, artists = keys.keys, keys.heads, keys.prefix, keys.artist
        weak, chain, surnames = keys.weak, keys.chain, keys.surnames
        spans: list[_Span] = []
        for end, key_id in automaton.iter(text):
            stop = end + 1
            last = ending.get(stop)
            if last is None:  # "quellbrookesque": the cue glued on
                last = ending.get(stop + len(_ESQUE)) if text.startswith(_ESQUE, stop) else None
                if last is None:
                    continue
            key = key_text[key_id]
            begin = stop - len(key)
            start_word = 0 if begin == 0 else ending.get(begin, -2) + 1
            index = heads[key_id]
            whole = -1  # an artist whose one-word spelling this key is
            while index >= 0:
                prefix = prefixes[index]
                at = begin - len(prefix)
                first = 0 if at == 0 else ending.get(at, -2) + 1
                artist = artists[index]
                if not prefix:
                    whole = artist
                if first >= 0 and text.startswith(prefix, at):
                    spans.append((at, stop, first, last, artist, "word" if weak[index] else "name"))
                elif prefix and start_word >= 0 and text.startswith(prefix, stop):
                    given_end = ending.get(stop + len(prefix))  # "Surname Given"
                    if given_end is not None:
                        spans.append(
                            (begin, stop + len(prefix), start_word, given_end, artist, "reversed")
                        )
                index = chain[index]
            owner = surnames.get(key, -1)
            if owner >= 0 and start_word >= 0 and owner != whole:  # dropped if inside a longer hit
                spans.append((begin, stop, start_word, last, owner, "surname"))
        return spans

    def _hit(self, field: TextField, where: _Found) -> NameHit:
        kind = _field_kind(field.source)
        ref = self._artists[where.artist]
        rule = rule_of(where, kind)
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
            rule=rule,
            why=why_rule(rule, where.matched, surname_first=where.kind == "reversed"),
        )


def _scoring_kind(where: _Found, field: FieldKind) -> HitKind:
    if where.kind == "word" or (where.crossed and field == "tag"):
        return "surname"
    return where.kind


def _strength(where: _Found, field: FieldKind) -> float:
    return STRENGTH[_scoring_kind(where, field), field, where.context]


def rule_of(where: _Found, field: FieldKind) -> Rule:
    """The rule that fired for a hit in a field of this kind."""
    if where.kind == "name":
        return "full_name"
    if where.kind == "reversed" and not (where.crossed and field == "tag"):
        return "reversed_name"
    if where.kind == "word":
        return "common_name_cue" if where.context else "common_name"
    return "surname_cue" if where.context else "surname"


def why_rule(rule: Rule, matched: str, *, surname_first: bool = False) -> str:
    """One line for the moderator: why this rule fired on these (normalised) words."""
    words = matched.split(" ")
    cue = " with a style cue" if rule.endswith("_cue") else ", no style cue"
    if rule == "full_name":
        return "every word of a registered name or alias, in order"
    if rule == "reversed_name":
        return "a registered name written surname first"
    if rule.startswith("common_name"):
        return f"a name made of common words{cue}: {frequency_why(words[0])}"
    if surname_first:  # "Surname, Given" split over two tags: the surname is the first
        words = words[:1]
    surname = "".join(words)
    if surname.endswith(_ESQUE) and len(surname) > len(_ESQUE):  # "quellbrookesque"
        surname = surname.removesuffix(_ESQUE)
    return f"the surname alone{cue}: {frequency_why(surname)}"


def _flagged(texts: list[str], automaton: ahocorasick.Automaton, keys: Sequence[str]) -> set[int]:
    """Indexes of the texts the cheap pass over all of them at once finds anything in
    (``keys`` are the automaton's keys by id)."""
    # Each text starts with a separator, so a run of spaced letters is seen at its start too.
    joined = "|" + _FIELD_START.join(texts)
    if joined.count(_FIELD_SEPARATOR) != len(texts) - 1:
        joined = "|" + _FIELD_START.join([t.replace(_FIELD_SEPARATOR, " ") for t in texts])
    plain = False  # no run of separators to collapse and no spaced letters to look at
    if joined.isascii():  # nearly always: screen_forms inlined, with no folding to do
        marked = joined.encode("ascii").translate(MARKED_TABLE)
        plain = _RUN_OR_SPACED.search(marked) is None  # one scan instead of two
        forms = [
            (marked.translate(SCREEN_TABLE).decode("ascii"), marked)
            if plain or b"||" not in marked
            else screen_forms(joined)
        ]
    else:
        forms = [screen_forms(joined), screen_forms(joined, homoglyphs=False)]
    flagged: set[int] = set()
    for form, cased in forms:
        _glued_pass(form, cased, automaton, keys, flagged)
        if plain or _SPACED_RUN not in cased.translate(_SPACED_TABLE):
            continue
        for run in _SPACED_LETTERS.finditer(form):  # "g-r-e-g r-u-t-k-o-w-s-k-i", "w l o p"
            if next(automaton.iter(run.group().replace("|", "")), None) is not None:
                flagged.add(form.count(_FIELD_SEPARATOR, 0, run.start()))
    return flagged


def _glued_pass(
    form: str,
    cased: bytes,
    automaton: ahocorasick.Automaton,
    keys: Sequence[str],
    flagged: set[int],
) -> None:
    """The cheap pass: add the texts the automaton flags in ``form`` with its separators
    taken out. A hit inside one word needs only a word's end after it; a hit that runs
    across separators must start and end on word boundaries: a name split inside a word to
    dodge filters ("quell brook", "Quell-brook", "j o h n smith")."""
    glued = form.replace("|", "")
    hits = list(automaton.iter(glued))
    if not hits:
        return
    # Where each separator was, in glued offsets (ascending): the next word starts there.
    cuts = list(accumulate(map(len, form.split("|"))))[:-1]

    def edge(at: int, *, ending: bool) -> bool:  # a word may end before glued[at] / start there
        if at == 0 or at == len(glued) or _FIELD_SEPARATOR in glued[at - 1 : at + 1]:
            return True
        below = bisect_right(cuts, at)
        if below and cuts[below - 1] == at:
            return True
        return (_may_end_word if ending else _word_edge)(cased, at + below)

    for end, key in hits:
        start = end + 1 - len(keys[key])
        first_cut = bisect_right(cuts, start)
        if first_cut == len(cuts) or cuts[first_cut] > end:
            # No separator inside: judged as the pass over ``form`` would, by its end alone.
            if _may_end_word(cased, end + 1 + first_cut):
                flagged.add(glued.count(_FIELD_SEPARATOR, 0, end))
        elif edge(start, ending=False) and edge(end + 1, ending=True):
            flagged.add(glued.count(_FIELD_SEPARATOR, 0, end))


def _word_edge(cased: bytes, at: int) -> bool:
    """Whether a word may end before ``cased[at]`` (and the next start there): not between
    two letters, unless a lower-case one comes before an upper-case one; a separator,
    digit, @ or $ can end a word."""
    before, after = cased[at - 1 : at], cased[at : at + 1]
    return not (before.isalpha() and after.isalpha() and not (before.islower() and after.isupper()))


def _may_end_word(cased: bytes, at: int) -> bool:
    """:func:`_word_edge`, or the style cue glued on: "quellbrookesque"."""
    if _word_edge(cased, at):
        return True
    glued = cased[at : at + 6].lower()
    return glued.startswith(b"esque") and not glued[5:].isalpha()


def _outermost(spans: list[_Span]) -> list[_Span]:
    """Drop spans that lie strictly inside another span."""
    kept = []
    for span in spans:
        start, end = span[0], span[1]
        for other in spans:
            if other[0] <= start and end <= other[1] and other[1] - other[0] > end - start:
                break
        else:
            kept.append(span)
    return kept


def _gaps(text: str, places: Sequence[tuple[int, int]]) -> str:
    """One character per pair of neighbouring words: ``|`` when a break lies between them,
    ``,`` when a lone comma does, a space otherwise."""
    if text.isascii() and not text.encode("ascii").translate(None, _NO_BREAKS):
        return " " * (len(places) - 1)  # no break anywhere (most names as tagged)
    marks = []
    for (_, left), (right, _) in itertools.pairwise(places):
        gap = text[left:right]
        breaks = (gap if gap.isascii() else fold(gap)).encode("ascii").translate(None, _NO_BREAKS)
        marks.append(" " if not breaks else "," if breaks == b"," else "|")
    return "".join(marks)


def _inside_one_phrase(span: _Span, gaps: str) -> bool:
    """No break inside the span; a comma only inside a "Surname, Given" one."""
    inside = gaps[span[2] : span[3]]
    if span[5] == "reversed":
        return "|" not in inside
    return inside.isspace() or not inside


def _word_forms(text: str) -> list[tuple[bool, tuple[list[str], str]]]:
    """:func:`normalised_words` with homoglyphs folded, plus transliterated if the words differ."""
    folded = normalised_words(text)
    if text.isascii():
        return [(True, folded)]
    plain = normalised_words(text, homoglyphs=False)
    return [(True, folded)] if plain[0] == folded[0] else [(True, folded), (False, plain)]


def _has_context(words: Sequence[str], first: int, last: int, gaps: str = "") -> bool:
    """Whether the words around ``first..last`` (in the same phrase) say "this artist's style"."""
    if len(words[last]) > len(_ESQUE) and words[last].endswith(_ESQUE):
        return True
    if (
        first
        and _joined(gaps, first - 1)
        and (
            words[first - 1] in _BEFORE_ONE
            or (
                first > 1
                and _joined(gaps, first - 2)
                and (words[first - 2], words[first - 1]) in _BEFORE_TWO
            )
        )
    ):
        return True
    if last + 1 >= len(words) or not _joined(gaps, last):
        return False
    if words[last + 1] in _AFTER_ONE:
        return True
    return (
        last + 2 < len(words)
        and _joined(gaps, last + 1)
        and ((words[last + 1], words[last + 2]) in _AFTER_TWO)
    )


def _joined(gaps: str, index: int) -> bool:
    """Whether words ``index`` and ``index + 1`` are in one phrase (unknown counts as yes)."""
    return index >= len(gaps) or gaps[index] == " "


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
    return _combine(
        [(h.artist_id, h.artist, h.source, h.text, None, h.strength, h.rule) for h in hits]
    )


# A hit as scoring needs it: artist id and name, source, the field's text (quoted as is when
# the place is None), the place in it, strength.
_Scored = tuple[int, str, str, str, "_Found | None", float, Rule]


def _combine(scored: Sequence[_Scored]) -> list[ArtistMatch]:
    if not scored:
        return []
    by_artist: dict[int, list[_Scored]] = {}
    for hit in scored:
        by_artist.setdefault(hit[0], []).append(hit)
    matches = [_artist_match(artist_hits) for artist_hits in by_artist.values()]
    if len(matches) > 1:
        matches.sort(key=_match_rank)
    return matches


def _match_rank(match: ArtistMatch) -> tuple[float, str, int]:
    return -match.score, match.artist, match.artist_id


# The evidence of one quote: its strength, rule, matched words and hit kind.
_Quoted = tuple[float, Rule, str, str]


def _quote_rank(item: tuple[tuple[str, str], _Quoted]) -> tuple[float, tuple[str, str]]:
    return -item[1][0], item[0]


# why_rule recurs (one artist's hits in several fields match the same words); pure, bounded.
_why_rule = lru_cache(maxsize=4096)(why_rule)


def _artist_match(hits: Sequence[_Scored]) -> ArtistMatch:
    best_per_source: dict[str, float] = {}
    best_per_quote: dict[tuple[str, str], _Quoted] = {}
    for _, _, source, text, where, strength, rule in hits:
        if strength > best_per_source.get(source, 0.0):
            best_per_source[source] = strength
        if where is None:
            quoted, matched, kind = (source, text), "", ""
        else:
            shown = text if len(text) <= MAX_QUOTE_CHARS else quote(text, where.start, where.end)
            quoted, matched, kind = (source, shown), where.matched, where.kind
        prior = best_per_quote.get(quoted)
        if prior is None or strength > prior[0]:
            best_per_quote[quoted] = (strength, rule, matched, kind)
    missing = 1.0
    for strength in best_per_source.values():
        missing *= 1.0 - strength
    ranked = list(best_per_quote.items())
    if len(ranked) > 1:
        ranked.sort(key=_quote_rank)
    evidence = tuple(
        Evidence(
            source,
            text,
            rule=rule,
            confidence=strength,
            why=_why_rule(rule, matched, surname_first=kind == "reversed") if matched else "",
        )
        for (source, text), (strength, rule, matched, kind) in ranked
    )
    return ArtistMatch(
        artist_id=hits[0][0],
        artist=hits[0][1],
        score=round(min(MAX_SCORE, 1.0 - missing), 4),
        stage="metadata",
        evidence=evidence,
    )
