"""Hub HTML (Civitai's model descriptions) as plain text, in one linear pass.

The standard library's ``HTMLParser`` was used first; fuzzing (bench/fuzz.py) found that
it raises AssertionError on marked sections such as ``<![``, that ``html.unescape`` raises
ValueError on a numeric character reference longer than Python's int-parsing limit, and
that the parser rescans its buffer on every unclosed tag (12 KB of ``<a `` took 5 s, on the
event loop). Screening needs only the words, so this keeps the text between tags, turns
block tags into line breaks, drops comments, scripts and styles, and decodes entities.
"""

from __future__ import annotations

import html
import re

MAX_HTML_CHARS = 1_000_000  # a description longer than this is cut, not refused
BLOCK_TAGS = frozenset({"p", "br", "li", "div", "h1", "h2", "h3", "h4", "h5", "h6", "tr"})
HIDDEN_TAGS = frozenset({"script", "style"})
_TAG_NAME = re.compile(r"/?([A-Za-z][A-Za-z0-9]*)")
_HIDDEN_END = {tag: re.compile(f"</{tag}", re.IGNORECASE) for tag in HIDDEN_TAGS}
# A numeric reference past the last code point names no character; its digits are capped so
# html.unescape never parses thousands of them.
_HUGE_CHARREF = re.compile(r"&#(?:[xX][0-9A-Fa-f]{7,}|[0-9]{8,});?")


def html_to_text(source: str) -> str:
    """Tags dropped, block tags as line breaks, entities decoded, whitespace squeezed."""
    text = source[:MAX_HTML_CHARS]
    parts: list[str] = []
    i, n = 0, len(text)
    while i < n:
        lt = text.find("<", i)
        if lt < 0:
            parts.append(text[i:])
            break
        parts.append(text[i:lt])
        if text.startswith("<!--", lt):
            end = text.find("-->", lt + 4)
            i = n if end < 0 else end + 3
            continue
        gt = text.find(">", lt + 1)
        if gt < 0:  # no tag can close from here on: the rest is text
            parts.append(text[lt:])
            break
        name = _TAG_NAME.match(text, lt + 1, gt)
        if name is None and text[lt + 1 : lt + 2] not in ("!", "?"):
            parts.append("<")  # "a < b": a literal less-than sign
            i = lt + 1
            continue
        tag = name.group(1).lower() if name else ""
        i = gt + 1
        if tag in BLOCK_TAGS:
            parts.append("\n")
        elif tag in HIDDEN_TAGS and not text.startswith("/", lt + 1):
            close = _HIDDEN_END[tag].search(text, i)
            i = n if close is None else close.start()
    decoded = html.unescape(_HUGE_CHARREF.sub("\ufffd", "".join(parts)))
    lines = (" ".join(line.split()) for line in decoded.splitlines())
    return "\n".join(line for line in lines if line)
