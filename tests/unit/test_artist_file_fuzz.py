"""Artist lists (``stylewatch artist import``) are outside input: what a spreadsheet or a
hand-written TOML file holds reads back the same, and any bytes give artists with clean
names or one InputError line naming the file, never another exception."""

from __future__ import annotations

import csv
import io
import json
import random
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.fuzz_mutators import Mutator
from bench.fuzz_seeds import artist_csv_seeds, artist_toml_seeds
from detectors.errors import InputError
from monitor.artists.artist_file import ArtistEntry, read_artist_file
from tests.strategies import artist_rows

Row = tuple[str, list[str], str | None]


def _expected(rows: list[Row]) -> list[ArtistEntry]:
    return [
        ArtistEntry(name.strip(), tuple(a.strip() for a in aliases if a.strip()), email)
        for name, aliases, email in rows
    ]


def _csv(rows: list[Row]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(["name", "aliases", "email"])
    for name, aliases, email in rows:
        writer.writerow([name, ";".join(aliases), email or ""])
    return out.getvalue().encode()


def _basic(value: object) -> str:
    """A TOML basic string (or array of them): JSON's escapes, characters kept as they are
    (TOML has no surrogate pairs)."""
    return json.dumps(value, ensure_ascii=False)


def _toml(rows: list[Row]) -> bytes:
    tables = []
    for name, aliases, email in rows:
        lines = ["[[artist]]", f"name = {_basic(name)}", f"aliases = {_basic(aliases)}"]
        if email is not None:
            lines.append(f"email = {_basic(email)}")
        tables.append("\n".join(lines))
    return "\n\n".join(tables).encode()


def _read(folder: Path, data: bytes, suffix: str) -> list[ArtistEntry]:
    path = folder / f"artists{suffix}"
    path.write_bytes(data)
    return read_artist_file(path)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("artists")


@settings(max_examples=60, deadline=None)
@given(rows=artist_rows)
def test_a_written_csv_reads_back_the_same(folder, rows):
    assert _read(folder, _csv(rows), ".csv") == _expected(rows)


@settings(max_examples=60, deadline=None)
@given(rows=artist_rows)
def test_a_written_toml_reads_back_the_same(folder, rows):
    assert _read(folder, _toml(rows), ".toml") == _expected(rows)


def _clean_or_one_line(folder: Path, data: bytes, suffix: str) -> None:
    try:
        entries = _read(folder, data, suffix)
    except InputError as exc:
        message = str(exc)
        assert "\n" not in message
        assert message.startswith(str(folder / f"artists{suffix}"))
        return
    for entry in entries:
        assert entry.name and entry.name == entry.name.strip()
        assert not any(unicodedata.category(ch) == "Cc" for ch in entry.name)
        assert all(alias and alias == alias.strip() for alias in entry.aliases)


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=400), suffix=st.sampled_from([".csv", ".toml"]))
def test_any_bytes_give_clean_artists_or_one_input_error(folder, data, suffix):
    _clean_or_one_line(folder, data, suffix)


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), suffix=st.sampled_from([".csv", ".toml"]))
def test_mutated_artist_lists_give_clean_artists_or_one_input_error(folder, seed, suffix):
    seeds = artist_csv_seeds() if suffix == ".csv" else artist_toml_seeds()
    rng = random.Random(seed)
    mutant = Mutator(suffix[1:], seeds, 64 * 1024).mutate(rng.choice(seeds), rng)
    _clean_or_one_line(folder, mutant, suffix)


@pytest.mark.parametrize(
    ("suffix", "data", "says"),
    [
        (".csv", b"name\n" + b"a" * 140_000 + b"\n", "line 2: not a readable CSV row"),
        (".csv", b"name\nMara\x00Quellbrook\n", "holds a control character"),
        (".csv", b"name,aliases\nMara,q\x1bb\n", "holds a control character"),
        (".toml", b"artist = " + b"[" * 1200, "nests arrays or tables too deeply"),
        (".toml", b"[[artist]]\nname = " + b"1" * 4400, "holds an integer too long to read"),
        (".toml", b'[[artist]]\nname = "Mara\\u0000"\n', "holds a control character"),
    ],
)
def test_hostile_lists_are_refused_in_one_line(folder, suffix, data, says):
    with pytest.raises(InputError, match=says) as refused:
        _read(folder, data, suffix)
    assert "\n" not in str(refused.value)


def test_a_bare_carriage_return_ends_a_row(folder):
    entries = _read(folder, b"name,aliases\rMara Quellbrook,q\rIlse Varnhagen,\r", ".csv")
    assert [e.name for e in entries] == ["Mara Quellbrook", "Ilse Varnhagen"]
