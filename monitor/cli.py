"""The ``stylewatch`` command line: the composition root.

It builds the settings, the engine and the store and hands them to the pieces that work.
Errors we raise on purpose print as one ``error:`` line and exit 2; anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from detectors.errors import StylewatchError
from monitor.settings import CONFIG_ENV_VAR, Settings, load_settings

app = typer.Typer(
    name="stylewatch",
    help="Watch model hubs for LoRA and checkpoint uploads that imitate registered artists.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
artist_app = typer.Typer(help="Register and list artists.", no_args_is_help=True)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(artist_app, name="artist")
app.add_typer(db_app, name="db")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class _State:
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


def state(ctx: typer.Context) -> _State:
    obj = ctx.find_root().obj
    assert isinstance(obj, _State)
    return obj


def fail(message: str) -> typer.Exit:
    """Print one ``error:`` line and return the exit for code 2."""
    err.print(f"error: {message}", markup=False)
    return typer.Exit(2)


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", envvar=CONFIG_ENV_VAR, help="TOML config file [env: STYLEWATCH_CONFIG]"
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Where the database, blobs and evidence live [env: STYLEWATCH_DATA_DIR]",
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug detail")] = False,
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("alembic", "aiohttp.access", "httpx", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    ctx.obj = _State(config, data_dir)


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def main() -> None:
    """Console-script entry point."""
    from monitor import commands  # noqa: F401  (registers the commands on ``app``)

    try:
        app()
    except StylewatchError as exc:
        err.print(f"error: {exc}", markup=False)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
