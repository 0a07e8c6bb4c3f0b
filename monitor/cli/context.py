"""What every CLI command shares: the chosen settings, the consoles, JSON output."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from monitor.interface.terminal_text import TerminalConsole, json_text
from monitor.interface.wording import plural
from monitor.settings import Settings, load_settings

__all__ = ["CliState", "cli_state", "err", "fail", "out", "plural", "print_json"]

out = TerminalConsole(highlight=False, soft_wrap=True)
err = TerminalConsole(stderr=True, highlight=False, soft_wrap=True)


class CliState:
    """What the global options chose; settings are built on first use."""

    def __init__(self, config: Path | None, data_dir: Path | None) -> None:
        self.config = config
        self.data_dir = data_dir
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            overrides: dict[str, Any] = {}
            if self.data_dir is not None:
                overrides["data_dir"] = self.data_dir
            self._settings = load_settings(self.config, **overrides)
        return self._settings


def cli_state(ctx: typer.Context) -> CliState:
    obj = ctx.find_root().obj
    assert isinstance(obj, CliState), "the root callback sets ctx.obj"
    return obj


def fail(message: str) -> typer.Exit:
    """Print one ``error:`` line; return the exit (code 2) for the caller to raise."""
    err.print(f"error: {message}", markup=False)
    return typer.Exit(2)


def print_json(value: Any) -> None:
    sys.stdout.write(json_text(value) + "\n")
    sys.stdout.flush()
