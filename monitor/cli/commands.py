"""The CLI commands. Each is thin: it parses options, calls the pieces, prints the result."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from monitor.build.probe import build_prober
from monitor.cli.context import cli_state, err, fail, out, print_json
from monitor.cli.options import JsonOption
from monitor.interface.json_views import flagged_uploads_json, upload_json
from monitor.interface.scan_report import ScanFailure, ScanReport, render_report, render_summary
from monitor.interface.terminal_text import shown
from monitor.pipeline.screen import Scanner
from monitor.runtime import (
    STARTUP_WAIT_FOR_BLOBS_S,
    Runtime,
    open_runtime,
    safe_database_url,
)
from monitor.sources.targets import HubTarget, parse_hub_target
from storage.migrate import upgrade

HUB_PROBE_REASON = "scan probes local files only: download the file and scan it to probe it"


def init(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing config")] = False,
) -> None:
    """Write a commented config into the data dir and create the database."""
    settings = cli_state(ctx).settings
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    target = settings.data_dir / "config.toml"
    if target.exists() and not force:
        raise fail(f"{target} exists; use --force to overwrite it")
    target.write_text(_example_config(), encoding="utf-8")
    open_runtime(settings).close()  # creates the database (the embedded default migrates)
    out.print(f"wrote {shown(str(target))}")
    out.print(f"database ready: {shown(safe_database_url(settings.database_url))}")
    out.print(f"use it with: stylewatch --config {shown(str(target))} serve")


def _example_config() -> str:
    from importlib.resources import files

    return files("monitor").joinpath("config.example.toml").read_text(encoding="utf-8")


def serve(
    ctx: typer.Context,
    with_worker: Annotated[
        bool,
        typer.Option(
            "--with-worker",
            help="Also run a job worker here ([queue] backend = procrastinate; the embedded "
            "default always probes in serve)",
        ),
    ] = False,
) -> None:
    """Run the service: web UI, health endpoints (and pollers) until Ctrl-C or SIGTERM."""
    from monitor.cli.worker import service_logging
    from monitor.services.serve import serve as run_server

    service_logging()
    with open_runtime(
        cli_state(ctx).settings, wait_for_blobs_s=STARTUP_WAIT_FOR_BLOBS_S
    ) as runtime:
        asyncio.run(run_server(runtime, with_worker=with_worker))


def scan(
    ctx: typer.Context,
    target: Annotated[
        str,
        typer.Argument(
            metavar="TARGET",
            help="A model file, a folder of model files, or a hub upload: hf:owner/repo,"
            " civitai:<versionId>, or its civitai.com / huggingface.co URL",
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON report")] = False,
    no_probe: Annotated[bool, typer.Option("--no-probe", help="Screening only")] = False,
) -> None:
    """Scan a model file (or every model file in a folder, or a hub upload) for registered
    artists.

    Local files are screened and probed; a hub upload's metadata and hub text are screened
    without downloading its weights. Exit 0 clean, 1 flagged, 2 bad input, refused file or
    malformed metadata.
    """
    settings = cli_state(ctx).settings
    hub = parse_hub_target(target, settings)
    with open_runtime(settings) as runtime:
        if hub is not None:
            reason = "--no-probe given" if no_probe else HUB_PROBE_REASON
            code = _scan_hub(runtime, target, hub, reason, as_json)
        else:
            code = _scan_local(runtime, Path(target), as_json, probe=not no_probe)
    raise typer.Exit(code)


def _scan_local(runtime: Runtime, path: Path, as_json: bool, *, probe: bool) -> int:
    scanner = Scanner(runtime, probe_requested=probe, build_prober=build_prober)
    try:
        if path.is_dir():
            return _scan_folder(scanner, path, as_json)
        return _scan_one(scanner, path, as_json)
    finally:
        scanner.close()


def _scan_hub(runtime: Runtime, target: str, hub: HubTarget, reason: str, as_json: bool) -> int:
    from monitor.cli.hub_scan import scan_hub_target

    with err.status(f"reading {target}…"):
        result = asyncio.run(scan_hub_target(runtime, target, hub, probe_reason=reason))
    return _report_one(result, as_json)


def _scan_one(scanner: Scanner, path: Path, as_json: bool) -> int:
    return _report_one(scanner.scan_file(path), as_json)


def _report_one(result: ScanReport | ScanFailure, as_json: bool) -> int:
    if isinstance(result, ScanFailure):
        if as_json:
            print_json(result.to_json())
        raise fail(result.message)
    if as_json:
        print_json(result.to_json())
    else:
        render_report(out, result)
    if result.verdict == "malformed":
        raise fail(f"{result.target}: malformed metadata: {result.malformed}")
    return 1 if result.flagged else 0


def _scan_folder(scanner: Scanner, folder: Path, as_json: bool) -> int:
    from rich.progress import Progress

    paths = scanner.files_in(folder)
    results: list[ScanReport | ScanFailure] = []
    with Progress(console=err, transient=True, disable=not paths) as progress:
        task = progress.add_task("scanning", total=len(paths))
        for path in paths:
            results.append(scanner.scan_file(path))
            progress.advance(task)
    if as_json:
        print_json([r.to_json() for r in results])
    else:
        render_summary(out, results)
    if any(isinstance(r, ScanReport) and r.flagged for r in results):
        return 1
    refused = (isinstance(r, ScanFailure) or r.verdict == "malformed" for r in results)
    return 2 if any(refused) else 0


def uploads(
    ctx: typer.Context,
    as_json: JsonOption = False,
    source: Annotated[str | None, typer.Option("--source", help="Only this source")] = None,
) -> None:
    """Every upload the service has recorded, and its state."""
    with open_runtime(cli_state(ctx).settings) as runtime:
        records = runtime.store.list_uploads(source=source)
    if as_json:
        print_json([upload_json(r) for r in records])
        return
    table = Table(title=f"{len(records)} uploads")
    for column in ("source", "upload", "name", "kind", "family", "state", "artists"):
        table.add_column(column)
    for r in records:
        table.add_row(
            r.source,
            shown(r.upload_id[:16]),
            shown(r.name),
            r.kind,
            r.base_family,
            r.state,
            shown(", ".join(r.artists)),
        )
    out.print(table)


def findings(
    ctx: typer.Context,
    as_json: JsonOption = False,
) -> None:
    """Flagged uploads with their evidence and triage state."""
    from storage.takedowns import Takedowns

    with open_runtime(cli_state(ctx).settings) as runtime:
        records = runtime.store.list_findings()
        checks = Takedowns(runtime.engine).checks([r.upload_pk for r in records])
    if as_json:
        print_json(flagged_uploads_json(records, checks))
        return
    if not records:
        out.print("no findings")
    for r in records:
        out.print(
            f"[bold]{shown(r.artist)}[/]  {r.score:.2f}  {r.state}  "
            f"{shown(r.source)}:{shown(r.upload_id[:16])}  {shown(r.name)}"
        )
        for ev in r.evidence:
            out.print(f"    [cyan]{shown(ev.source)}[/]: {shown(ev.text)}")


def db_upgrade(ctx: typer.Context) -> None:
    """Apply the database schema migrations, and the job queue's tables with the
    procrastinate backend (idempotent)."""
    settings = cli_state(ctx).settings
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    from storage.engine import create_db_engine
    from storage.job_tables import apply_job_schema

    engine = create_db_engine(settings.database_url)
    try:
        upgrade(engine)
        created = settings.queue.backend == "procrastinate" and apply_job_schema(engine)
    finally:
        engine.dispose()
    out.print(f"database up to date: {shown(safe_database_url(settings.database_url))}")
    if created:
        out.print("job queue tables created (procrastinate)")


def poll(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="One poll-screen cycle, then exit")] = False,
    source: Annotated[
        list[str] | None,
        typer.Option(
            "--source",
            metavar="SOURCE",
            help="Only this source: civitai, huggingface, folder (repeatable)",
        ),
    ] = None,
) -> None:
    """One poll-screen cycle over the enabled sources (or --source), then exit."""
    from monitor.services.polling import poll_once

    if not once:
        raise fail("use --once for one cycle; `stylewatch serve` polls continuously")
    with open_runtime(cli_state(ctx).settings) as runtime, err.status("polling…"):
        summaries = asyncio.run(
            poll_once(
                runtime,
                source or None,
                progress=lambda s: err.print(
                    f"  {s.source}: {s.screened} screened, {s.flagged} flagged"
                ),
            )
        )
    table = Table(title="poll")
    for column in ("source", "listed", "screened", "flagged", "failed", "bytes", "status"):
        table.add_column(column)
    for s in summaries:
        status = (
            "[green]complete[/]" if s.complete else f"[yellow]{shown(s.error or 'incomplete')}[/]"
        )
        table.add_row(
            s.source,
            str(s.listed),
            str(s.screened),
            str(s.flagged),
            str(s.failed),
            f"{s.bytes_fetched:,}",
            status,
        )
    out.print(table)
    if not summaries:
        out.print("no source is enabled: see [sources.*] enabled in the config")
