"""Benchmark: name screening of LoRA metadata against 100,000 registered artists.

Builds an :class:`~detectors.names.ArtistIndex` for generated artists (a name and three
aliases each), then screens 2,000 uploads made from the header fixtures in
``shared/hubs/safetensors`` with varied metadata, :data:`NAMED_SHARE` of them naming an
artist (as on a hub: most uploads name nobody), plus 2,000 uploads that all name one (the
worst case). Two figures, each against its own baseline measured in the same run:

- *screening* (the headline, what the issue's >= 0.5 target is about): ``ArtistIndex.match``
  over the upload's text fields (folding, the automaton pass, verifying hits, scoring) vs
  *bare*: the same automaton's ``iter`` over the same fields' text joined and lower-cased;
- *end to end*: ``parse_header`` + ``metadata_fields`` + ``match`` per upload vs a floor of
  ``json.loads`` of the same header bytes + the bare automaton. Parsing untrusted JSON within
  caps costs more than the automaton itself, so this figure is far below the first.

Each measurement is repeated and the best kept; the field cache starts cold in every repeat
(what a text names is remembered across uploads, as the service does: tags recur). *fresh*
is the mix again with the cache emptied before every upload, so nothing recurs across
uploads: the cost of an upload made only of texts never seen before.
The last line printed is one JSON object. Run: ``.venv/bin/python bench/screen.py``.

``--corpus`` instead screens the committed screening corpus (``tests/data/screening``,
``bench/screen_corpus.py``) and prints precision and recall per rule and overall.
"""

from __future__ import annotations

import copy
import gc
import json
import random
import struct
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from detectors.metadata import metadata_fields  # noqa: E402
from detectors.name_frequency import common_surnames  # noqa: E402
from detectors.names import ArtistIndex  # noqa: E402
from detectors.results import ArtistRef, TextField  # noqa: E402
from detectors.safetensors_header import parse_header  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "data" / "hubs" / "safetensors"
SEED = 20260810
ARTISTS = 100_000
UPLOADS = 2_000
NAMED_SHARE = 0.05  # uploads whose metadata names a registered artist
WORST_SHARE = 1.0  # the worst case: every upload names one
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
    common = sorted(common_surnames())
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


def make_uploads(
    rng: random.Random, artists: Sequence[ArtistRef], named_share: float = NAMED_SHARE
) -> list[bytes]:
    fixtures = load_fixtures()
    uploads = []
    for _ in range(UPLOADS):
        artist = rng.choice(artists) if rng.random() < named_share else None
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


def measure_memory(artists: Sequence[ArtistRef]) -> dict[str, float]:
    """What the index holds: Python heap retained by one more build (traced, so not timed;
    the automaton's nodes are on that heap too), the build's peak, and the automaton alone."""
    gc.collect()
    tracemalloc.start()
    index = ArtistIndex.build(artists)
    retained, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    stats = index.automaton.get_stats() if index.automaton is not None else {}
    return {
        "index_mb": round(retained / 1e6, 1),
        "build_peak_mb": round(peak / 1e6, 1),
        "automaton_mb": round(stats.get("total_size", 0) / 1e6, 1),
        "automaton_keys": stats.get("words_count", 0),
        "automaton_nodes": stats.get("nodes_count", 0),
    }


@dataclass(frozen=True, slots=True)
class Corpus:
    """Uploads as file bytes, their header JSON, parsed metadata, text fields and text."""

    uploads: list[bytes]
    header_json: list[bytes]
    fields: list[list[TextField]]
    texts: list[str]

    @classmethod
    def of(cls, uploads: list[bytes]) -> Corpus:
        headers = [parse_header(data) for data in uploads]
        fields = [metadata_fields(header.metadata) for header in headers]
        header_json = [data[8 : h.data_offset] for data, h in zip(uploads, headers, strict=True)]
        texts = ["\n".join(field.text for field in upload) for upload in fields]
        return cls(uploads, header_json, fields, texts)

    @property
    def text_mb(self) -> float:
        return sum(len(text) for text in self.texts) / 1e6

    @property
    def header_mb(self) -> float:
        return sum(len(raw) for raw in self.header_json) / 1e6


def screen_all(index: ArtistIndex, uploads: Sequence[bytes]) -> int:
    """End to end: parse each header, extract its text fields, match; uploads flagged."""
    flagged = 0
    for data in uploads:
        header = parse_header(data)
        flagged += bool(index.match(metadata_fields(header.metadata)))
    return flagged


def match_all(index: ArtistIndex, fields: Sequence[list[TextField]]) -> None:
    for upload in fields:
        index.match(upload)


