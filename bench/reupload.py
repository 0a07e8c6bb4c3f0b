"""Benchmark: re-upload linking by weight fingerprint, and the fingerprint index at scale.

1. Quality. :data:`ORIGINALS` LoRAs "trained" on one shared base (bench/reupload_loras.py),
   each written as a kohya fp32 file and re-uploaded as every variant in ``VARIANTS`` (dtype,
   key convention, metadata, alpha/scale and factor rewrites, renamed files); as negatives,
   :data:`OTHERS` LoRAs of other tasks on the same base (own initialisations) and
   :data:`SAME_INIT` from one shared initialisation. Every file is read the way the poller
   reads a hub file (`monitor.pipeline.poll.fetch_header`, then
   `monitor.pipeline.record.remote_fingerprint`
   through the folder source's range reads), which gives the bytes read per fingerprint.
   Originals and negatives are recorded with their fingerprints; each variant and each
   negative is then looked up (`SourceState.similar_upload`, the production path):
   a variant linked to its original is a true positive, any other link a false positive.
   :data:`RETRAINED` LoRAs (an original's task, another initialisation) are reported apart:
   whether they link is a policy question, not an error either way.
2. Scale. :data:`INDEX_SIZE` synthetic fingerprints (random unit sketches, the real LoRAs'
   modules) are added to the same database, the index is loaded, and every lookup above is
   timed again with them present. Baselines, in the same run: the scan the index replaced
   (every stored fingerprint of the modules read from the database, then compared with
   numpy) for :data:`DB_SCAN_QUERIES` lookups, and a numpy scan of all fingerprints already
   in memory for :data:`MEMORY_SCAN_QUERIES`; the index's answers are checked against the
   in-memory scan's, also for :data:`PLANTED` near copies (|cos| 0.95) of synthetic rows.

Run: ``python bench/reupload.py [INDEX_SIZE]``; the last line printed is one JSON object.
"""

from __future__ import annotations

import asyncio
import json
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
import numpy.typing as npt  # noqa: E402
from sqlalchemy import Engine, insert  # noqa: E402
from sqlmodel import Session, select  # noqa: E402

from bench import reupload_loras as loras  # noqa: E402
from detectors.fingerprint import SIMILAR_AT, SKETCH_DIM, Fingerprint, similarities  # noqa: E402
from monitor.pipeline.poll import _Meter, fetch_header  # noqa: E402
from monitor.pipeline.record import remote_fingerprint  # noqa: E402
from monitor.settings import FolderSettings  # noqa: E402
from monitor.sources.base import RemoteFile  # noqa: E402
from monitor.sources.folder import FolderSource  # noqa: E402
from storage.engine import create_db_engine, write_engine  # noqa: E402
from storage.fingerprint_index import fingerprint_index  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Fingerprint as FingerprintRow  # noqa: E402
from storage.source_state import SourceState  # noqa: E402
from storage.store import Store  # noqa: E402

T = TypeVar("T")
INDEX_SIZE = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
ORIGINALS, OTHERS, SAME_INIT, RETRAINED = 100, 100, 50, 30
DB_SCAN_QUERIES, MEMORY_SCAN_QUERIES, PLANTED = 2, 20, 100
ROWS_PER_SYNTHETIC_UPLOAD = 1_000
INSERT_BATCH = 20_000
SEED = 20261204
Case = tuple[str, str, Fingerprint, int, int | None]  # kind, label, print, besides, expected


async def _read(source: FolderSource, path: Path, size: int) -> tuple[Fingerprint, int, int]:
    """The file's fingerprint as the poller gets it, and the bytes read for the header and
    for the fingerprint's extra ranges."""
    file = RemoteFile(path.name, path.as_uri(), size=size)
    meter = _Meter()
    header = await fetch_header(source, file, meter)
    got = await remote_fingerprint(source, file, header)
    print_, extra = got.fingerprint, got.bytes_read
    assert print_ is not None, path
    return print_, meter.bytes_read, extra


