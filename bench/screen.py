"""Benchmark: name screening of LoRA metadata against 100,000 registered artists.

Builds an :class:`~detectors.names.ArtistIndex` for generated artists (a name and three
aliases each), then screens about 2,000 uploads made from the header fixtures in
``shared/hubs/safetensors`` with varied metadata (some name an artist, most do not):

- *full*: ``parse_header`` + ``metadata_fields`` + ``ArtistIndex.match`` per upload;
- *match*: ``ArtistIndex.match`` alone over the same fields;
- *bare*: the same automaton's ``iter`` over the fields' text joined and lower-cased.

Each measurement is repeated and the best kept. The last line printed is one JSON object.
Run: ``.venv/bin/python bench/screen.py``.
"""

from __future__ import annotations

import copy
import gc
import json
import random
import struct
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from detectors.metadata import metadata_fields  # noqa: E402
from detectors.name_stoplist import COMMON_SURNAMES  # noqa: E402
from detectors.names import ArtistIndex  # noqa: E402
from detectors.results import ArtistRef, TextField  # noqa: E402
from detectors.safetensors_header import parse_header  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"
FIXTURES = SHARED / "hubs" / "safetensors"
SEED = 20260810
ARTISTS = 100_000
UPLOADS = 2_000
NAMED_SHARE = 0.05  # uploads whose metadata names a registered artist
BUILD_REPEATS = 3
SCREEN_REPEATS = 5

_ONSETS = (
    "b", "br", "c", "ch", "d", "dr", "f", "g", "gr", "h", "j", "k", "kl", "l", "m",
    "n", "p", "pr", "qu", "r", "s", "sh", "st", "t", "th", "tr", "v", "w", "z",
)  # fmt: skip
_NUCLEI = ("a", "e", "i", "o", "u", "ai", "ea", "ee", "oo", "ou", "y")
_CODAS = ("", "", "", "n", "r", "l", "s", "m", "ck", "nd", "rk", "ll", "th", "x")
_ACCENTS = str.maketrans("aeiouc", "áéíöüç")
_TAGS = (
    "1girl", "1boy", "solo", "no humans", "watercolor", "ink wash", "loose brushwork",
    "muted palette", "paper texture", "harbor", "fishing boat", "old woman", "cat", "lighthouse",
    "rain", "market stall", "umbrella", "portrait", "landscape", "night sky", "city street",
    "forest", "river", "mountain", "flowers", "sunset", "studio lighting", "rim light",
    "product photo", "dark background", "reflective surface", "close-up", "full body", "smile",
    "looking at viewer", "long hair", "short hair", "blue eyes", "red dress", "armor", "sword",
    "castle", "dragon", "cloud", "snow", "beach", "masterpiece", "best quality", "highres",
    "simple background", "white background", "outdoors", "indoors", "sitting", "standing",
)  # fmt: skip


def _word(rng: random.Random, low: int, high: int) -> str:
    syllables = (
        rng.choice(_ONSETS) + rng.choice(_NUCLEI) + rng.choice(_CODAS)
        for _ in range(rng.randint(low, high))
    )
    return "".join(syllables).capitalize()


def generate_artists(rng: random.Random, count: int) -> list[ArtistRef]:
    """Pronounceable names; a few with diacritics, a few with common surnames."""
    common = sorted(COMMON_SURNAMES)
    artists = []
    for artist_id in range(1, count + 1):
        given = _word(rng, 1, 3)
        surname = _word(rng, 2, 3) if rng.random() > 0.05 else rng.choice(common).capitalize()
        if rng.random() < 0.05:
            surname = surname.translate(_ACCENTS)
        aliases = (
            f"{given[0]}. {surname}",
            f"{given} {_word(rng, 1, 2)} {surname}",
            f"{surname}{rng.randint(1, 99)}",
        )
        artists.append(ArtistRef(artist_id, f"{given} {surname}", aliases))
    return artists


