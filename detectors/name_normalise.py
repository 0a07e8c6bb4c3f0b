"""Text folded to the form artist names are matched in, with a way back to the original.

:func:`normalise` turns ``"Маrа_Qu3llbrook-000010"`` (Cyrillic М and а, leetspeak, an epoch
suffix) into ``"mara quellbrook 000010"``:

1. each non-ASCII character is folded on its own: NFKC; format characters (``Cf``: zero-width
   joiners, soft hyphens, tag characters) dropped; a character Unicode lists as confusable
   with one ASCII letter or digit becomes that letter (Cyrillic ``а``, Greek ``ο``, …);
   NFKD with the combining marks dropped (``é`` → ``e``); anyascii for what is left
   (``ß`` → ``ss``, other scripts transliterated). ASCII text skips this step.
2. leetspeak (``0 1 3 4 5 7 @ $`` → ``o i e a s t a s``) is undone only for runs that sit
   between two letters, so ``m4ra`` and ``h4stm00r`` fold while ``1girl``, ``v2``, ``sd15``
   and ``000010`` keep their digits.
3. the text is cut into words: runs of letters (split before an upper-case letter that
   follows a lower-case one, so ``MaraQuellbrook`` and ``quellbrookV2`` come apart) and runs
   of digits (so ``quellbrook2`` gives ``quellbrook 2``); everything else separates.
4. words are lower-cased and joined by single spaces.

:func:`tokens` gives the same words with their spans in the original text, for quoting.
:func:`skeleton` and :func:`screen_forms` give the coarser forms the matcher's automaton runs
on (no spaces, ``i``/``l``/``1`` as one letter, leet digits folded).

The per-character fold tables are built lazily on first use and memoised per character.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from itertools import islice

from anyascii import anyascii

# How many distinct characters a fold table memoises; beyond it, characters are folded anew.
MAX_CACHED_CHARS = 200_000

_LEET_LOWER = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
)
_LEET_UPPER = str.maketrans(
    {"0": "O", "1": "I", "3": "E", "4": "A", "5": "S", "7": "T", "@": "A", "$": "S"}
)
# A run of leet characters with a letter after it (the letter before is checked on a match:
# a pattern that starts with the rare leet characters lets the regex engine skip ahead).
_LEET_RUN = re.compile(r"[013457@$]+(?=[A-Za-z])")
_LEET_ANY = re.compile(r"[013457@$]")
_WORD = re.compile(r"[A-Z]*[a-z]+|[A-Z]+|[0-9]+")
_LINE = "\n"
_WORD_OR_LINE = re.compile(r"[A-Z]*[a-z]+|[A-Z]+|[0-9]+|\n")

# Normalised words to skeleton: i, l and 1 are one letter; leftover leet digits fold too.
_SKELETON = str.maketrans("l013457", "ioieast")
_SKELETON_BYTES = bytes.maketrans(b"l013457", b"ioieast")
# Raw bytes to the screening forms in one pass each (see :func:`screen_forms`): every byte
# that is not a letter, digit, ``@``, ``$`` or NUL (the field separator) becomes ``|``.
_ALNUM = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789@$\x00"
_MARKED = bytes(b if b in _ALNUM else ord("|") for b in range(256))
_SCREEN_TABLE = _MARKED.translate(
    bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZl013457@$", b"abcdefghijkimnopqrstuvwxyzioieastas")
)
SCREEN_TABLE = _SCREEN_TABLE  # cased bytes -> the screening form, byte for byte
MARKED_TABLE = _MARKED  # raw ASCII bytes -> the cased form, before runs of "|" are collapsed


@dataclass(frozen=True, slots=True)
class Token:
    """One normalised word and the span ``[start, end)`` of the original text it came from."""

    text: str
    start: int
    end: int


class _FoldTable(dict[int, str]):
    """``str.translate`` table folding one character to ASCII, filled on first sight."""

    def __init__(self, homoglyphs: dict[str, str]) -> None:
        super().__init__()
        self._homoglyphs = homoglyphs

    def __missing__(self, code: int) -> str:
        folded = _fold_char(chr(code), self._homoglyphs)
        if len(self) < MAX_CACHED_CHARS:
            self[code] = folded
        return folded


def _fold_char(char: str, homoglyphs: dict[str, str]) -> str:
    if char.isascii():
        return char
    out: list[str] = []
    for part in unicodedata.normalize("NFKC", char):
        if unicodedata.category(part) == "Cf":
            continue
        part = homoglyphs.get(part, part)
        bare = "".join(
            c for c in unicodedata.normalize("NFKD", part) if unicodedata.category(c)[0] != "M"
        )
        out.append(anyascii(bare))
    folded = "".join(out)
    return folded if folded.isascii() else ""


@cache
def homoglyph_map() -> dict[str, str]:
    """Non-ASCII characters Unicode lists as confusable with exactly one ASCII letter or digit.

    Derived once from the confusable_homoglyphs package's data (imported here, not at module
    import, because it loads a 900 kB JSON file). Letters win over digits.
    """
    from confusable_homoglyphs.confusables import confusables_data

    folded: dict[str, str] = {}
    for char, entries in confusables_data.items():
        if len(char) != 1 or char.isascii():
            continue
        targets = [e["c"] for e in entries if len(e["c"]) == 1 and e["c"].isascii()]
        targets = [t for t in targets if t.isalnum()]
        if targets:
            folded[char] = min(targets, key=lambda t: (t.isdigit(), t))
    return folded


@cache
def _fold_table(homoglyphs: bool) -> _FoldTable:
    return _FoldTable(homoglyph_map() if homoglyphs else {})


def fold(text: str, *, homoglyphs: bool = True) -> str:
    """Step 1 alone: every character folded to ASCII, case kept.

    With ``homoglyphs=False`` look-alike letters are transliterated instead (Cyrillic ``р``
    gives ``r``, not ``p``), which is right for text genuinely written in that script.
    """
    return text if text.isascii() else text.translate(_fold_table(homoglyphs))


def _unleet_match(match: re.Match[str]) -> str:
    text, start = match.string, match.start()
    before = text[start - 1 : start]
    if not (before.isascii() and before.isalpha()):
        return match.group()
    table = _LEET_LOWER if text[match.end()].islower() else _LEET_UPPER
    return match.group().translate(table)


def _unleet(text: str) -> str:
    if _LEET_ANY.search(text) is None:
        return text
    return _LEET_RUN.sub(_unleet_match, text)


def normalise(text: str, *, homoglyphs: bool = True) -> str:
    """The matching form of ``text``: lower-case ASCII words joined by single spaces.

    Idempotent. See the module docstring for the steps.
    """
    return " ".join(_WORD.findall(_unleet(fold(text, homoglyphs=homoglyphs)))).lower()


def tokens(text: str, *, homoglyphs: bool = True) -> list[Token]:
    """The words of :func:`normalise`, each with its span in ``text``.

    ``" ".join(t.text for t in tokens(x)) == normalise(x)`` for every ``x``.
    """
    folded, origin = _fold_mapped(text, homoglyphs)
    words = _WORD.finditer(_unleet(folded))
    if origin is None:
        return [Token(m.group().lower(), m.start(), m.end()) for m in words]
    return [Token(m.group().lower(), origin[m.start()], origin[m.end() - 1] + 1) for m in words]


def normalised_words(text: str, *, homoglyphs: bool = True) -> tuple[list[str], str]:
    """``normalise(text).split(" ")``, and the folded, un-leeted text cut into those words.

    The second is what :func:`word_places` needs to point the words back at ``text``.
    """
    cut = _unleet(fold(text, homoglyphs=homoglyphs))
    return " ".join(_WORD.findall(cut)).lower().split(" "), cut


def word_places(
    text: str, cut: str, count: int, *, homoglyphs: bool = True
) -> list[tuple[int, int]]:
    """The span ``[start, end)`` in ``text`` of each of its first ``count`` words.

    ``cut`` is the second value of :func:`normalised_words` for this ``text`` and ``homoglyphs``.
    """
    found = islice(_WORD.finditer(cut), count)
    if text.isascii():  # folding kept every character where it was
        return [match.span() for match in found]
    origin = _fold_mapped(text, homoglyphs)[1]
    assert origin is not None  # non-ASCII text always has a map
    return [(origin[m.start()], origin[m.end() - 1] + 1) for m in found]


def _fold_mapped(text: str, homoglyphs: bool) -> tuple[str, list[int] | None]:
    """:func:`fold` plus, for non-ASCII text, the original index of each folded character."""
    if text.isascii():
        return text, None
    table = _fold_table(homoglyphs)
    parts: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        piece = table[ord(char)]
        parts.append(piece)
        origin.extend([index] * len(piece))
    return "".join(parts), origin


def skeleton(normalised: str) -> str:
    """The automaton's form of normalised text: spaces gone, ``l``/``1`` as ``i``, leet folded."""
    joined = normalised.replace(" ", "")
    if joined.isascii():  # always, for normalised text; a bytes pass is the cheaper one
        return joined.encode("ascii").translate(_SKELETON_BYTES).decode("ascii")
    return joined.translate(_SKELETON)


