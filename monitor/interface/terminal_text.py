"""Text on its way to a terminal: hub-supplied strings made inert, visibly.

Upload titles, descriptions, metadata, uploader names and remote error messages are
written by strangers. Printed raw, ``\\x1b[2J`` clears the operator's screen, an OSC 8
sequence (``\\x1b]8;;URL\\x07``) hides a link behind innocent text, C1 controls do the same
on terminals that read them, and bidi overrides (U+202E) reorder what is shown. Every human
output of the CLI passes such text through :func:`terminal_text` (or :func:`shown` for
Rich markup); each stripped code is replaced by its escape (``\\x1b``, ``\\u202e``) so the
operator sees that something was there. JSON output goes through :func:`json_text`, which
keeps the value but writes these characters as ``\\uXXXX`` escapes (``json.dumps`` with
``ensure_ascii=False`` escapes only C0).
"""

from __future__ import annotations

import json
import re
from typing import Any

from rich.console import Console
from rich.markup import escape

# C0 but tab (and newline where lines are wanted), DEL, C1, and the Unicode format
# characters that reorder or split lines: bidi marks, embeddings, overrides, isolates.
_BIDI = "\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_UNSAFE = re.compile(f"[\x00-\x08\x0a-\x1f\x7f-\x9f{_BIDI}]")
_UNSAFE_KEEP_LINES = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}]")
_UNSAFE_IN_JSON = re.compile(f"[\x7f-\x9f{_BIDI}]")


def _escape_code(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_text(text: str, *, lines: bool = False) -> str:
    """``text`` with every terminal control and bidi code replaced by its visible escape;
    newlines too unless ``lines`` (one field must not forge another output line)."""
    pattern = _UNSAFE_KEEP_LINES if lines else _UNSAFE
    return pattern.sub(_escape_code, text)


def shown(text: str) -> str:
    """``text`` for a Rich markup string: controls made visible, markup escaped."""
    return escape(terminal_text(text))


def json_text(value: Any) -> str:
    """``value`` as indented JSON whose text holds no terminal control or bidi code;
    it parses back to the same value."""
    dumped = json.dumps(value, indent=2, ensure_ascii=False)
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", dumped)


class TerminalConsole(Console):
    """A Rich console that passes every string it prints through :func:`terminal_text`
    (newlines kept: a printed string may hold several lines). Table cells are not strings
    it sees: their builders use :func:`shown`."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        safe = [terminal_text(o, lines=True) if isinstance(o, str) else o for o in objects]
        super().print(*safe, **kwargs)
