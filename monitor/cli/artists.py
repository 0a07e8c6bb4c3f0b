"""``stylewatch artist add|import|list``: registering artists, and the back-scans that follow.

Whatever gives an artist new names (registering, new aliases) screens every upload already
recorded for them again (`monitor.backscan.names`), then asks the enabled hubs for their history
of those names (`monitor.backscan.hub_history`; ``--no-hubs`` skips it); whatever gives them new
reference images scores the LoRAs probed earlier against those images
(`monitor.backscan.style`). All run before the command returns, with progress on stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from detectors.results import ArtistRef
from monitor.artists.artist_file import read_artist_file
from monitor.artists.lookup import artist_named, artists_named
from monitor.backscan.names import BackscanResult, backscan
from monitor.backscan.style import (
    NO_BASE_MODEL,
    StyleBackscanResult,
    cli_scoring,
    style_backscan,
)
from monitor.cli.context import cli_state, err, fail, out, plural, print_json
from monitor.cli.hubs import print_history, search_hub_history
from monitor.cli.options import JsonOption
from monitor.interface.terminal_text import shown
from monitor.interface.wording import removal_text
from monitor.runtime import Runtime, open_runtime
from storage.records import ArtistRecord
from storage.store import Store


def artist_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The artist's name as it should be shown")],
    alias: Annotated[
        list[str] | None, typer.Option("--alias", metavar="NAME", help="Another name (repeatable)")
    ] = None,
    email: Annotated[str | None, typer.Option("--email", help="Contact address")] = None,
    images: Annotated[
        Path | None, typer.Option("--images", help="A folder of reference images")
    ] = None,
    hubs: Annotated[
        bool,
        typer.Option(
            "--hubs/--no-hubs",
            help="Search the enabled hubs for earlier uploads naming new names (resumable)",
        ),
    ] = True,
) -> None:
    """Register an artist with aliases, a contact address and reference images.

    For an artist already registered, adds the aliases and images given (and the address,
    if it has none); with none of them given, a name already registered is an error. New
    names back-scan the recorded uploads; new images re-score the LoRAs probed earlier.
    """
    with open_runtime(cli_state(ctx).settings) as runtime:
        before = artist_named(runtime.store, name)
        if before is not None and not (alias or email or images):
            raise fail(
                f"an artist named {before.name!r} already exists;"
                " give --alias, --images or --email to add to it"
            )
        artist = _add_or_update(runtime.store, before, name, alias or [], email)
        added = 0
        if images is not None:
            from monitor.artists.references import import_reference_images

            added, skipped = import_reference_images(runtime, artist.id, images)
            for problem in skipped:
                err.print(f"warning: {problem}", markup=False)
        refs = [ArtistRef(artist.id, artist.name, artist.aliases)]
        new_names = before is None or set(artist.aliases) != set(before.aliases)
        result = _backscan(runtime, refs) if new_names else None
        style = _style_backscan(runtime, refs) if added else None
        history = search_hub_history(runtime, refs) if hubs and new_names else []
    out.print(_added_line(before, artist, added, images is not None), markup=False)
    for line in (result.summary(refs) if result else []) + (style.summary() if style else []):
        out.print(line, markup=False)
    print_history(history, refs)


def _add_or_update(
    store: Store, before: ArtistRecord | None, name: str, aliases: list[str], email: str | None
) -> ArtistRecord:
    if before is None:
        return store.add_artist(name, aliases=aliases, email=email)
    store.import_artists([(before.name, aliases, email)])  # adds only what is missing
    after = artist_named(store, before.name)
    assert after is not None  # it was just updated
    return after


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def _added_line(
    before: ArtistRecord | None, artist: ArtistRecord, added: int, with_images: bool
) -> str:
    images = f" and {_count(added, 'reference image')}" if with_images else ""
    if before is None:
        aliases = _count(len(artist.aliases), "alias", "aliases")
        return f"registered {artist.name} (#{artist.id}) with {aliases}{images}"
    new = len(set(artist.aliases) - set(before.aliases))
    if not new and not added:
        return f"{artist.name} (#{artist.id}) is already registered; nothing new to add"
    aliases = _count(new, "new alias", "new aliases")
    return f"updated {artist.name} (#{artist.id}): {aliases}{images} added"


def _backscan(runtime: Runtime, artists: list[ArtistRef]) -> BackscanResult:
    """Screen every recorded upload for ``artists``, with a progress bar on stderr."""
    from rich.progress import Progress

    from storage.backscan_reads import BackscanReads

    recorded = BackscanReads(runtime.engine)
    total = recorded.count() if artists else 0
    with Progress(console=err, transient=True, disable=not total) as progress:
        task = progress.add_task("back-scan", total=total)
        return backscan(
            runtime.store, recorded, artists, advance=lambda n: progress.advance(task, n)
        )


def _style_backscan(runtime: Runtime, artists: list[ArtistRef]) -> StyleBackscanResult:
    """Score the LoRAs probed earlier against ``artists``' references, with a progress bar."""
    from rich.progress import Progress

    from storage.backscan_reads import BackscanReads

    families = list(runtime.settings.probe.base_models)
    if not families:
        return StyleBackscanResult(skipped=NO_BASE_MODEL)
    total = BackscanReads(runtime.engine).probed_count(families)
    with Progress(console=err, transient=True, disable=not total) as progress:
        task = progress.add_task("probe back-scan", total=total)
        return style_backscan(
            runtime, cli_scoring(runtime), artists, advance=lambda n: progress.advance(task, n)
        )


