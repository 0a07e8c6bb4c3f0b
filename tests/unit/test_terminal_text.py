"""The one sanitiser for text on its way to a terminal."""

from __future__ import annotations

import io
import json

from hypothesis import given
from hypothesis import strategies as st

from monitor.interface.terminal_text import TerminalConsole, json_text, shown, terminal_text

HOSTILE = "a\x1b[2Jb\x1b]8;;http://evil.example\x07c\x1b]8;;\x07d\x9b31m\u202egnp.exe\r\n"
UNSAFE = {chr(c) for c in [*range(0x00, 0x09), *range(0x0A, 0x20), *range(0x7F, 0xA0)]}
UNSAFE |= set("\u061c\u200e\u200f\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2069")


def test_codes_are_replaced_by_visible_escapes():
    got = terminal_text(HOSTILE)
    assert got == (
        "a\\x1b[2Jb\\x1b]8;;http://evil.example\\x07c\\x1b]8;;\\x07d\\x9b31m"
        "\\u202egnp.exe\\x0d\\x0a"
    )
    assert terminal_text("x\ny\tz", lines=True) == "x\ny\tz"


def test_shown_escapes_markup_too():
    assert shown("[bold]\x1b[0m") == "\\[bold]\\x1b[0m"


@given(st.text())
def test_nothing_unsafe_survives(text):
    assert not set(terminal_text(text)) & UNSAFE
    assert not set(terminal_text(text, lines=True)) & (UNSAFE - {"\n"})


@given(st.dictionaries(st.text(), st.text()))
def test_json_text_parses_back_the_same_and_holds_no_codes(value):
    text = json_text(value)
    assert json.loads(text) == value
    assert not set(text) & (UNSAFE - {"\n"})


def test_the_console_sanitises_every_string_it_prints():
    buffer = io.StringIO()
    console = TerminalConsole(file=buffer, highlight=False, soft_wrap=True)
    console.print(HOSTILE, markup=False)
    console.print(f"[bold]{shown(HOSTILE)}[/]")
    assert not set(buffer.getvalue()) & (UNSAFE - {"\n"})
    assert buffer.getvalue().count("\\x1b[2J") == 2