def match_fresh(index: ArtistIndex, fields: Sequence[list[TextField]]) -> None:
    """``match_all`` with nothing remembered from the uploads before."""
    for upload in fields:
        index.clear_cache()
        index.match(upload)


def bare_all(automaton: Any, texts: Sequence[str]) -> None:
    """The floor for screening: the automaton alone over the same text, lower-cased."""
    for text in texts:
        for _ in automaton.iter(text.lower()):
            pass


def floor_all(automaton: Any, corpus: Corpus) -> None:
    """The floor end to end: plain ``json.loads`` of each header, then the bare automaton."""
    for raw, text in zip(corpus.header_json, corpus.texts, strict=True):
        json.loads(raw)
        for _ in automaton.iter(text.lower()):
            pass


def each(step: Callable[[Any], object], items: Sequence[Any]) -> None:
    """Run ``step`` on each item, keeping no result (as screening does: no GC pile-up)."""
    for item in items:
        step(item)


def screening_figures(index: ArtistIndex, corpus: Corpus, label: str) -> dict[str, float]:
    """Screening (match) vs bare automaton over ``corpus``, per upload and in all."""
    automaton = index.automaton
    count = len(corpus.fields)
    match_s = best_of(SCREEN_REPEATS, lambda: match_all(index, corpus.fields), index)
    bare_s = best_of(SCREEN_REPEATS, lambda: bare_all(automaton, corpus.texts))
    return {
        f"{label}_match_us_per_upload": round(match_s / count * 1e6, 1),
        f"{label}_bare_us_per_upload": round(bare_s / count * 1e6, 1),
        f"{label}_match_uploads_per_s": round(count / match_s),
        f"{label}_match_text_mb_per_s": round(corpus.text_mb / match_s, 2),
        f"{label}_bare_text_mb_per_s": round(corpus.text_mb / bare_s, 2),
        f"{label}_ratio_match_vs_bare": round(bare_s / match_s, 3),
    }


def fresh_figures(index: ArtistIndex, corpus: Corpus) -> dict[str, float]:
    """The mix screened with the cache emptied before each upload, vs the bare automaton."""
    count = len(corpus.fields)
    fresh_s = best_of(SCREEN_REPEATS, lambda: match_fresh(index, corpus.fields))
    bare_s = best_of(SCREEN_REPEATS, lambda: bare_all(index.automaton, corpus.texts))
    return {
        "fresh_match_us_per_upload": round(fresh_s / count * 1e6, 1),
        "fresh_bare_us_per_upload": round(bare_s / count * 1e6, 1),
        "fresh_ratio_match_vs_bare": round(bare_s / fresh_s, 3),
    }


def end_to_end_figures(index: ArtistIndex, corpus: Corpus) -> dict[str, float]:
    """Parse + fields + match per upload vs json.loads + bare automaton, with the parts."""
    count = len(corpus.uploads)
    headers = [parse_header(data) for data in corpus.uploads]
    full_s = best_of(SCREEN_REPEATS, lambda: screen_all(index, corpus.uploads), index)
    floor_s = best_of(SCREEN_REPEATS, lambda: floor_all(index.automaton, corpus))
    parse_s = best_of(SCREEN_REPEATS, lambda: each(parse_header, corpus.uploads))
    fields_s = best_of(SCREEN_REPEATS, lambda: each(metadata_fields, [h.metadata for h in headers]))
    loads_s = best_of(SCREEN_REPEATS, lambda: each(json.loads, corpus.header_json))
    return {
        "e2e_us_per_upload": round(full_s / count * 1e6, 1),
        "e2e_floor_us_per_upload": round(floor_s / count * 1e6, 1),
        "e2e_uploads_per_s": round(count / full_s),
        "e2e_header_mb_per_s": round(corpus.header_mb / full_s, 2),
        "e2e_ratio_vs_floor": round(floor_s / full_s, 3),
        "parse_us_per_upload": round(parse_s / count * 1e6, 1),
        "json_loads_us_per_upload": round(loads_s / count * 1e6, 1),
        "fields_us_per_upload": round(fields_s / count * 1e6, 1),
    }