def artist_import(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A CSV (name, aliases, email) or TOML file")],
) -> None:
    """Register many artists at once; artists already registered gain any new aliases."""
    entries = read_artist_file(file)
    with open_runtime(cli_state(ctx).settings) as runtime:
        added, updated = runtime.store.import_artists((e.name, e.aliases, e.email) for e in entries)
        if added + updated == 0:  # nothing new to look for: no back-scan
            out.print(
                f"nothing new: {plural(len(entries), 'artist')} in {shown(str(file))}"
                " already registered with these names",
            )
            return
        listed = artists_named(runtime.store, (e.name for e in entries))
        refs = [ArtistRef(a.id, a.name, a.aliases) for a in listed]
        result = _backscan(runtime, refs)
    out.print(f"{plural(added, 'artist')} registered, {updated} updated, from {shown(str(file))}")
    named = [ref for ref in refs if result.named.get(ref.name)]
    for line in result.summary(named):
        out.print(line, markup=False)
    out.print(
        f"back-scan: {plural(result.scanned, 'earlier upload')} screened"
        f" for {plural(len(refs), 'artist')}"
    )


def artist_remove(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The artist's registered name or id")],
    yes: Annotated[bool, typer.Option("--yes", help="Remove without asking (for scripts)")] = False,
) -> None:
    """Remove an artist and everything stylewatch holds about them.

    Their aliases, reference image links, findings (with evidence and audit entries) and
    subscriptions (with undelivered alerts) go too; the uploads stay recorded and web users
    linked to the artist keep their account, unlinked. It says what it will remove and asks
    first; there is no undo.
    """
    target: str | int = int(name) if name.isascii() and name.isdigit() else name
    with open_runtime(cli_state(ctx).settings) as runtime:
        plan = runtime.store.artist_removal(target)
        out.print(removal_text(plan, done=False), markup=False)
        if not yes:
            if not sys.stdin.isatty():
                raise fail("nothing removed: run again with --yes to remove without asking")
            if not typer.confirm("Remove?", default=False):
                out.print("nothing removed")
                return
        done = runtime.store.artist_removal(target, remove=True)
    out.print(removal_text(done, done=True), markup=False)


def artist_list(
    ctx: typer.Context,
    as_json: JsonOption = False,
) -> None:
    """List the registered artists."""
    with open_runtime(cli_state(ctx).settings) as runtime:
        artists = runtime.store.list_artists()
    if as_json:
        print_json(
            [
                {"id": a.id, "name": a.name, "aliases": list(a.aliases), "email": a.email}
                for a in artists
            ]
        )
        return
    table = Table(title=f"{len(artists)} artists")
    for column in ("id", "name", "aliases", "email"):
        table.add_column(column)
    for a in artists:
        table.add_row(str(a.id), shown(a.name), shown(", ".join(a.aliases)), shown(a.email or ""))
    out.print(table)
