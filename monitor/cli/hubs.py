"""The CLI's hub history and takedown commands: ``artist backscan NAME [--hubs]``, the hub
search ``artist add`` runs, and ``takedowns check``.

A hub that cannot be reached is one ``warning:`` line, never a failure: what was found is
recorded, and the search resumes where it stopped (next run, or serve's sweep).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn

from detectors.errors import InputError
from detectors.results import ArtistRef
from monitor.artists.lookup import artist_named
from monitor.backscan.hub_history import HistorySummary, search_keys
from monitor.backscan.names import backscan
from monitor.build.hubs import build_checker, build_history
from monitor.build.sources import build_sources, create_session
from monitor.cli.context import cli_state, err, out, print_json
from monitor.cli.options import JsonOption
from monitor.interface.json_views import hub_status_json
from monitor.interface.terminal_text import shown
from monitor.pipeline.takedown import TakedownSummary
from monitor.runtime import Runtime, open_runtime
from monitor.sources.http import HttpClient, HttpPolicy
from storage.backscan_reads import BackscanReads
from storage.takedowns import StillUp, Takedowns
from storage.transactions import utc_now

# Interactive: a hub that does not answer is reported within a few seconds, not minutes
# (the search resumes later; Retry-After is still honoured).
CLI_POLICY = HttpPolicy(max_attempts=3, backoff_base_s=0.5, backoff_max_s=30.0)


def search_hub_history(
    runtime: Runtime, artists: Sequence[ArtistRef], *, again: bool = False
) -> list[HistorySummary]:
    """Search the enabled hubs for ``artists`` (resuming unfinished searches), with a
    progress line on stderr; what each hub did (empty when no hub is searched)."""
    if not runtime.settings.hub_history.enabled or not artists:
        return []
    columns = (SpinnerColumn(), TextColumn("{task.description}"))
    with _quiet_logs(), Progress(*columns, console=err, transient=True) as progress:
        return asyncio.run(_history(runtime, artists, again, progress))


def print_history(summaries: Sequence[HistorySummary], artists: Sequence[ArtistRef]) -> None:
    """One summary line on stdout; one warning line on stderr when a hub stopped early."""
    if not summaries:
        return
    out.print(_history_line(summaries), markup=False)
    stopped = [s for s in summaries if s.waiting]
    if stopped:
        hint = f' "{artists[0].name}"' if len(artists) == 1 else " NAME"
        waiting = sum(s.waiting for s in stopped)
        err.print(
            f"warning: hub history stopped on {', '.join(s.source for s in stopped)}"
            f" ({stopped[0].error}); {waiting} search(es) wait:"
            f" `stylewatch artist backscan{hint} --hubs` resumes them (serve does too)",
            markup=False,
        )
    for s in summaries:
        if s.error and not s.waiting:
            err.print(f"warning: hub history on {s.source}: {s.error}", markup=False)


async def _history(
    runtime: Runtime, artists: Sequence[ArtistRef], again: bool, progress: Progress
) -> list[HistorySummary]:
    async with create_session() as session:
        history = build_history(
            runtime, build_sources(runtime.settings, HttpClient(session, CLI_POLICY))
        )
        if history is None:
            return []
        tasks: dict[str, TaskID] = {
            s.name: progress.add_task(f"hub history {s.name}: searching…") for s in history.sources
        }

        def show(source: str, query: str, pages: int, found: int) -> None:
            what = f"“{shown(query)}” {pages} pages, {found} uploads"
            progress.update(tasks[source], description=f"hub history {source}: {what}")

        keys = search_keys(artists, history.sources)
        return await history.run(keys, again=again, progress=show)


def _history_line(summaries: Sequence[HistorySummary]) -> str:
    searched = [s for s in summaries if s.searched]
    if not searched:
        return "hub history: already searched (--again searches again)"
    if not any(s.pages for s in searched):
        return "hub history: no page read yet"
    pages = ", ".join(f"{s.source} {s.pages} page{'s' if s.pages != 1 else ''}" for s in searched)
    screened = sum(s.screened for s in searched)
    flagged = sum(s.flagged for s in searched)
    return (
        f"hub history: {sum(s.found for s in searched)} uploads found, {screened} screened"
        f" ({pages}), {flagged} flagged"
    )


@contextmanager
def _quiet_logs() -> Iterator[None]:
    """Per-request retries and stops are summed up in the warning line: their log lines
    show only with --verbose."""
    logger = logging.getLogger("monitor")
    before = logger.level
    if logging.getLogger().level > logging.DEBUG:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(before)


def artist_backscan(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The artist's registered name")],
    hubs: Annotated[
        bool, typer.Option("--hubs", help="Also search the enabled hubs (resumes a search)")
    ] = False,
    again: Annotated[
        bool, typer.Option("--again", help="Search the hubs again even where a search finished")
    ] = False,
) -> None:
    """Screen every recorded upload for an artist again; with --hubs, search the hubs too."""
    with open_runtime(cli_state(ctx).settings) as runtime:
        artist = _artist(runtime, name)
        recorded = BackscanReads(runtime.engine)
        with Progress(console=err, transient=True) as progress:
            task = progress.add_task("back-scan", total=recorded.count())
            result = backscan(
                runtime.store, recorded, [artist], advance=lambda n: progress.advance(task, n)
            )
        history = search_hub_history(runtime, [artist], again=again) if hubs else []
    for line in result.summary([artist]):
        out.print(line, markup=False)
    print_history(history, [artist])


def _artist(runtime: Runtime, name: str) -> ArtistRef:
    a = artist_named(runtime.store, name)
    if a is not None:
        return ArtistRef(a.id, a.name, a.aliases)
    raise InputError(f"no artist named {name!r} is registered (see `stylewatch artist list`)")


def takedowns_check(
    ctx: typer.Context,
    check_all: Annotated[
        bool, typer.Option("--all", help="Check every confirmed upload, not only those due")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Check the uploads of confirmed findings on their hubs once; list those still up."""
    with open_runtime(cli_state(ctx).settings) as runtime:
        with _quiet_logs(), err.status("checking the hubs…"):
            summary = asyncio.run(_check(runtime, 0 if check_all else None))
        days = runtime.settings.takedown.still_up_days
        still = Takedowns(runtime.engine).still_up(days)
    if as_json:
        print_json(_takedowns_json(summary, still, days))
        return
    out.print(
        f"takedowns: {summary.checked} uploads checked, {summary.up} up, {summary.gone} gone"
        f" ({summary.taken_down} findings taken down)",
        markup=False,
    )
    if summary.errors:
        err.print(
            f"warning: {summary.errors} upload(s) could not be checked (hub errors); their"
            " findings are unchanged and are checked again next time",
            markup=False,
        )
    for item in still:
        f, check = item.finding, item.check
        seen = f"up at {check.checked_at:%Y-%m-%d}" if check else "not checked yet"
        out.print(
            f"confirmed {(utc_now() - item.confirmed_at).days} days ago, {seen}:"
            f" {f.source}:{f.upload_id} {f.name} ({f.artist})",
            markup=False,
        )


async def _check(runtime: Runtime, every_s: float | None) -> TakedownSummary:
    async with create_session() as session:
        sources = build_sources(runtime.settings, HttpClient(session, CLI_POLICY))
        return await build_checker(runtime, sources).check_due(every_s=every_s)


def _takedowns_json(summary: TakedownSummary, still: Sequence[StillUp], days: float) -> Any:
    return {
        "checked": summary.checked,
        "up": summary.up,
        "gone": summary.gone,
        "taken_down": summary.taken_down,
        "errors": summary.errors,
        "still_up_days": days,
        "still_up": [
            {
                "source": s.finding.source,
                "upload_id": s.finding.upload_id,
                "name": s.finding.name,
                "artist": s.finding.artist,
                "confirmed_at": s.confirmed_at.isoformat(),
                "hub_status": hub_status_json(s.check),
            }
            for s in still
        ],
    }
