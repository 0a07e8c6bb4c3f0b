"""Reading hub JSON tolerantly: a missing or mistyped optional value becomes None (or empty),
unknown keys are ignored, and ids and cursors may come as numbers or strings."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from detectors.errors import SourceRejected


def obj(raw: Any, what: str) -> dict[str, Any]:
    """``raw`` as a JSON object; ``SourceRejected`` naming ``what`` otherwise."""
    if not isinstance(raw, dict):
        raise SourceRejected(f"the hub sent a {what} that is not a JSON object")
    return raw


def sub(raw: dict[str, Any], key: str) -> dict[str, Any]:
    """The object under ``key``, or an empty one."""
    value = raw.get(key)
    return value if isinstance(value, dict) else {}


def items(raw: Any) -> list[Any]:
    return raw if isinstance(raw, list) else []


def strings(raw: Any) -> Iterator[str]:
    """The non-blank strings of a list (a lone string counts as a list of one)."""
    for item in [raw] if isinstance(raw, str) else items(raw):
        if isinstance(item, str) and item.strip():
            yield item


def text(raw: Any) -> str | None:
    return raw if isinstance(raw, str) and raw.strip() else None


def opt_int(raw: Any) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and raw.strip().isascii() and raw.strip().isdigit():
        return int(raw)
    return None


def req_int(raw: Any, what: str) -> int:
    value = opt_int(raw)
    if value is None:
        raise SourceRejected(f"the hub sent an item without a usable {what}")
    return value


def parse_time(raw: Any) -> datetime | None:
    """An ISO 8601 time (``Z`` or an offset; naive means UTC) as an aware datetime, or None."""
    if not isinstance(raw, str) or not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