def load_fixtures() -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in sorted(FIXTURES.glob("*.json"))]


def materialise(header: dict[str, Any]) -> bytes:
    """Real file bytes for a header fixture (hubs/README.md section 5)."""
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
    return struct.pack("<Q", len(raw)) + raw + b"\0" * max(ends, default=0)


def _mention(rng: random.Random, artist: ArtistRef) -> str:
    given, _, surname = artist.name.rpartition(" ")
    forms = (
        f"by {artist.name.lower()}",
        f"{surname.lower()} style",
        f"in the style of {artist.name}",
        f"{given}{surname}",
        artist.name.replace("a", "4").replace("e", "3").lower(),
        f"{surname.lower()}_style_v{rng.randint(1, 4)}",
    )
    return rng.choice(forms)


def vary(rng: random.Random, header: dict[str, Any], artist: ArtistRef | None) -> dict[str, Any]:
    """A copy of a header fixture with new tags, names and (maybe) an artist mention."""
    varied = copy.deepcopy(header)
    meta = varied.setdefault("__metadata__", {})
    tags = {tag: rng.randint(1, 60) for tag in rng.sample(_TAGS, rng.randint(8, 30))}
    stem = "_".join(rng.sample(_TAGS, 2)).replace(" ", "_").replace("-", "_")
    mention = _mention(rng, artist) if artist else None
    if mention:
        tags[mention] = rng.randint(1, 60)
    folder = f"{rng.randint(1, 20)}_{mention or stem}"
    meta["ss_tag_frequency"] = json.dumps({folder: tags})
    meta["ss_output_name"] = f"{stem}_v{rng.randint(1, 9)}"
    if "ss_dataset_dirs" in meta:
        meta["ss_dataset_dirs"] = json.dumps({folder: {"n_repeats": 10, "img_count": 40}})
    if "modelspec.title" in meta:
        meta["modelspec.title"] = stem.replace("_", " ").title()
    if "ss_training_comment" in meta:
        meta["ss_training_comment"] = f"trained on {rng.randint(10, 200)} images of {stem}"
    if "name" in meta:
        meta["name"] = stem
    return varied


def make_uploads(rng: random.Random, artists: Sequence[ArtistRef]) -> list[bytes]:
    fixtures = load_fixtures()
    uploads = []
    for _ in range(UPLOADS):
        artist = rng.choice(artists) if rng.random() < NAMED_SHARE else None
        uploads.append(materialise(vary(rng, rng.choice(fixtures), artist)))
    return uploads


def best_of(repeats: int, run: Callable[[], object], index: ArtistIndex | None = None) -> float:
    """The fastest of ``repeats`` runs, in seconds; each starts with a cold field cache."""
    times = []
    for _ in range(repeats):
        if index is not None:
            index.clear_cache()
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def measure_build(artists: Sequence[ArtistRef]) -> tuple[float, ArtistIndex]:
    best, index = float("inf"), None
    for _ in range(BUILD_REPEATS):
        index = None
        gc.collect()
        start = time.perf_counter()
        index = ArtistIndex.build(artists)
        best = min(best, time.perf_counter() - start)
    assert index is not None
    return best, index


def screen_all(index: ArtistIndex, uploads: Sequence[bytes]) -> int:
    flagged = 0
    for data in uploads:
        header = parse_header(data)
        flagged += bool(index.match(metadata_fields(header.metadata)))
    return flagged


