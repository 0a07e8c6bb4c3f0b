"""Database ids typed by people (CLI arguments, form fields) as ints, safely.

``str.isdigit`` accepts characters ``int`` refuses (``"²"``) and ``int`` refuses digit runs
past Python's limit; both once turned a stray form value into an error page.
"""

from __future__ import annotations

from collections.abc import Mapping

from detectors.errors import InputError

MAX_ID_DIGITS = 18  # fits a signed 64-bit column
# An id in a route's path: ``\d`` would also take Unicode digits (``/findings/%D9%A3`` opened
# finding 3) and unbounded runs (a 20-digit id overflowed the database's integer: a 500).
ROUTE_ID = "[0-9]{1,18}"


def parse_id(text: str | None) -> int | None:
    """``text`` as a positive id when it is one (ASCII digits only), else None."""
    if text and text.isascii() and text.isdigit() and len(text) <= MAX_ID_DIGITS:
        return int(text)
    return None


def query_id(query: Mapping[str, str], key: str) -> int | None:
    """The id a URL's ``key`` parameter names, None when it is absent; InputError (naming
    ``key``) when it is there and not an id."""
    if key not in query:
        return None
    if (value := parse_id(query[key])) is None:
        raise InputError(f"{key} is an id")
    return value
