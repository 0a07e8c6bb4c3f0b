"""Benchmark: back-scan of 100,000 recorded uploads for one newly registered artist.

Inserts 100,000 synthetic uploads in bulk into a fresh SQLite database (each with one LoRA
file whose kohya metadata is the ``kohya_sd15_style_lora`` fixture's with its own random
training tags, and hub text: a name and a description), :data:`NAMED_SHARE` of them naming
the artist in their tags or description. The rows are inserted as rows recorded before
revision 0005 look (no ``screen_fields``), so a first read fills them: timed on its own
(``first_fill_s``, once per database). Then it registers the artist and times
:func:`monitor.backscan.names.backscan` end to end (streaming the rows, re-screening, recording
the findings). The baseline, measured in the same run over the same rows: the same
streaming read, then a plain Python loop of ``name.lower() in text.lower()`` over each
upload's screened text (as the back-scan's cheap pass reads it), for the name and each
alias. Wall and CPU seconds are both given
(``_cpu_s``: this process's CPU time, steadier on a shared machine). The last line printed
is one JSON object. Run: ``.venv/bin/python bench/backscan.py [UPLOADS [RUNS]]``.

The back-scan by style (`monitor.backscan.style`), timed after it: :data:`RUNS` of the
uploads are marked probed with a kept probe run each (8 images' style vectors of the
built-in embedder's size, random, paired with base vectors; :data:`STYLE_SHARE` of them near
the artist's references), the artist gets 4 reference images, and the runs are scored
against them (``style_backscan_s``: reading every run from
the probe cache, the lifts, the findings over the threshold with their evidence sheets).
"""

from __future__ import annotations

import io
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from sqlalchemy import insert, update  # noqa: E402
from sqlmodel import col  # noqa: E402

from detectors.results import ArtistRef  # noqa: E402
from monitor.backscan.names import backscan  # noqa: E402
from monitor.backscan.style import cli_scoring, style_backscan  # noqa: E402
from monitor.runtime import Runtime  # noqa: E402
from monitor.settings import load_settings  # noqa: E402
from storage.backscan_reads import BackscanReads  # noqa: E402
from storage.engine import create_db_engine, write_engine  # noqa: E402
from storage.file_blobs import FileBlobStore  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Upload, metadata  # noqa: E402
from storage.probe_cache import ProbeRun, run_key  # noqa: E402
from storage.store import Store  # noqa: E402

FIXTURE = Path(__file__).resolve().parents[2] / "shared/hubs/safetensors/kohya_sd15_style_lora.json"
T = TypeVar("T")

SEED = 20261201
UPLOADS = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
RUN_IMAGES = 8
STYLE_SHARE = 0.002  # a handful of imitations among the probed LoRAs
NAMED_SHARE = 0.005
INSERT_BATCH = 5_000
ARTIST = "Ilse Varnhagen"
ALIASES = ("ilsev",)
_TAGS = (
    "1girl", "solo", "landscape", "watercolor", "ink", "portrait", "sky", "forest", "city",
    "night", "flowers", "smile", "long hair", "outdoors", "best quality", "masterpiece",
    "sketch", "monochrome", "dramatic lighting", "castle", "ocean", "cat", "armor", "snow",
)  # fmt: skip


def _metadata(base: dict[str, str], rng: random.Random, named: bool) -> dict[str, str]:
    tags = {tag: rng.randint(1, 40) for tag in rng.sample(_TAGS, 12)}
    if named:
        tags["by ilse varnhagen"] = rng.randint(1, 40)
    metadata = dict(base)
    metadata["ss_tag_frequency"] = json.dumps({f"10_{rng.choice(_TAGS)}": tags})
    metadata["ss_output_name"] = f"{rng.choice(_TAGS).replace(' ', '_')}_v{rng.randint(1, 9)}"
    metadata["ss_session_id"] = str(rng.getrandbits(32))
    return metadata


def _populate(engine: Any, rng: random.Random) -> int:
    store = Store(engine)
    source_id = store.ensure_source("civitai")
    base = json.loads(FIXTURE.read_text(encoding="utf-8"))["__metadata__"]
    base.pop("ss_training_comment", None)
    base.pop("modelspec.title", None)
    base.pop("ss_dataset_dirs", None)
    now = datetime.now(UTC)
    named = 0
    with write_engine(engine).begin() as connection:
        for start in range(1, UPLOADS + 1, INSERT_BATCH):
            uploads, files = [], []
            for pk in range(start, min(start + INSERT_BATCH, UPLOADS + 1)):
                in_tags = rng.random() < NAMED_SHARE
                in_text = rng.random() < NAMED_SHARE / 4
                named += in_tags or in_text
                description = f"A {rng.choice(_TAGS)} LoRA" + (
                    ", in the style of Ilse Varnhagen" if in_text else ""
                )
                uploads.append(
                    dict(
                        id=pk, source_id=source_id, upload_id=str(pk), name=f"model {pk}",
                        kind="lora", base_family="sd1", state="screened",
                        hub_text=[{"source": "name", "text": f"model {pk}"},
                                  {"source": "description", "text": description}],
                        created_at=now, updated_at=now,
                    )
                )  # fmt: skip
                files.append(
                    dict(
                        upload_pk=pk, filename=f"m{pk}.safetensors", sha256=f"{pk:064x}",
                        format="safetensors", kind="lora", base_family="sd1", layout="kohya",
                        metadata=_metadata(base, rng, in_tags), hashes={},
                    )
                )  # fmt: skip
            connection.execute(insert(Upload), uploads)
            connection.execute(insert(metadata.tables["model_file"]), files)  # columns by name
    return named


