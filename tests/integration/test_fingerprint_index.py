"""The fingerprint index on SQLite and PostgreSQL: it answers like a scan of every stored
fingerprint, picks up rows written after it loaded (even ones committed late with a lower
id), and never names the upload asked about."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt
import pytest
from sqlalchemy import Engine, insert

from detectors.fingerprint import SKETCH_DIM, Fingerprint
from storage.fingerprint_index import FingerprintIndex, fingerprint_index
from storage.models import Fingerprint as FingerprintRow
from storage.source_state import SourceState
from storage.store import Store

KEY = "k" * 32
MODULES = 8


def _sketches(seed: int) -> npt.NDArray[np.float32]:
    x = np.random.default_rng(seed).standard_normal((MODULES, SKETCH_DIM * SKETCH_DIM))
    unit: npt.NDArray[np.float32] = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(
        np.float32
    )
    return unit


def _print(sketches: npt.NDArray[np.float32]) -> Fingerprint:
    return Fingerprint(KEY, sketches.astype("<f4").tobytes())


def _near(sketches: npt.NDArray[np.float32], c: float, seed: int) -> Fingerprint:
    """Sketches at ``|cos| = c`` per module, with every other module's sign flipped."""
    other = _sketches(seed)
    other = other - (other * sketches).sum(1, keepdims=True) * sketches
    other /= np.linalg.norm(other, axis=1, keepdims=True)
    near = c * sketches + math.sqrt(1 - c * c) * other
    signs = np.array([1, -1] * (MODULES // 2), dtype=np.float32)[:, None]
    return _print((near * signs).astype(np.float32))


def _uploads(store: Store, n: int) -> list[int]:
    return [store.record_upload("civitai", str(i), f"u{i}")[0].id for i in range(n)]


def test_answers_like_a_full_scan_and_reads_new_rows(store: Store, engine: Engine):
    a, b, asking = _uploads(store, 3)
    state = SourceState(engine)
    first, second = _sketches(1), _sketches(2)
    state.save_fingerprints(a, [("a.safetensors", _print(first))])
    index = FingerprintIndex(engine)
    assert index.similar_upload([_near(first, 0.99, 10)], besides=asking) == a
    state.save_fingerprints(b, [("b.safetensors", _print(second))])  # after it loaded
    assert index.similar_upload([_near(second, 0.95, 11)], besides=asking) == b
    assert index.similar_upload([_near(second, 0.95, 11)], besides=b) is None
    assert index.similar_upload([_near(first, 0.8, 12)], besides=asking) is None  # under 0.9
    assert index.similar_upload([_print(_sketches(3))], besides=asking) is None
    assert index.similar_upload([Fingerprint("other" * 6, _print(first).vector)], besides=0) is None
    assert index.similar_upload([], besides=asking) is None
    assert len(index) == 2


def test_the_earliest_of_several_copies_is_named(store: Store, engine: Engine):
    uploads = _uploads(store, 4)
    state = SourceState(engine)
    sketches = _sketches(5)
    for upload_pk in reversed(uploads[:3]):  # written newest first
        state.save_fingerprints(upload_pk, [("x.safetensors", _near(sketches, 0.98, upload_pk))])
    assert state.similar_upload([_print(sketches)], besides=uploads[3]) == uploads[0]
    assert fingerprint_index(engine) is fingerprint_index(engine)  # one per engine


@pytest.mark.postgres  # SQLite has one writer: its ids become visible in order
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_row_committed_late_with_a_lower_id_is_found(store: Store, engine: Engine):
    early, late, asking = _uploads(store, 3)
    sketches = _sketches(7)
    now = datetime.now(UTC)

    def write(row_id: int, upload_pk: int, vector: bytes) -> None:
        with engine.begin() as connection:
            connection.execute(
                insert(FingerprintRow).values(
                    id=row_id,
                    upload_pk=upload_pk,
                    filename=f"{row_id}.safetensors",
                    modules_key=KEY,
                    vector=vector,
                    created_at=now,
                )
            )

    write(1000, early, _print(_sketches(8)).vector)
    index = FingerprintIndex(engine, late_check_s=0.0)
    assert index.similar_upload([_print(sketches)], besides=asking) is None
    write(999, late, _print(sketches).vector)  # its transaction took id 999 but ended later
    assert index.similar_upload([_print(sketches)], besides=asking) == late
    assert index.refresh() == 2  # read again, indexed once
