"""Every ``--help`` page reads as prose: paragraphs wrapped to the terminal, no Python type
names after options, config sections such as ``[queue]`` printed as written."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from monitor.cli.main import app


def _commands() -> Iterator[tuple[str, ...]]:
    def walk(command: Any, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        yield path
        for name, sub in (getattr(command, "commands", None) or {}).items():
            yield from walk(sub, (*path, name))

    yield from walk(typer.main.get_command(app), ())


COMMANDS = sorted(_commands())


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "stylewatch")
def test_help_page_reads_as_prose(path):
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80"}, color=False)
    assert result.exit_code == 0, result.output
    text = result.output
    assert "<bool>" not in text and "<list[" not in text, text
    assert "╭" not in text  # click's plain layout, which rewraps docstring paragraphs
    assert max(len(line) for line in text.splitlines()) <= 80, text
    # a docstring's own line breaks never survive mid-sentence: no line of a paragraph is
    # left much shorter than the width while the next line goes on with the same sentence
    lines = text.splitlines()
    for line, following in itertools.pairwise(lines):
        if line.startswith("  ") and not line.startswith("   ") and following.startswith("  "):
            words = following.strip().split()
            if words and words[0][0].islower() and not line.rstrip().endswith((".", ":")):
                assert len(line) + 1 + len(words[0]) > 80, (line, following)


def test_config_sections_are_printed_as_written():
    result = CliRunner().invoke(app, ["worker", "--help"], color=False)
    assert "[queue] backend =" in result.output
    assert "[queue] shutdown_grace_s" in " ".join(result.output.split())
