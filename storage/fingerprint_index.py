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
but not committed yet are read on a later lookup (on PostgreSQL the last ``LAG_ROWS`` ids
are checked again every ``LATE_CHECK_S``). A row whose vector is rewritten in place keeps
its old code; rows deleted are dropped at the exact check.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from sqlalchemy import Engine, func
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from detectors.errors import StorageError
from detectors.fingerprint import (
    SIMILAR_AT,
    SKETCH_DIM,
    Fingerprint,
    code_radius,
    hamming_columns,
    similarities,
    sketch_codes,
)
from storage.engine import error_summary
from storage.models import Fingerprint as FingerprintRow

LOAD_BATCH_ROWS = 20_000
LAG_ROWS = 5_000
LATE_CHECK_S = 5.0  # how often the lag window is checked for rows committed late
Ids = npt.NDArray[np.int64]


@dataclass
class _Group:
    """The codes of one ``modules_key``, word by word (``columns[w, i]``: word ``w`` of code
    ``i``, for a fast scan); entries ``[:size]`` are filled."""

    modules: int
    columns: npt.NDArray[np.uint64]
    row_ids: Ids
    size: int = 0

    @classmethod
    def empty(cls, modules: int, words: int) -> _Group:
        return cls(modules, np.zeros((words, 0), np.uint64), np.zeros(0, np.int64))

    def add(self, codes: npt.NDArray[np.uint64], row_ids: Ids) -> None:
        need = self.size + len(row_ids)
        if need > len(self.row_ids):  # grow by doubling: amortised O(1) per row
            capacity = max(need, 2 * len(self.row_ids), 1024)
            columns = np.zeros((self.columns.shape[0], capacity), np.uint64)
            columns[:, : self.size] = self.columns[:, : self.size]
            ids = np.zeros(capacity, np.int64)
            ids[: self.size] = self.row_ids[: self.size]
            self.columns, self.row_ids = columns, ids
        self.columns[:, self.size : need] = codes.T
        self.row_ids[self.size : need] = row_ids
        self.size = need

    def candidates(self, code: npt.NDArray[np.uint64]) -> Ids:
        """Row ids whose codes lie within the radius of ``code``."""
        distance = hamming_columns(self.columns[:, : self.size], code)
        close: Ids = self.row_ids[: self.size][distance <= code_radius(self.modules)]
        return close


@dataclass
class FingerprintIndex:
    """Stored fingerprints by code, for `similar_upload` (thread-safe)."""

    engine: Engine
    _groups: dict[str, _Group] = field(default_factory=dict)
    _last_id: int = 0
    late_check_s: float = LATE_CHECK_S
    _recent: set[int] = field(default_factory=set)
    _late_checked: float = float("-inf")
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
        """Index every row written since the last load, and any row in the last
        ``LAG_ROWS`` ids that was not there then."""
        self._load_late(session)
        after = self._last_id
        while True:
            rows = session.exec(
                select(FingerprintRow.id, FingerprintRow.modules_key, FingerprintRow.vector)
                .where(col(FingerprintRow.id) > after)
                .order_by(col(FingerprintRow.id))
                .limit(LOAD_BATCH_ROWS)
            ).all()
            if not rows:
                return
            self._index([(int(i), k, v) for i, k, v in rows if i])
            after = self._last_id = int(rows[-1][0] or 0)
            self._remember(int(i) for i, _, _ in rows if i)

    def _load_late(self, session: Session) -> None:
        """Rows whose ids lie in the lag window but were not committed when it was read (on
        PostgreSQL a transaction may take an id and commit after a later one): at most every
        ``late_check_s`` a lookup counts the window's rows, and reads their ids only when
        the count changed."""
        now = time.monotonic()
        if self.engine.dialect.name == "sqlite" or not self._last_id:
            return  # SQLite has one writer at a time: its ids become visible in order
        if now - self._late_checked < self.late_check_s:
            return
        self._late_checked = now
        window = (
            col(FingerprintRow.id) > self._last_id - LAG_ROWS,
            col(FingerprintRow.id) <= self._last_id,
        )
        there = session.exec(select(func.count()).select_from(FingerprintRow).where(*window))
        if there.one() == len(self._recent):
            return  # ids are unique: the same count is the same rows (the usual case)
        ids = session.exec(select(FingerprintRow.id).where(*window)).all()
        late = [int(i) for i in ids if i and int(i) not in self._recent]
        if not late:
            return
        rows = session.exec(
            select(FingerprintRow.id, FingerprintRow.modules_key, FingerprintRow.vector).where(
                col(FingerprintRow.id).in_(late)
            )
        ).all()
        self._index([(int(i), k, v) for i, k, v in rows if i])
        self._remember(late)

    def _remember(self, row_ids: Iterable[int]) -> None:
        """Keep the ids indexed within the lag window (so a late row is indexed once)."""
        floor = self._last_id - LAG_ROWS
        self._recent = {i for i in (*self._recent, *row_ids) if i > floor}

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


_INDEXES: weakref.WeakKeyDictionary[Engine, FingerprintIndex] = weakref.WeakKeyDictionary()
_INDEXES_LOCK = threading.Lock()


def fingerprint_index(engine: Engine) -> FingerprintIndex:
    """This process's index over ``engine`` (built empty on first use, loaded lazily)."""
    with _INDEXES_LOCK:
        index = _INDEXES.get(engine)
        if index is None:
            index = _INDEXES[engine] = FingerprintIndex(engine)
        return index