def _generate(folder: Path) -> dict[str, list[tuple[str, Path]]]:
    """Write every LoRA file; returns (label, path) by kind."""
    base = loras.shared_base(SEED)
    files: dict[str, list[tuple[str, Path]]] = {k: [] for k in ("original", "variant", "other")}
    files |= {"same_init": [], "retrained": []}
    for i in range(ORIGINALS):
        weights = loras.trained_lora(base, task=i, init=10_000 + i)
        files["original"].append(
            (str(i), loras.save_original(weights, folder / f"o{i}.safetensors"))
        )
        for name, variant in loras.VARIANTS.items():
            path = variant(weights, folder / f"{name}-{i}.safetensors")
            files["variant"].append((f"{name}:{i}", path))
        if i < RETRAINED:
            again = loras.trained_lora(base, task=i, init=20_000 + i)
            files["retrained"].append(
                (str(i), loras.save_original(again, folder / f"r{i}.safetensors"))
            )
    for i in range(OTHERS):
        weights = loras.trained_lora(base, task=1_000 + i, init=30_000 + i)
        files["other"].append((str(i), loras.save_original(weights, folder / f"n{i}.safetensors")))
    for i in range(SAME_INIT):
        weights = loras.trained_lora(base, task=2_000 + i, init=99)
        files["same_init"].append(
            (str(i), loras.save_original(weights, folder / f"s{i}.safetensors"))
        )
    return files


def _fingerprints(
    folder: Path, files: dict[str, list[tuple[str, Path]]], figures: dict[str, Any]
) -> dict[str, list[tuple[str, Fingerprint]]]:
    source = FolderSource(FolderSettings(enabled=True, path=folder), min_age_s=0)
    header_bytes, extra_bytes, sizes = [], [], []

    size = {path: path.stat().st_size for items in files.values() for _, path in items}

    async def read_all() -> dict[str, list[tuple[str, Fingerprint]]]:
        out: dict[str, list[tuple[str, Fingerprint]]] = {}
        for kind, items in files.items():
            for label, path in items:
                print_, header, extra = await _read(source, path, size[path])
                out.setdefault(kind, []).append((label, print_))
                header_bytes.append(header)
                extra_bytes.append(extra)
                sizes.append(size[path])
        return out

    prints = asyncio.run(read_all())
    figures["files"] = len(sizes)
    figures["file_bytes_mean"] = int(np.mean(sizes))
    figures["header_bytes_mean"] = int(np.mean(header_bytes))
    figures["fingerprint_bytes_mean"] = int(np.mean(extra_bytes))
    figures["fingerprint_bytes_max"] = int(np.max(extra_bytes))
    figures["bytes_read_share"] = round(
        float(np.mean(np.add(header_bytes, extra_bytes)) / np.mean(sizes)), 4
    )
    return prints


def _record(
    store: Store, state: SourceState, prints: dict[str, list[tuple[str, Fingerprint]]]
) -> tuple[dict[str, int], list[Case]]:
    """Record originals, negatives and retrained LoRAs; the lookups to make."""
    pks: dict[str, int] = {}
    for kind in ("original", "other", "same_init", "retrained"):
        for label, print_ in prints[kind]:
            record, _ = store.record_upload(
                "bench", f"{kind}:{label}", f"{kind} {label}", kind="lora"
            )
            state.save_fingerprints(record.id, [("lora.safetensors", print_)])
            pks[f"{kind}:{label}"] = record.id
    cases: list[Case] = []
    for label, print_ in prints["variant"]:
        cases.append(("variant", label, print_, 0, pks[f"original:{label.split(':')[1]}"]))
    for kind in ("other", "same_init"):
        cases += [(kind, label, p, pks[f"{kind}:{label}"], None) for label, p in prints[kind]]
    for label, print_ in prints["retrained"]:
        cases.append(
            ("retrained", label, print_, pks[f"retrained:{label}"], pks[f"original:{label}"])
        )
    return pks, cases


def _quality(
    state: SourceState, cases: list[Case], figures: dict[str, Any], prefix: str
) -> list[int | None]:
    answers, times = [], []
    for _, _, print_, besides, _ in cases:
        start = time.perf_counter()
        answers.append(state.similar_upload([print_], besides=besides))
        times.append(time.perf_counter() - start)
    scored = [(c, a) for c, a in zip(cases, answers, strict=True) if c[0] != "retrained"]
    tp = sum(1 for c, a in scored if c[0] == "variant" and a == c[4])
    fp = sum(1 for c, a in scored if a is not None and a != c[4])
    positives = sum(1 for c, _ in scored if c[0] == "variant")
    figures[f"{prefix}precision"] = round(tp / max(tp + fp, 1), 4)
    figures[f"{prefix}recall"] = round(tp / positives, 4)
    figures[f"{prefix}false_links"] = fp
    retrained = [a == c[4] for c, a in zip(cases, answers, strict=True) if c[0] == "retrained"]
    figures[f"{prefix}retrained_linked_share"] = round(float(np.mean(retrained)), 3)
    figures[f"{prefix}lookup_ms_p50"] = round(1000 * float(np.median(times)), 3)
    figures[f"{prefix}lookup_ms_p99"] = round(1000 * float(np.percentile(times, 99)), 3)
    return answers