def normalise_many(texts: Sequence[str], *, homoglyphs: bool = True) -> list[str]:
    """``[normalise(t) for t in texts]``, in a few passes over all of them at once."""
    if not texts:
        return []
    joined = _LINE.join(texts)
    if joined.count(_LINE) == len(texts) - 1:
        if not joined.isascii():  # fold the few non-ASCII texts alone, not every character
            table = _fold_table(homoglyphs)
            joined = _LINE.join([t if t.isascii() else t.translate(table) for t in texts])
        words = _WORD_OR_LINE.findall(_unleet(joined))
        lines = " ".join(words).lower().split(_LINE)
        if len(lines) == len(texts):
            return [line.strip(" ") for line in lines]
    return [normalise(text, homoglyphs=homoglyphs) for text in texts]


def skeleton_words(words: Sequence[str]) -> list[str]:
    """:func:`skeleton` of each normalised word."""
    joined = " ".join(words).encode("ascii", "ignore")
    return joined.translate(_SKELETON_BYTES).decode("ascii").split(" ")


def skeleton_lines(normalised: Sequence[str]) -> list[str]:
    """:func:`skeleton` of each normalised text, words still separated by single spaces."""
    if not normalised:
        return []
    joined = _LINE.join(normalised).encode("ascii", "ignore")
    return joined.translate(_SKELETON_BYTES).decode("ascii").split(_LINE)


def screen_forms(text: str, *, homoglyphs: bool = True) -> tuple[str, bytes]:
    """Two aligned cheap forms of raw text for the first automaton pass.

    The first folds like :func:`skeleton` in one bytes pass (case, ``i``/``l``/``1``, every
    leet character wherever it stands); the second (ASCII bytes, decoded only when needed)
    keeps case and digits, to tell where a word ends. In both, each run of separators is one
    ``|`` and NUL (the field separator) stays.
    """
    if not text.isascii():
        text = fold(text, homoglyphs=homoglyphs)
    marked = text.encode("ascii").translate(_MARKED)
    while b"||" in marked:  # halves each run; cheaper than a regex for the few runs there are
        marked = marked.replace(b"||", b"|")
    return marked.translate(_SCREEN_TABLE).decode("ascii"), marked


def screen_form(text: str, *, homoglyphs: bool = True) -> str:
    """The first of :func:`screen_forms`."""
    return screen_forms(text, homoglyphs=homoglyphs)[0]
