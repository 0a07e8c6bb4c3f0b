"""monitor.pipeline.states: the declared moves of ``Upload.state`` are the ones the stages make."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from monitor.pipeline.states import STATES, TRANSITIONS, move
from storage.backscan_reads import BackscanReads
from storage.store import Store


def _upload(store: Store, upload_id: str = "u1") -> int:
    upload, _ = store.record_upload("civitai", upload_id, "Ink Washes", kind="lora")
    return upload.id


def test_the_table_covers_every_state_and_only_those():
    targets = {s for t in TRANSITIONS.values() for s in t.targets}
    sources = {s for t in TRANSITIONS.values() for s in t.sources}
    assert targets == set(STATES) - {"new"}  # "new" is where recording puts an upload
    assert sources <= set(STATES)
    assert "new" in sources


def test_a_stage_moves_an_upload_along_its_arrows(store: Store):
    pk = _upload(store)
    assert move(store, "poll", pk, "screened").state == "screened"
    assert move(store, "probe", pk, "probing").state == "probing"
    moved = move(store, "probe", pk, "failed", error="the probe failed: boom")
    assert (moved.state, moved.error) == ("failed", "the probe failed: boom")
    assert move(store, "moderate", pk, "screened").state == "screened"


@pytest.mark.parametrize(
    ("mover", "state"),
    [("poll", "probed"), ("moderate", "probed"), ("backscan", "failed"), ("scan", "probing")],
)
def test_a_move_without_an_arrow_is_refused_before_anything_is_written(store: Store, mover, state):
    pk = _upload(store)
    with pytest.raises(ValueError, match=f"does not move an upload to '{state}'"):
        move(store, mover, pk, state)
    record = store.get_upload("civitai", "u1")
    assert record is not None
    assert record.state == "new"


def test_the_back_scans_bulk_requeue_follows_the_table(store: Store, engine: Engine):
    pk = _upload(store)
    move(store, "probe", pk, "probed")
    assert BackscanReads(engine).requeue([pk]) == 1
    record = store.get_upload("civitai", "u1")
    assert record is not None
    assert "probed" in TRANSITIONS["backscan"].sources
    assert record.state in TRANSITIONS["backscan"].targets