def _similarity_spread(
    prints: dict[str, list[tuple[str, Fingerprint]]], figures: dict[str, Any]
) -> None:
    """How alike the negatives are to the originals, and the variants to theirs."""
    originals = np.stack([p.array() for _, p in prints["original"]])
    worst_negative = 0.0
    for kind in ("other", "same_init"):
        for _, p in prints[kind]:
            worst_negative = max(worst_negative, float(similarities(originals, p.array()).max()))
    by_label = dict(prints["original"])
    lowest_variant = min(
        float(similarities(by_label[label.split(":")[1]].array()[None], p.array())[0])
        for label, p in prints["variant"]
    )
    figures["negative_similarity_max"] = round(worst_negative, 4)
    figures["variant_similarity_min"] = round(lowest_variant, 4)
    figures["similar_at"] = SIMILAR_AT


def _synthetic(
    engine: Engine, store: Store, key: str, modules: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """INDEX_SIZE random fingerprints of ``modules`` modules, inserted in bulk; returns them
    (for the in-memory scan) and their upload keys."""
    rng = np.random.default_rng(SEED)
    dim = SKETCH_DIM * SKETCH_DIM
    vectors = rng.standard_normal((INDEX_SIZE, modules, dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=2, keepdims=True)
    uploads = -(-INDEX_SIZE // ROWS_PER_SYNTHETIC_UPLOAD)
    upload_pks = np.array(
        [
            store.record_upload("synthetic", str(u), f"s{u}", kind="lora")[0].id
            for u in range(uploads)
        ]
    )
    owners = upload_pks[np.arange(INDEX_SIZE) // ROWS_PER_SYNTHETIC_UPLOAD]
    now = datetime.now(UTC)
    with write_engine(engine).begin() as connection:
        for start in range(0, INDEX_SIZE, INSERT_BATCH):
            stop = min(start + INSERT_BATCH, INDEX_SIZE)
            connection.execute(
                insert(FingerprintRow),
                [
                    dict(upload_pk=int(owners[i]), filename=f"f{i}", modules_key=key,
                         vector=vectors[i].tobytes(), created_at=now)
                    for i in range(start, stop)
                ],
            )  # fmt: skip
    return vectors, owners


def _db_scan(engine: Engine, fp: Fingerprint, besides: int) -> int | None:
    """The lookup the index replaced: read every stored fingerprint of the modules, compare."""
    with Session(engine) as session:
        rows = session.exec(
            select(FingerprintRow.upload_pk, FingerprintRow.vector)
            .where(FingerprintRow.modules_key == fp.modules_key)
            .where(FingerprintRow.upload_pk != besides)
        ).all()
    query = fp.array()
    stored = np.frombuffer(b"".join(v for _, v in rows), dtype="<f4")
    scores = similarities(stored.reshape(len(rows), *query.shape), query)
    close = [pk for (pk, _), s in zip(rows, scores, strict=True) if s >= SIMILAR_AT]
    return min(close, default=None)


def _memory_scan(
    matrices: list[tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]],
    fp: Fingerprint,
    besides: int,
) -> int | None:
    """The same scan over fingerprints already in memory (numpy only)."""
    best: int | None = None
    for vectors, owners in matrices:
        scores = similarities(vectors, fp.array())
        close = owners[(scores >= SIMILAR_AT) & (owners != besides)]
        if len(close):
            best = int(close.min()) if best is None else min(best, int(close.min()))
    return best


def _planted(
    vectors: npt.NDArray[np.float32], owners: npt.NDArray[np.int64], key: str
) -> list[Case]:
    """Near copies (|cos| 0.95 per module, signs flipped) of random synthetic rows."""
    rng = np.random.default_rng(SEED + 1)
    cases: list[Case] = []
    for row in rng.choice(len(vectors), size=min(PLANTED, len(vectors)), replace=False):
        base = vectors[row].astype(np.float64)
        other = rng.standard_normal(base.shape)
        other -= (other * base).sum(1, keepdims=True) * base
        other /= np.linalg.norm(other, axis=1, keepdims=True)
        near = (0.95 * base + np.sqrt(1 - 0.95**2) * other) * rng.choice(
            [-1.0, 1.0], (len(base), 1)
        )
        cases.append(
            (
                "planted",
                str(row),
                Fingerprint(key, near.astype("<f4").tobytes()),
                0,
                int(owners[row]),
            )
        )
    return cases


def _timed(figures: dict[str, Any], name: str, work: Callable[[], T]) -> T:
    start = time.perf_counter()
    value = work()
    figures[f"{name}_s"] = round(time.perf_counter() - start, 3)
    return value


def main() -> None:
    figures: dict[str, Any] = {"bench": "reupload", "index_size": INDEX_SIZE}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "files"
        folder.mkdir()
        files = _timed(figures, "generate", lambda: _generate(folder))
        prints = _timed(figures, "fingerprint", lambda: _fingerprints(folder, files, figures))
        _similarity_spread(prints, figures)
        engine = create_db_engine(f"sqlite:///{tmp}/bench.db")
        upgrade(engine)
        store, state = Store(engine), SourceState(engine)
        _, cases = _record(store, state, prints)
        _quality(state, cases, figures, "small_")
        key, modules = cases[0][2].modules_key, len(cases[0][2].array())
        vectors, owners = _timed(figures, "insert", lambda: _synthetic(engine, store, key, modules))
        index = fingerprint_index(engine)
        figures["indexed"] = _timed(figures, "index_load", index.refresh)
        answers = _quality(state, cases, figures, "")
        planted = _planted(vectors, owners, key)
        planted_answers = [state.similar_upload([c[2]], besides=c[3]) for c in planted]
        figures["planted_found"] = sum(
            a == c[4] for c, a in zip(planted, planted_answers, strict=True)
        )
        _baselines(
            engine, state, cases, answers, planted, planted_answers, vectors, owners, figures
        )
        engine.dispose()
    _report(figures)


def _baselines(
    engine: Engine,
    state: SourceState,
    cases: list[Case],
    answers: list[int | None],
    planted: list[Case],
    planted_answers: list[int | None],
    vectors: npt.NDArray[np.float32],
    owners: npt.NDArray[np.int64],
    figures: dict[str, Any],
) -> None:
    with Session(engine) as session:
        rows = session.exec(
            select(FingerprintRow.upload_pk, FingerprintRow.vector).where(
                FingerprintRow.upload_pk < int(owners.min())
            )
        ).all()
    real = np.frombuffer(b"".join(v for _, v in rows), dtype="<f4").reshape(
        len(rows), *vectors.shape[1:]
    )
    matrices = [(real, np.array([pk for pk, _ in rows], dtype=np.int64)), (vectors, owners)]
    rng = np.random.default_rng(SEED + 2)
    picks = [int(i) for i in rng.choice(len(cases), size=MEMORY_SCAN_QUERIES // 2, replace=False)]
    subset = [(cases[i], answers[i]) for i in picks] + list(
        zip(planted, planted_answers, strict=True)
    )[: MEMORY_SCAN_QUERIES // 2]
    times, agree = [], 0
    for case, answer in subset:
        start = time.perf_counter()
        brute = _memory_scan(matrices, case[2], case[3])
        times.append(time.perf_counter() - start)
        agree += brute == answer
    figures["memory_scan_ms"] = round(1000 * float(np.mean(times)), 1)
    figures["agreement_with_scan"] = f"{agree}/{len(subset)}"
    db_times = []
    for case, answer in subset[:DB_SCAN_QUERIES]:
        start = time.perf_counter()
        assert _db_scan(engine, case[2], case[3]) == answer
        db_times.append(time.perf_counter() - start)
    figures["db_scan_ms"] = round(1000 * float(np.mean(db_times)), 1)
    figures["speedup_vs_memory_scan"] = round(
        figures["memory_scan_ms"] / figures["lookup_ms_p50"], 1
    )
    figures["speedup_vs_db_scan"] = round(figures["db_scan_ms"] / figures["lookup_ms_p50"], 1)


def _report(figures: dict[str, Any]) -> None:
    print(
        f"re-upload linking: precision {figures['precision']} recall {figures['recall']}"
        f" ({figures['files']} files; variants at >= {figures['variant_similarity_min']},"
        f" negatives at <= {figures['negative_similarity_max']}, threshold {SIMILAR_AT});"
        f" bytes read per fingerprint: {figures['fingerprint_bytes_mean']:,} beyond a"
        f" {figures['header_bytes_mean']:,}-byte header fetch, of {figures['file_bytes_mean']:,}"
    )
    print(
        f"{figures['indexed']:,} fingerprints indexed in {figures['index_load_s']} s; lookup"
        f" p50 {figures['lookup_ms_p50']} ms, p99 {figures['lookup_ms_p99']} ms; numpy scan"
        f" in memory {figures['memory_scan_ms']} ms ({figures['speedup_vs_memory_scan']}x),"
        f" database scan {figures['db_scan_ms']} ms ({figures['speedup_vs_db_scan']}x);"
        f" planted near copies found {figures['planted_found']}/{PLANTED}"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
