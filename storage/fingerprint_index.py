"""The fingerprint index: which stored weight fingerprint is like a new one, without reading
every stored fingerprint for every lookup.

It keeps, per ``modules_key``, the binary code of every stored fingerprint
(`detectors.fingerprint.sketch_codes`: 32 bytes each, 32 MB per million) in one numpy
array, loaded from the fingerprint table on first use and topped up on each lookup with the
rows written since. A lookup is one Hamming scan of that array; the few rows within
``code_radius`` are read back and compared exactly (`detectors.fingerprint.similarities`),
so what it answers is what a scan of every row would answer, bar a pair whose code lands
outside the radius although its sketches are at ``SIMILAR_AT`` (one in ~10^4 exactly at
the threshold, none for real re-uploads; bench/reupload.py counts both).

One index per engine and process (`fingerprint_index`), shared by the pollers' threads
under a lock. Rows are read by id; ids that another process's transaction had reserved
but not committed yet are read on a later lookup (the last ``LAG_ROWS`` ids are read again).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import numpy.typing as npt
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from detectors.errors import StorageError
from detectors.fingerprint import (
    SIMILAR_AT,
    SKETCH_DIM,
    Fingerprint,
    code_radius,
    hamming,
    similarities,
    sketch_codes,
)
from storage.engine import error_summary
from storage.models import Fingerprint as FingerprintRow

LOAD_BATCH_ROWS = 20_000
LAG_ROWS = 10_000
Ids = npt.NDArray[np.int64]
G = TypeVar("G", bound=np.generic)


@dataclass
class _Group:
    """The codes of one ``modules_key``: rows ``[:size]`` of the arrays are filled."""

    modules: int
    codes: npt.NDArray[np.uint64]
    row_ids: Ids
    size: int = 0

    @classmethod
    def empty(cls, modules: int, words: int) -> _Group:
        return cls(modules, np.zeros((0, words), np.uint64), np.zeros(0, np.int64))

    def add(self, codes: npt.NDArray[np.uint64], row_ids: Ids) -> None:
        need = self.size + len(row_ids)
        if need > len(self.row_ids):  # grow by doubling: amortised O(1) per row
            capacity = max(need, 2 * len(self.row_ids), 1024)
            self.codes = _grown(self.codes, capacity)
            self.row_ids = _grown(self.row_ids, capacity)
        self.codes[self.size : need] = codes
        self.row_ids[self.size : need] = row_ids
        self.size = need

    def candidates(self, code: npt.NDArray[np.uint64]) -> Ids:
        """Row ids whose codes lie within the radius of ``code``."""
        distance = hamming(self.codes[: self.size], code)
        close: Ids = self.row_ids[: self.size][distance <= code_radius(self.modules)]
        return close


@dataclass
class FingerprintIndex:
    """Stored fingerprints by code, for `similar_upload` (thread-safe)."""

    engine: Engine
    _groups: dict[str, _Group] = field(default_factory=dict)
    _last_id: int = 0
    _recent: set[int] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def similar_upload(self, prints: Iterable[Fingerprint], *, besides: int) -> int | None:
        """The first recorded upload (by id), other than ``besides``, with a file whose
        fingerprint is at least ``SIMILAR_AT`` like one of ``prints``."""
        wanted = [fp for fp in prints if fp.vector]
        if not wanted:
            return None
        try:
            with Session(self.engine) as session:
                with self._lock:
                    self._load(session)
                    found = {fp: self._candidates(fp) for fp in wanted}
                return _earliest_close(session, found, besides)
        except SQLAlchemyError as exc:
            raise StorageError(f"similar_upload failed: {error_summary(exc)}") from exc

    def __len__(self) -> int:
        return sum(g.size for g in self._groups.values())

    def refresh(self) -> int:
        """Read the rows written since the last lookup; returns how many are indexed."""
        try:
            with Session(self.engine) as session, self._lock:
                self._load(session)
        except SQLAlchemyError as exc:
            raise StorageError(f"loading fingerprints failed: {error_summary(exc)}") from exc
        return len(self)

    def _candidates(self, fp: Fingerprint) -> Ids:
        group = self._groups.get(fp.modules_key)
        sketches = fp.array()
        if group is None or len(sketches) != group.modules:
            return np.zeros(0, np.int64)
        return group.candidates(sketch_codes(sketches[None])[0])

    def _load(self, session: Session) -> None:
        """Index every row written since the last load (and the last LAG_ROWS ids again)."""
        after = max(0, self._last_id - LAG_ROWS)
        while True:
            rows = session.exec(
                select(FingerprintRow.id, FingerprintRow.modules_key, FingerprintRow.vector)
                .where(col(FingerprintRow.id) > after)
                .order_by(col(FingerprintRow.id))
                .limit(LOAD_BATCH_ROWS)
            ).all()
            if not rows:
                break
            fresh = [(int(i), k, v) for i, k, v in rows if i and int(i) not in self._recent]
            self._index(fresh)
            after = int(rows[-1][0] or 0)
            self._last_id = max(self._last_id, after)
            recent = self._recent | {i for i, _, _ in fresh}
            self._recent = {i for i in recent if i > self._last_id - LAG_ROWS}

    def _index(self, rows: Sequence[tuple[int, str, bytes]]) -> None:
        by_key: dict[tuple[str, int], list[tuple[int, bytes]]] = {}
        for row_id, key, vector in rows:
            modules, rest = divmod(len(vector) // 4, SKETCH_DIM * SKETCH_DIM)
            if modules and not rest:
                by_key.setdefault((key, modules), []).append((row_id, vector))
        for (key, modules), items in by_key.items():
            stored = np.frombuffer(b"".join(v for _, v in items), dtype="<f4")
            codes = sketch_codes(stored.reshape(len(items), modules, SKETCH_DIM * SKETCH_DIM))
            group = self._groups.get(key)
            if group is None or group.modules != modules:
                group = self._groups[key] = _Group.empty(modules, codes.shape[1])
            group.add(codes, np.array([i for i, _ in items], dtype=np.int64))


def _earliest_close(session: Session, found: dict[Fingerprint, Ids], besides: int) -> int | None:
    """The smallest upload key among the candidates truly at ``SIMILAR_AT`` or closer."""
    earliest: int | None = None
    for fp, row_ids in found.items():
        if not len(row_ids):
            continue
        rows = session.exec(
            select(FingerprintRow.upload_pk, FingerprintRow.vector)
            .where(col(FingerprintRow.id).in_([int(i) for i in row_ids]))
            .where(FingerprintRow.upload_pk != besides)
        ).all()
        query = fp.array()
        usable = [(pk, v) for pk, v in rows if len(v) == len(fp.vector)]
        if not usable:
            continue
        stored = np.frombuffer(b"".join(v for _, v in usable), dtype="<f4")
        scores = similarities(stored.reshape(len(usable), *query.shape), query)
        close = [pk for (pk, _), score in zip(usable, scores, strict=True) if score >= SIMILAR_AT]
        if close:
            earliest = min(close) if earliest is None else min(earliest, *close)
    return earliest


def _grown(array: npt.NDArray[G], capacity: int) -> npt.NDArray[G]:
    grown: npt.NDArray[G] = np.zeros((capacity, *array.shape[1:]), dtype=array.dtype)
    grown[: len(array)] = array
    return grown


_INDEXES: weakref.WeakKeyDictionary[Engine, FingerprintIndex] = weakref.WeakKeyDictionary()
_INDEXES_LOCK = threading.Lock()


def fingerprint_index(engine: Engine) -> FingerprintIndex:
    """This process's index over ``engine`` (built empty on first use, loaded lazily)."""
    with _INDEXES_LOCK:
        index = _INDEXES.get(engine)
        if index is None:
            index = _INDEXES[engine] = FingerprintIndex(engine)
        return index
