"""JSON from untrusted files, parsed within caps.

``json.loads`` recurses once per nesting level and builds every value it reads, so a hostile
header (``[[[[…`` ten thousand deep, or millions of tiny items) could raise ``RecursionError``
or exhaust memory. :func:`loads_bounded` first scans the text in a few linear bytes passes
(escapes dropped, every byte but quotes, commas and brackets deleted, strings blanked out,
then items counted and bracket pairs peeled off level by level) and parses only what fits
the caps.
Duplicate keys, ``NaN``/``Infinity`` and lone surrogates are refused too, because two
readers of such JSON need not agree on what it says.
"""

from __future__ import annotations

import json
import math
import re
from typing import cast

from detectors.errors import HeaderError
from detectors.results import JSONValue

MAX_JSON_DEPTH = 16  # levels of nested objects/arrays; a safetensors header needs 3
MAX_JSON_ITEMS = 4_000_000  # strings, commas and opening brackets: about 22 per tensor entry

_STRING = re.compile(rb'"[^"]*"')
# Only quotes, commas and brackets tell where strings are, how many items and how deep.
_NOT_STRUCTURAL = bytes(b for b in range(256) if b not in b'"[]{},')
# Brackets as one pair of parentheses, commas and stray quotes deleted: for the depth check.
_PARENS = bytes.maketrans(b"[{]}", b"(())")


def loads_bounded(text: str, what: str, *, max_items: int = MAX_JSON_ITEMS) -> JSONValue:
    """Parse ``text`` as JSON; raise :class:`HeaderError` naming ``what`` on any fault or cap
    (:data:`MAX_JSON_DEPTH` levels, ``max_items`` strings, commas and brackets)."""
    check_shape(text, what, max_items=max_items)
    try:
        value = json.loads(
            text,
            object_pairs_hook=_unique_object,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
        )
    except HeaderError as exc:  # from the hooks, which do not know what is parsed
        raise HeaderError(f"{what}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise HeaderError(f"{what} is not valid JSON: {exc.msg} at char {exc.pos}") from exc
    except (ValueError, RecursionError) as exc:  # int digit limit; recursion is pre-scanned
        raise HeaderError(f"{what} is not usable JSON: {_one_line(str(exc))}") from exc
    # json.loads returns Any: the JSON boundary, where every value is a JSONValue.
    return cast(JSONValue, value)


def check_text(text: str, what: str) -> str:
    """Return ``text`` if it encodes as UTF-8 (JSON escapes can smuggle lone surrogates)."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise HeaderError(f"{what} holds an unpaired surrogate escape") from exc
    return text


def check_shape(text: str, what: str, *, max_items: int = MAX_JSON_ITEMS) -> None:
    """Refuse ``text`` if its strings and items break ``max_items`` or it nests deeper than
    :data:`MAX_JSON_DEPTH`, without parsing it (linear bytes passes only)."""
    raw = text.encode("utf-8", "surrogatepass")  # multi-byte sequences hold no ASCII bytes
    if b"\\" in raw:
        # Only \\ and \" matter to where strings end; bytes.replace pairs them as JSON does.
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    marks = raw.translate(None, _NOT_STRUCTURAL)
    items = marks.count(b'"') // 2
    _check_items(items, what, max_items)
    # Two adjacent quotes open and close an empty string, or close one string and open the
    # next: dropping them keeps every other byte as inside or outside a string as it was.
    bare = _STRING.sub(b"", marks.replace(b'""', b""))
    _check_items(items + bare.count(b",") + bare.count(b"[") + bare.count(b"{"), what, max_items)
    if _depth_over_cap(bare.translate(_PARENS, b',"')):
        raise HeaderError(f"{what} nests deeper than the {MAX_JSON_DEPTH}-level cap")


def _depth_over_cap(parens: bytes) -> bool:
    """Whether brackets (as ``(``/``)``) may nest deeper than :data:`MAX_JSON_DEPTH`.

    Each pass drops the innermost pairs, so balanced brackets vanish in as many passes as
    they nest deep. Unbalanced brackets (never valid JSON) count their unclosed openers on
    top of the passes taken, so a truncated header still reaches the parser for its message.
    """
    for passes in range(MAX_JSON_DEPTH + 1):
        if b"()" not in parens:
            return parens.count(b"(") + passes > MAX_JSON_DEPTH
        parens = parens.replace(b"()", b"")
    return True


def _check_items(items: int, what: str, max_items: int) -> None:
    if items > max_items:
        raise HeaderError(f"{what} has {items} JSON items, over the {max_items} cap")


def _unique_object(pairs: list[tuple[str, JSONValue]]) -> dict[str, JSONValue]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise HeaderError(f"JSON object repeats the key {quote(key)}")
            seen.add(key)
    return result


def _reject_constant(name: str) -> JSONValue:
    raise HeaderError(f"JSON holds {name}, which is not valid JSON")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise HeaderError(f"JSON number {quote(literal)} is out of range")
    return value


def quote(text: str, limit: int = 60) -> str:
    """``repr`` of untrusted text, cut to ``limit`` characters, for one-line messages."""
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _one_line(text: str) -> str:
    return " ".join(text.split())[:200]
