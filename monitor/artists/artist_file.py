"""Reading an artist list for ``stylewatch artist import`` (CSV or TOML).

CSV: a header row with ``name`` and optionally ``aliases`` (separated by ``;`` or ``|``)
and ``email``. TOML: ``[[artist]]`` tables with ``name``, ``aliases`` (a list) and ``email``.
"""

from __future__ import annotations

import csv
import io
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from detectors.bounded_json import quote
from detectors.errors import InputError

MAX_FILE_BYTES = 20 * 1024 * 1024
_ALIAS_SPLIT = re.compile(r"[;|]")
# C0 and C1 controls: never part of a name, and PostgreSQL text cannot hold NUL.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True, slots=True)
class ArtistEntry:
    """One artist to register."""

    name: str
    aliases: tuple[str, ...]
    email: str | None


def read_artist_file(path: Path) -> list[ArtistEntry]:
    """Parse a CSV or TOML artist list; raises InputError naming the file and the line."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise InputError(f"{path}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path} cannot be read: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 text") from exc
    if path.suffix.lower() == ".toml":
        return _from_toml(path, text)
    return _from_csv(path, text)


def _clean(value: str | None) -> str:
    return (value or "").strip()


def _from_csv(path: Path, text: str) -> list[ArtistEntry]:
    # newline="": line ends are the csv module's to read, so a bare \r ends a row, not a field.
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        return _csv_entries(path, reader)
    except csv.Error as exc:  # a field over csv.field_size_limit(), a broken quote
        line = reader.reader.line_num  # DictReader's own count stops at the last good row
        raise InputError(f"{path}, line {line}: not a readable CSV row ({exc})") from exc


def _csv_entries(path: Path, reader: csv.DictReader[str]) -> list[ArtistEntry]:
    columns = {c.strip().lower() for c in (reader.fieldnames or [])}
    if "name" not in columns:
        raise InputError(f"{path}: the first row must name the columns, including 'name'")
    _known_only(path, "column", columns)
    entries = []
    for row in reader:
        row = {(k or "").strip().lower(): v for k, v in row.items()}
        name = _clean(row.get("name"))
        if not name:
            raise InputError(f"{path}, line {reader.line_num}: the name is empty")
        aliases = tuple(
            a for a in (_clean(x) for x in _ALIAS_SPLIT.split(row.get("aliases") or "")) if a
        )
        entry = ArtistEntry(name, aliases, _clean(row.get("email")) or None)
        entries.append(_checked(entry, f"{path}, line {reader.line_num}"))
    return entries


KNOWN_FIELDS = ("name", "aliases", "email")


def _known_only(where: object, what: str, names: set[str]) -> None:
    """A misspelt column or key ("alias", "e-mail") would drop what it holds without a word."""
    unknown = sorted(n for n in names if n not in KNOWN_FIELDS)
    if unknown:
        listed = ", ".join(quote(n) for n in unknown)
        raise InputError(
            f"{where}: unknown {what}{'s' if len(unknown) > 1 else ''} {listed}"
            f" (known: {', '.join(KNOWN_FIELDS)})"
        )


def _checked(entry: ArtistEntry, where: str) -> ArtistEntry:
    for text in (entry.name, *entry.aliases, entry.email or ""):
        if _CONTROL.search(text):
            raise InputError(f"{where}: {quote(text)} holds a control character")
    return entry


def _from_toml(path: Path, text: str) -> list[ArtistEntry]:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path} is not valid TOML: {exc}") from exc
    except ValueError as exc:  # int() refuses an integer of over 4,300 digits
        raise InputError(f"{path} holds an integer too long to read") from exc
    except RecursionError as exc:  # tomllib recurses once per nested array or inline table
        raise InputError(f"{path} nests arrays or tables too deeply") from exc
    tables = doc.get("artist", [])
    if not isinstance(tables, list):
        raise InputError(f"{path}: artists go in [[artist]] tables")
    return [_toml_entry(path, n, t) for n, t in enumerate(tables, start=1)]


def _toml_entry(path: Path, number: int, table: Any) -> ArtistEntry:
    where = f"{path}, artist #{number}"
    if (
        not isinstance(table, dict)
        or not isinstance(table.get("name"), str)
        or not table["name"].strip()
    ):
        raise InputError(f"{where}: needs a name")
    _known_only(where, "key", {str(k) for k in table})
    aliases = table.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise InputError(f"{where}: aliases must be a list of strings")
    email = table.get("email")
    if email is not None and not isinstance(email, str):
        raise InputError(f"{where}: email must be a string")
    entry = ArtistEntry(
        table["name"].strip(),
        tuple(a.strip() for a in aliases if a.strip()),
        (email or "").strip() or None,
    )
    return _checked(entry, where)
