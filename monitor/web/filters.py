"""Jinja filters: matched-text highlighting, safe links, dates, scores, sizes.

`highlight` escapes the text itself and wraps each case-insensitive occurrence of a
needle in ``<mark>``; its result is the only markup a template marks safe.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from urllib.parse import urlsplit

from markupsafe import Markup, escape

MAX_HIGHLIGHT_CHARS = 4000
MIN_NEEDLE_CHARS = 2


def highlight(text: object, needles: Iterable[str]) -> Markup:
    """``text`` escaped, with every occurrence of a needle (any case) in ``<mark>``."""
    value = str(text)[:MAX_HIGHLIGHT_CHARS]
    words = sorted({n for n in needles if len(n.strip()) >= MIN_NEEDLE_CHARS}, key=len)[::-1]
    if not words:
        return Markup(escape(value))
    pattern = re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE)
    parts: list[str] = []
    last = 0
    for match in pattern.finditer(value):
        parts.append(escape(value[last : match.start()]))
        parts.append(Markup("<mark>%s</mark>") % match.group(0))
        last = match.end()
    parts.append(escape(value[last:]))
    return Markup("").join(parts)


def safe_url(url: object) -> str | None:
    """The URL if it is http(s) (what a link may point at), else None."""
    if not isinstance(url, str):
        return None
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return None
    return url.strip() if scheme in ("http", "https") else None


def when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def score(value: float) -> str:
    return f"{value:.2f}"


def size(value: int | None) -> str:
    if value is None:
        return "?"
    if value < 1024:
        return f"{value} B"
    amount = value / 1024
    for unit in ("KiB", "MiB"):
        if amount < 1024:
            return f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} GiB"


FILTERS = {"highlight": highlight, "safe_url": safe_url, "when": when, "score": score, "size": size}