def _baseline(recorded: BackscanReads, needles: list[str]) -> int:
    found = 0
    for batch in recorded.batches():
        for upload in batch:
            text = upload.text.lower()
            found += any(n in text for n in needles)
    return found


def _timed(figures: dict[str, Any], name: str, work: Callable[[], T]) -> T:
    wall, cpu = time.perf_counter(), time.process_time()
    value = work()
    figures[f"{name}_s"] = round(time.perf_counter() - wall, 3)
    figures[f"{name}_cpu_s"] = round(time.process_time() - cpu, 3)
    return value


def _style(tmp: Path, engine: Any, store: Store, ref: ArtistRef, figures: dict[str, Any]) -> None:
    """Keep RUNS probe runs, give the artist references, time the style back-scan."""
    settings = load_settings(None, data_dir=tmp / "data", probe={"base_models": {"sd1": tmp}})
    runtime = Runtime(settings, engine, store, FileBlobStore(tmp / "blobs"))
    scoring = cli_scoring(runtime)
    rng = np.random.default_rng(SEED)
    image = scoring.cache.put_image(Image.new("RGB", (64, 64), (120, 120, 120)))
    references = [
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)) for _ in range(4)
    ]
    shas = []
    for picture in references:
        out = io.BytesIO()
        picture.save(out, format="PNG")
        shas.append(runtime.blobs.put(out.getvalue()))
        store.add_reference_image(
            ref.artist_id, shas[-1], mime="image/png", width=64, height=64, size=0
        )
    dim = scoring.embedder.dim
    style = scoring.cache.vectors(scoring.embedder, shas).mean(0)
    with write_engine(engine).begin() as connection:
        connection.execute(update(Upload).where(col(Upload.id) <= RUNS).values(state="probed"))
    for pk in range(1, RUNS + 1):
        vectors = rng.standard_normal((2, RUN_IMAGES, dim)).astype(np.float32)
        if rng.random() < STYLE_SHARE:  # draws in the artist's style
            vectors[0] = 0.2 * vectors[0] / np.sqrt(dim) + style
        vectors /= np.linalg.norm(vectors, axis=2, keepdims=True)
        images = (image,) * RUN_IMAGES
        prompts = ("a portrait",) * RUN_IMAGES
        run = ProbeRun("sd1", prompts, tuple(range(RUN_IMAGES)), images, images, *vectors)
        scoring.cache.put_run(scoring.embedder.name, run_key("civitai", str(pk)), run)
    result = _timed(figures, "style_backscan", lambda: style_backscan(runtime, scoring, [ref]))
    figures["style_runs"] = RUNS
    figures["style_rescored"] = result.rescored
    figures["style_flagged"] = sum((result.flagged or {}).values())


def main() -> None:
    rng = random.Random(SEED)
    figures: dict[str, Any] = {"bench": "backscan", "uploads": UPLOADS}
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_db_engine(f"sqlite:///{tmp}/bench.db")
        upgrade(engine)
        figures["named"] = _timed(figures, "insert", lambda: _populate(engine, rng))
        store = Store(engine)
        artist = store.add_artist(ARTIST, aliases=ALIASES)
        ref = ArtistRef(artist.id, artist.name, artist.aliases)
        recorded = BackscanReads(engine)
        _timed(figures, "first_fill", lambda: sum(len(b) for b in recorded.batches()))
        _timed(figures, "read", lambda: sum(len(b) for b in recorded.batches()))
        needles = [n.lower() for n in (ARTIST, *ALIASES)]
        figures["baseline_found"] = _timed(
            figures, "baseline_lower_in", lambda: _baseline(recorded, needles)
        )
        result = _timed(figures, "backscan", lambda: backscan(store, recorded, [ref]))
        figures["found"] = result.named.get(ARTIST, 0)
        figures["findings"] = len(store.list_findings())
        _style(Path(tmp), engine, store, ref, figures)
        engine.dispose()
    figures["ratio_vs_baseline"] = round(figures["baseline_lower_in_s"] / figures["backscan_s"], 3)
    print(
        f"back-scan of {UPLOADS:,} uploads for one artist: {figures['backscan_s']:.2f} s"
        f" ({figures['backscan_cpu_s']:.2f} s CPU); baseline str.lower() in:"
        f" {figures['baseline_lower_in_s']:.2f} s; read alone {figures['read_s']:.2f} s;"
        f" once-only fill of pre-0005 rows {figures['first_fill_s']:.1f} s;"
        f" found {figures['found']} of {figures['named']} named"
    )
    print(
        f"back-scan by style of {figures['style_runs']:,} kept probe runs:"
        f" {figures['style_backscan_s']:.2f} s ({figures['style_backscan_cpu_s']:.2f} s CPU),"
        f" {figures['style_rescored']:,} re-scored, {figures['style_flagged']} flagged"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
