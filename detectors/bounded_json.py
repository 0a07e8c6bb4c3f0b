"""JSON from untrusted files, parsed within caps.

``json.loads`` recurses once per nesting level and builds every value it reads, so a hostile
header (``[[[[…`` ten thousand deep, or millions of tiny items) could raise ``RecursionError``
or exhaust memory. :func:`loads_bounded` first scans the text linearly (escapes and strings
blanked out, then items counted and brackets followed) and parses only what fits the caps.
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

_STRING = re.compile(r'"[^"]*"')
_BRACKET = re.compile(r"[\[\]{}]")


def loads_bounded(text: str, what: str) -> JSONValue:
    """Parse ``text`` as JSON; raise :class:`HeaderError` naming ``what`` on any fault or cap."""
    _check_shape(text, what)
    try:
        value = json.loads(
            text,
            object_pairs_hook=_unique_object,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
        )
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


def _check_shape(text: str, what: str) -> None:
    # Only \\ and \" matter to where strings end; str.replace pairs them as JSON does.
    unescaped = text.replace("\\\\", "").replace('\\"', "")
    items = unescaped.count('"') // 2
    _check_items(items, what)
    bare = _STRING.sub("", unescaped)
    _check_items(items + bare.count(",") + bare.count("[") + bare.count("{"), what)
    depth = 0
    for match in _BRACKET.finditer(bare):
        depth += 1 if match.group() in "[{" else -1
        if depth > MAX_JSON_DEPTH:
            raise HeaderError(f"{what} nests deeper than the {MAX_JSON_DEPTH}-level cap")


def _check_items(items: int, what: str) -> None:
    if items > MAX_JSON_ITEMS:
        raise HeaderError(f"{what} has {items} JSON items, over the {MAX_JSON_ITEMS} cap")


def _unique_object(pairs: list[tuple[str, JSONValue]]) -> dict[str, JSONValue]:
    result: dict[str, JSONValue] = {}
    for key, value in pairs:
        if key in result:
            raise HeaderError(f"JSON object repeats the key {quote(key)}")
        result[key] = value
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