def report(figures: dict[str, Any]) -> None:
    f = figures
    print(
        f"uploads: {f['uploads']:,} made with {f['named_share']:.0%} naming an artist;"
        f" {f['named_uploads']} ({f['named_pct']}%) flagged; worst case: {f['worst_flagged']:,}"
        f" of {f['uploads']:,} flagged"
    )
    print(f"text: {f['text_mb']:.2f} MB, header JSON: {f['header_mb']:.2f} MB")
    print(
        f"screening (match vs bare automaton, same text): ratio {f['mix_ratio_match_vs_bare']}"
        f" [target >= 0.5]; {f['mix_match_us_per_upload']} vs {f['mix_bare_us_per_upload']}"
        f" us/upload, {f['mix_match_uploads_per_s']:,} uploads/s,"
        f" {f['mix_match_text_mb_per_s']} vs {f['mix_bare_text_mb_per_s']} MB/s of text"
    )
    print(
        f"  fresh (cache emptied before each upload): ratio {f['fresh_ratio_match_vs_bare']};"
        f" {f['fresh_match_us_per_upload']} vs {f['fresh_bare_us_per_upload']} us/upload"
    )
    for label, what in (("clean", "naming nobody"), ("worst", "all naming an artist")):
        print(
            f"  uploads {what}: ratio {f[f'{label}_ratio_match_vs_bare']};"
            f" {f[f'{label}_match_us_per_upload']} vs {f[f'{label}_bare_us_per_upload']} us/upload"
        )
    print(
        f"end to end (parse + fields + match vs json.loads + bare): ratio"
        f" {f['e2e_ratio_vs_floor']}; {f['e2e_us_per_upload']} vs"
        f" {f['e2e_floor_us_per_upload']} us/upload, {f['e2e_uploads_per_s']:,} uploads/s,"
        f" {f['e2e_header_mb_per_s']} MB/s of header"
    )
    print(
        f"  parts: parse {f['parse_us_per_upload']} us (json.loads alone"
        f" {f['json_loads_us_per_upload']} us), fields {f['fields_us_per_upload']} us"
    )
    print(json.dumps(figures))


def corpus_main() -> None:
    """Precision and recall per rule on the committed corpus; one JSON line at the end."""
    from bench.screen_corpus import case_counts, evaluate, load

    corpus = load()
    started = time.perf_counter()
    tallies = evaluate(corpus)
    elapsed = time.perf_counter() - started
    counts = case_counts(corpus)
    print(f"corpus: {len(corpus['cases'])} cases, {len(corpus['artists'])} artists; {dict(counts)}")
    print(
        f"{'rule':<18}{'cases':>6}{'precision':>11}{'recall':>8}  (flags right/wrong, found/missed)"
    )
    figures: dict[str, Any] = {"cases": len(corpus["cases"]), "seconds": round(elapsed, 3)}
    for rule, tally in tallies.items():
        print(
            f"{rule:<18}{counts.get(rule, len(corpus['cases']) if rule == 'overall' else 0):>6}"
            f"{tally.precision:>11.3f}{tally.recall:>8.3f}"
            f"  ({tally.right}/{tally.wrong}, {tally.found}/{tally.missed})"
        )
        for failure in tally.failures[:10]:
            print(f"    {failure}")
        figures[rule] = {"precision": round(tally.precision, 4), "recall": round(tally.recall, 4)}
    print(json.dumps(figures))


def main() -> None:
    if "--corpus" in sys.argv[1:]:
        corpus_main()
        return
    rng = random.Random(SEED)
    artists = generate_artists(rng, ARTISTS)
    names = sum(1 + len(a.aliases) for a in artists)
    build_s, index = measure_build(artists)
    print(f"build: {ARTISTS:,} artists, {names:,} names -> {build_s:.2f} s [target <= 2 s]")
    memory = measure_memory(artists)
    print(
        f"index memory: {memory['index_mb']} MB retained (automaton {memory['automaton_mb']} MB,"
        f" {memory['automaton_keys']:,} keys, {memory['automaton_nodes']:,} nodes);"
        f" build peak {memory['build_peak_mb']} MB"
    )

    mix = Corpus.of(make_uploads(rng, artists))
    worst = Corpus.of(make_uploads(rng, artists, WORST_SHARE))
    flagged = screen_all(index, mix.uploads)
    clean = Corpus.of(
        [u for u, f in zip(mix.uploads, mix.fields, strict=True) if not index.match(f)]
    )
    named = len(mix.uploads) - len(clean.uploads)
    figures: dict[str, Any] = {
        "artists": ARTISTS,
        "names": names,
        "build_s": round(build_s, 3),
        **memory,
        "uploads": UPLOADS,
        "named_share": NAMED_SHARE,
        "named_uploads": named,
        "named_pct": round(100 * named / UPLOADS, 1),
        "flagged": flagged,
        "text_mb": round(mix.text_mb, 3),
        "header_mb": round(mix.header_mb, 3),
        **screening_figures(index, mix, "mix"),
        **fresh_figures(index, mix),
        **screening_figures(index, clean, "clean"),
        **screening_figures(index, worst, "worst"),
        "worst_flagged": sum(bool(index.match(f)) for f in worst.fields),
        **end_to_end_figures(index, mix),
    }
    report(figures)


if __name__ == "__main__":
    main()
