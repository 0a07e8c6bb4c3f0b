"""``stylewatch user add|list|token|password|remove``: accounts for the web UI and API."""

from __future__ import annotations

import getpass
import sys
from typing import Annotated, cast, get_args

import typer
from rich.table import Table

from monitor.cli.context import cli_state, fail, out, plural, print_json
from monitor.cli.options import JsonOption
from monitor.interface.terminal_text import shown
from monitor.runtime import open_runtime
from monitor.web.passwords import Passwords, new_token, token_sha256
from storage.records import Role
from storage.users import UserStore


def _password_hash(from_stdin: bool) -> str:
    """The hash of a new password, asked for twice or read from stdin's first line."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat it: ") != password:
            raise fail("the passwords differ")
    try:
        return Passwords().hash(password)
    except ValueError as exc:
        raise fail(str(exc)) from exc


def user_add(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The user's email (their sign-in name)")],
    role: Annotated[str, typer.Option("--role", help="admin, moderator or artist")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first stdin line")
    ] = False,
    artist: Annotated[
        str | None,
        typer.Option("--artist", help="With --role artist: the registered artist this user is"),
    ] = None,
) -> None:
    """Create a web UI user with a password (asked for, or read from stdin)."""
    if role not in get_args(Role):
        raise fail(f"unknown role {role!r}: choose admin, moderator or artist")
    password_hash = _password_hash(password_stdin)
    with open_runtime(cli_state(ctx).settings) as runtime:
        user = UserStore(runtime.engine).add_user(email, cast(Role, role), password_hash, artist)
    out.print(f"added {shown(user.email)} ({user.role})")


def user_token(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The user the token acts as")],
    name: Annotated[str, typer.Option("--name", help="What the token is for")] = "api",
) -> None:
    """Create an API token for a user and print it once (only its hash is stored)."""
    token = new_token()
    with open_runtime(cli_state(ctx).settings) as runtime:
        UserStore(runtime.engine).add_token(email, name, token_sha256(token))
    sys.stdout.write(token + "\n")


def user_list(
    ctx: typer.Context,
    as_json: JsonOption = False,
) -> None:
    """List the web UI users: email, role, the artist an artist user is, when added."""
    with open_runtime(cli_state(ctx).settings) as runtime:
        users = UserStore(runtime.engine).list_users()
        artists = {a.id: a.name for a in runtime.store.list_artists()}
    rows = [
        {
            "id": u.id,
            "email": u.email,
            "role": u.role,
            "artist": artists.get(u.artist_id) if u.artist_id is not None else None,
            "created_at": u.created_at.isoformat(),
        }
        for u in users
    ]
    if as_json:
        print_json(rows)
        return
    table = Table(title=plural(len(rows), "user"))
    for column in ("id", "email", "role", "artist", "added"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            str(row["id"]),
            shown(str(row["email"])),
            str(row["role"]),
            shown(str(row["artist"] or "")),
            str(row["created_at"])[:16].replace("T", " "),
        )
    out.print(table)


def user_password(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The user whose password changes")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first stdin line")
    ] = False,
) -> None:
    """Set a user's password (asked for twice, or read from stdin); every session they
    have open is signed out."""
    password_hash = _password_hash(password_stdin)
    with open_runtime(cli_state(ctx).settings) as runtime:
        user = UserStore(runtime.engine).change_password(email, password_hash)
    out.print(f"password changed for {shown(user.email)}; their sessions are signed out")


def user_remove(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The user to remove")],
    yes: Annotated[bool, typer.Option("--yes", help="Remove without asking (for scripts)")] = False,
) -> None:
    """Remove a web UI user: their sessions end and their API tokens stop working at once;
    the triage entries they made stay, unattributed. It asks first; there is no undo."""
    with open_runtime(cli_state(ctx).settings) as runtime:
        users = UserStore(runtime.engine)
        found = users.credentials(email)
        if found is None:
            raise fail(f"no user with email {email!r}: see `stylewatch user list`")
        out.print(f"remove {shown(found[0].email)} ({found[0].role})")
        if not yes:
            if not sys.stdin.isatty():
                raise fail("nothing removed: run again with --yes to remove without asking")
            if not typer.confirm("Remove?", default=False):
                out.print("nothing removed")
                return
        user, tokens = users.remove_user(email)
    out.print(f"removed {shown(user.email)}, {plural(tokens, 'API token')}; sessions signed out")
