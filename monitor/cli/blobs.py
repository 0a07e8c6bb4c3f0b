"""CLI commands for the blob store: ``stylewatch blobs …``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from detectors.errors import InputError
from monitor.cli.context import cli_state, err, out
from monitor.runtime import open_blob_store
from storage.blob_migration import MigrationProgress, migrate_blobs
from storage.file_blobs import FileBlobStore


def blobs_migrate(
    ctx: typer.Context,
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="Where to copy the blobs: s3://bucket/prefix (reached as [storage] says: "
            "endpoint_url, region, credentials [env: STYLEWATCH_STORAGE__*]) or a folder",
        ),
    ],
    source: Annotated[
        Path | None,
        typer.Option(
            "--from",
            help="The blob folder to copy (default: [storage] blobs when it is a folder, "
            "else <data_dir>/blobs)",
        ),
    ] = None,
    verify: Annotated[
        bool,
        typer.Option("--verify", help="Also read back every blob at the target and check it"),
    ] = False,
) -> None:
    """Copy a folder of blobs into a bucket (or another folder), skipping blobs already there.

    Safe to stop and run again: it goes on where it was. Point [storage] blobs at the
    target afterwards (docs/deploy.md).
    """
    settings = cli_state(ctx).settings
    folder = source if source is not None else _source_folder(settings.storage.blobs)
    folder = folder if folder is not None else settings.data_dir / "blobs"
    if not folder.is_dir():
        raise InputError(f"no blob folder at {folder}: pass --from PATH")
    target = open_blob_store(settings, to)
    target.check()
    counts = migrate_blobs(FileBlobStore(folder), target, verify=verify, progress=_progress)
    for key in counts.corrupt:
        err.print(f"warning: blob {key} in {folder} does not match its hash", markup=False)
    out.print(
        f"migrated {folder} to {to}: {counts.copied} copied ({_size(counts.bytes_copied)}), "
        f"{counts.skipped} already there, {len(counts.corrupt)} corrupt"
        + (", all verified" if verify and not counts.corrupt else ""),
        markup=False,
    )
    if counts.corrupt:
        raise typer.Exit(1)


def _source_folder(blobs: str | None) -> Path | None:
    return Path(blobs).expanduser() if blobs and not blobs.startswith("s3:") else None


def _progress(counts: MigrationProgress) -> None:
    err.print(
        f"blobs: {counts.done}/{counts.total} ({counts.copied} copied, "
        f"{counts.skipped} already there, {_size(counts.bytes_copied)})",
        markup=False,
    )


def _size(n: int) -> str:
    value, unit = float(n), "B"
    for bigger in ("KB", "MB", "GB"):
        if value < 1000:
            break
        value, unit = value / 1000, bigger
    return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
