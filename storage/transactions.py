"""Read and write transactions for the repositories beside `storage.store.Store`
(users, triage, the web UI's queries), with the same rules: a write that loses a
unique-key race runs again from the start, and database errors leave as ``StorageError``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session

from detectors.errors import StorageError
from storage.engine import error_summary, write_engine

logger = logging.getLogger(__name__)

T = TypeVar("T")

WRITE_ATTEMPTS = 3


def utc_now() -> datetime:
    return datetime.now(UTC)


class Transactions:
    """Runs units of work against one engine; ``clock`` is the time the work sees."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utc_now) -> None:
        self._engine = engine
        self._writer = write_engine(engine)
        self.clock = clock

    def write(self, op: str, work: Callable[[Session], T]) -> T:
        """Run ``work`` in a write transaction, again from the start after a unique-key race."""
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                with Session(self._writer, expire_on_commit=False) as session, session.begin():
                    return work(session)
            except IntegrityError as exc:
                if attempt == WRITE_ATTEMPTS:
                    raise StorageError(f"{op} failed: {error_summary(exc)}") from exc
                logger.debug("storage.write.retry", extra={"op": op, "attempt": attempt})
            except SQLAlchemyError as exc:
                raise StorageError(f"{op} failed: {error_summary(exc)}") from exc
        raise AssertionError("unreachable")

    def read(self, op: str, work: Callable[[Session], T]) -> T:
        try:
            with Session(self._engine, expire_on_commit=False) as session, session.begin():
                return work(session)
        except SQLAlchemyError as exc:
            raise StorageError(f"{op} failed: {error_summary(exc)}") from exc
