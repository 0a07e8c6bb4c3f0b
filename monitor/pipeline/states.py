"""The states of an upload (``Upload.state``) and which stage may move it where, declared once.

``Upload.state`` is the hand-off between the stages: the poller (or ``scan``) records an
upload "new" and screens it; the probe stage takes what waits ("screened", "requeued", and
"probing" a crash left behind), and a back-scan by style or a moderator puts an upload back
in its queue::

    new ──poll / scan──▶ screened ──probe──▶ probing ──probe──▶ probed
      │                   ▲    ▲                │  │               │
      └──poll──▶ failed ──┘    └──probe (retry)─┘  └──▶ failed     └──backscan──▶ requeued
                 (moderate: queue a checkpoint                                     │
                  the size budget left unprobed)       probing ◀──────probe────────┘

Every stage writes a state through `move`, which refuses a state its stage has no arrow to
(`TRANSITIONS`) before anything is written. The one bulk write, the back-scan's requeue
(`storage.backscan_reads.BackscanReads.requeue`, "probed" to "requeued" in one UPDATE), is
declared here too and checked against this table by the tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, get_args

from detectors.results import BaseFamily, Kind
from storage.records import UploadRecord, UploadState
from storage.store import Store

__all__ = ["STATES", "TRANSITIONS", "Mover", "Transition", "move"]

Mover = Literal["poll", "scan", "probe", "backscan", "moderate"]
STATES: tuple[UploadState, ...] = get_args(UploadState)


@dataclass(frozen=True, slots=True)
class Transition:
    """The states a stage moves uploads out of, and those it may move them into."""

    sources: frozenset[UploadState]
    targets: frozenset[UploadState]


def _t(sources: set[UploadState], targets: set[UploadState]) -> Transition:
    return Transition(frozenset(sources), frozenset(targets))


TRANSITIONS: Mapping[Mover, Transition] = {
    # A poll screens a new upload, or one seen again (a hub history search, a changed file).
    "poll": _t({"new", "screened", "failed"}, {"screened", "failed"}),
    # ``stylewatch scan`` screens a local file and, when it can, probes it on the spot.
    "scan": _t({"new", "screened", "probed", "failed"}, {"screened", "probed"}),
    # The probe worker: takes a waiting upload, ends it probed or failed, or puts it back
    # (a hub that was unavailable: "screened", or "requeued" when a back-scan asked).
    "probe": _t(
        {"screened", "requeued", "probing"}, {"probing", "probed", "screened", "requeued", "failed"}
    ),
    # A back-scan by style puts a probed upload without a kept run back in the queue.
    "backscan": _t({"probed"}, {"requeued"}),
    # A moderator queues a checkpoint the size budget left unprobed.
    "moderate": _t({"failed"}, {"screened"}),
}


def move(
    store: Store,
    mover: Mover,
    upload_pk: int,
    state: UploadState,
    *,
    error: str | None = None,
    kind: Kind | None = None,
    base_family: BaseFamily | None = None,
    reupload_of: int | None = None,
) -> UploadRecord:
    """Move an upload to ``state`` for the stage ``mover`` (`Store.set_upload_state`).
    ValueError, before anything is written, when the stage has no arrow into ``state``."""
    if state not in TRANSITIONS[mover].targets:
        raise ValueError(f"the {mover} stage does not move an upload to {state!r}")
    return store.set_upload_state(
        upload_pk, state, error=error, kind=kind, base_family=base_family, reupload_of=reupload_of
    )