def main() -> None:
    rng = random.Random(SEED)
    artists = generate_artists(rng, ARTISTS)
    names = sum(1 + len(a.aliases) for a in artists)
    build_s, index = measure_build(artists)
    print(f"build: {ARTISTS:,} artists, {names:,} names -> {build_s:.2f} s")

    uploads = make_uploads(rng, artists)
    headers = [parse_header(data) for data in uploads]
    fields: list[list[TextField]] = [metadata_fields(h.metadata) for h in headers]
    texts = ["\n".join(f.text for f in upload) for upload in fields]
    text_mb = sum(len(t) for t in texts) / 1e6
    file_mb = sum(h.data_offset for h in headers) / 1e6
    automaton = index.automaton
    assert automaton is not None

    def bare() -> None:
        for text in texts:
            for _ in automaton.iter(text.lower()):
                pass

    def match_only(subset: Sequence[list[TextField]]) -> None:
        for upload in subset:
            index.match(upload)

    flagged = screen_all(index, uploads)
    named = [upload for upload in fields if index.match(upload)]
    clean = [upload for upload in fields if not index.match(upload)]
    full_s = best_of(SCREEN_REPEATS, lambda: screen_all(index, uploads), index)
    match_s = best_of(SCREEN_REPEATS, lambda: match_only(fields), index)
    named_s = best_of(SCREEN_REPEATS, lambda: match_only(named), index)
    clean_s = best_of(SCREEN_REPEATS, lambda: match_only(clean), index)
    bare_s = best_of(SCREEN_REPEATS, bare)
    parse_s = best_of(SCREEN_REPEATS, lambda: [parse_header(d) for d in uploads])
    fields_s = best_of(SCREEN_REPEATS, lambda: [metadata_fields(h.metadata) for h in headers])

    figures = {
        "artists": ARTISTS,
        "names": names,
        "build_s": round(build_s, 3),
        "uploads": UPLOADS,
        "flagged": flagged,
        "text_mb": round(text_mb, 3),
        "header_mb": round(file_mb, 3),
        "full_uploads_per_s": round(UPLOADS / full_s),
        "full_text_mb_per_s": round(text_mb / full_s, 3),
        "match_uploads_per_s": round(UPLOADS / match_s),
        "match_text_mb_per_s": round(text_mb / match_s, 3),
        "bare_uploads_per_s": round(UPLOADS / bare_s),
        "bare_text_mb_per_s": round(text_mb / bare_s, 3),
        "ratio_full_vs_bare": round(bare_s / full_s, 3),
        "ratio_match_vs_bare": round(bare_s / match_s, 3),
        "named_uploads": len(named),
        "match_us_per_named_upload": round(named_s / max(1, len(named)) * 1e6, 1),
        "match_us_per_clean_upload": round(clean_s / max(1, len(clean)) * 1e6, 1),
        "ratio_match_vs_bare_clean_uploads": round(
            (bare_s / UPLOADS) / (clean_s / max(1, len(clean))), 3
        ),
        "parse_us_per_upload": round(parse_s / UPLOADS * 1e6, 1),
        "fields_us_per_upload": round(fields_s / UPLOADS * 1e6, 1),
        "match_us_per_upload": round(match_s / UPLOADS * 1e6, 1),
        "bare_us_per_upload": round(bare_s / UPLOADS * 1e6, 1),
    }
    print(f"uploads: {UPLOADS:,} ({flagged:,} flagged), {text_mb:.2f} MB of text")
    for what in ("full", "match", "bare"):
        rate, mbs = figures[f"{what}_uploads_per_s"], figures[f"{what}_text_mb_per_s"]
        print(f"{what:>5}: {rate:>9,} uploads/s  {mbs:8.3f} MB/s of text")
    print(f"ratio full/bare: {figures['ratio_full_vs_bare']}")
    print(f"ratio match/bare: {figures['ratio_match_vs_bare']} (all uploads), ", end="")
    print(f"{figures['ratio_match_vs_bare_clean_uploads']} (uploads naming nobody)")
    print(
        f"per upload: parse {figures['parse_us_per_upload']} us, fields "
        f"{figures['fields_us_per_upload']} us, match {figures['match_us_per_upload']} us, "
        f"bare {figures['bare_us_per_upload']} us"
    )
    print(
        f"match per upload naming an artist: {figures['match_us_per_named_upload']} us, "
        f"naming nobody: {figures['match_us_per_clean_upload']} us"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
