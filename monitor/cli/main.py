"""The ``stylewatch`` command line: the composition root.

It builds the settings, the engine and the store and hands them to the pieces that work.
Errors we raise on purpose print as one ``error:`` line and exit 2; anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from detectors.errors import StylewatchError
from monitor.cli import alerts as alert_commands
from monitor.cli import artists as artist_commands
from monitor.cli import blobs as blob_commands
from monitor.cli import commands
from monitor.cli import models as model_commands
from monitor.cli import users as user_commands
from monitor.cli import worker as worker_commands
from monitor.cli.context import CliState, err
from monitor.cli.hubs import artist_backscan, takedowns_check
from monitor.log_format import configure_logging
from monitor.settings import CONFIG_ENV_VAR

app = typer.Typer(
    name="stylewatch",
    help="Watch model hubs for LoRA and checkpoint uploads that imitate registered artists.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # Click's own help: paragraphs rewrapped to the terminal, no "<bool>" after flags, and
    # "[queue] backend" printed as written (rich markup would take "[queue]" for a tag).
    rich_markup_mode=None,
)
artist_app = typer.Typer(
    help="Register and list artists.", no_args_is_help=True, rich_markup_mode=None
)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True, rich_markup_mode=None)
user_app = typer.Typer(
    help="Web UI users and API tokens.", no_args_is_help=True, rich_markup_mode=None
)
models_app = typer.Typer(
    help="Local model weights for the style embedders.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(artist_app, name="artist")
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.add_typer(models_app, name="models")
takedowns_app = typer.Typer(
    help="Whether confirmed uploads are still up on their hubs.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(takedowns_app, name="takedowns")
blobs_app = typer.Typer(
    help="The blob store: images, evidence sheets, probe outputs.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(blobs_app, name="blobs")

app.command("init")(commands.init)
app.command("serve")(commands.serve)
app.command("worker")(worker_commands.worker)
app.command("scan")(commands.scan)
app.command("poll")(commands.poll)
app.command("uploads")(commands.uploads)
app.command("findings")(commands.findings)
artist_app.command("add")(artist_commands.artist_add)
artist_app.command("import")(artist_commands.artist_import)
artist_app.command("list")(artist_commands.artist_list)
artist_app.command("remove")(artist_commands.artist_remove)
artist_app.command("backscan")(artist_backscan)
db_app.command("upgrade")(commands.db_upgrade)
takedowns_app.command("check")(takedowns_check)
blobs_app.command("migrate")(blob_commands.blobs_migrate)
user_app.command("add")(user_commands.user_add)
user_app.command("token")(user_commands.user_token)
user_app.command("list")(user_commands.user_list)
user_app.command("password")(user_commands.user_password)
user_app.command("remove")(user_commands.user_remove)
models_app.command("convert-csd")(model_commands.convert_csd)
app.command("subscribe")(alert_commands.subscribe)
app.command("subscriptions")(alert_commands.subscriptions)
app.command("unsubscribe")(alert_commands.unsubscribe)
app.command("confirm")(alert_commands.confirm)
app.command("deliveries")(alert_commands.deliveries)
app.command("deliver")(alert_commands.deliver)
app.command("digest")(alert_commands.digest)


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", envvar=CONFIG_ENV_VAR, help="TOML config file"),
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
    configure_logging(logging.DEBUG if verbose else logging.WARNING)
    ctx.obj = CliState(config, data_dir)


def main() -> None:
    """Console-script entry point: our own errors become ``error: …`` and exit 2."""
    try:
        app()
    except StylewatchError as exc:
        err.print(f"error: {exc}", markup=False)
        sys.exit(2)
