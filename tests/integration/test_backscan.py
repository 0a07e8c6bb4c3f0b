"""Back-scan on SQLite and PostgreSQL: registering an artist finds the uploads already
recorded that name them, from stored metadata and hub text, once."""

from __future__ import annotations

import json

from sqlalchemy import Engine, text

from detectors.results import ArtistMatch, ArtistRef, BaseFamily, Evidence, Kind, TextField
from monitor.backscan.names import backscan
from storage.backscan_reads import BackscanReads
from storage.probe_jobs import probe_candidates
from storage.records import FileRecord, UploadState
from storage.store import Store


def _file(name: str, tags: dict[str, int]) -> FileRecord:
    metadata = {"ss_tag_frequency": json.dumps({"10_set": tags}), "ss_network_dim": "16"}
    return FileRecord(name, format="safetensors", kind="lora", metadata=metadata)


def _record(store: Store) -> dict[str, int]:
    uploads = {
        "tagged": ([_file("a.safetensors", {"mara quellbrook style": 4, "1girl": 9})], ()),
        "described": ([], (TextField("description", "in the style of Mara Quellbrook"),)),
        "unrelated": ([_file("b.safetensors", {"landscape": 3})], (TextField("name", "Hills"),)),
    }
    pks = {}
    for upload_id, (files, hub_text) in uploads.items():
        record, _ = store.record_upload(
            "civitai", upload_id, upload_id, files=files, hub_text=hub_text
        )
        pks[upload_id] = record.id
    return pks


def _ref(store: Store, name: str) -> ArtistRef:
    artist = store.add_artist(name)
    return ArtistRef(artist.id, artist.name, artist.aliases)


def test_backscan_records_findings_for_earlier_uploads(store: Store, engine: Engine):
    _record(store)
    ref = _ref(store, "Mara Quellbrook")
    steps: list[int] = []
    result = backscan(store, BackscanReads(engine), [ref], advance=steps.append)
    assert result.scanned == 3 and sum(steps) == 3
    assert result.named == {"Mara Quellbrook": 2}
    assert result.summary([ref]) == ["back-scan: 2 earlier uploads name Mara Quellbrook"]
    found = store.list_findings()
    assert sorted(f.upload_id for f in found) == ["described", "tagged"]
    assert all(f.backscan and f.artist == "Mara Quellbrook" for f in found)
    tagged = next(f for f in found if f.upload_id == "tagged")
    assert any(e.source == "ss_tag_frequency" for e in tagged.evidence)
    unrelated = store.get_upload("civitai", "unrelated")
    assert unrelated is not None and unrelated.artists == () and unrelated.state == "new"


def test_backscan_again_adds_nothing(store: Store, engine: Engine):
    _record(store)
    ref = _ref(store, "Mara Quellbrook")
    backscan(store, BackscanReads(engine), [ref])
    before = store.list_findings()
    again = backscan(store, BackscanReads(engine), [ref])
    assert again.named == {"Mara Quellbrook": 2}
    assert store.list_findings() == before


def test_backscan_screens_only_the_given_artists(store: Store, engine: Engine):
    _record(store)
    first = _ref(store, "Mara Quellbrook")
    polled = store.record_upload(
        "civitai", "later", "later", hub_text=(TextField("name", "Hills"),)
    )
    second = _ref(store, "Hills Painter")
    result = backscan(store, BackscanReads(engine), [second])
    assert result.named == {}
    assert store.list_findings() == []
    assert polled[0].artists == ()
    result = backscan(store, BackscanReads(engine), [first])
    assert result.named == {"Mara Quellbrook": 2}


def test_a_finding_screening_made_stays_unmarked(store: Store, engine: Engine):
    pks = _record(store)
    ref = _ref(store, "Mara Quellbrook")
    store.record_findings(
        pks["tagged"],
        [ArtistMatch(ref.artist_id, ref.name, 0.9, "metadata", (Evidence("name", "x"),))],
    )
    backscan(store, BackscanReads(engine), [ref])
    marks = {f.upload_id: f.backscan for f in store.list_findings()}
    assert marks == {"tagged": False, "described": True}


def test_batches_cover_every_upload_once(store: Store, engine: Engine):
    for i in range(7):
        store.record_upload("folder", f"u{i}", f"u{i}", files=[_file(f"{i}.safetensors", {})])
    seen = [u.upload_pk for batch in BackscanReads(engine).batches(size=3) for u in batch]
    assert len(seen) == len(set(seen)) == BackscanReads(engine).count() == 7
    assert all(len(u.groups()) == 1 for batch in BackscanReads(engine).batches(3) for u in batch)


def test_uploads_recorded_before_the_cache_are_screened_from_their_metadata(
    store: Store, engine: Engine
):
    _record(store)
    with engine.begin() as connection:  # as rows written before revision 0005 look
        connection.execute(text("UPDATE upload SET screen_fields = NULL"))
    ref = _ref(store, "Mara Quellbrook")
    assert backscan(store, BackscanReads(engine), [ref]).named == {"Mara Quellbrook": 2}
    with engine.connect() as connection:
        nulls = connection.execute(text("SELECT count(*) FROM upload WHERE screen_fields IS NULL"))
        assert nulls.scalar_one() == 0


def test_probed_uploads_are_listed_by_family_and_requeued_once(store: Store, engine: Engine):
    """LoRAs, LyCORIS files and checkpoints the probe drew (checkpoints are probed too)."""
    pks = {}
    cases: list[tuple[str, Kind, BaseFamily, UploadState]] = [
        ("a", "lora", "sd1", "probed"),
        ("b", "lycoris", "sd1", "probed"),
        ("c", "lora", "sdxl", "probed"),
        ("d", "checkpoint", "sd1", "probed"),
        ("e", "lora", "sd1", "screened"),
        ("f", "lora", "sd1", "probed"),
    ]
    for upload_id, kind, family, state in cases:
        record, _ = store.record_upload("civitai", upload_id, upload_id, kind=kind)
        store.set_upload_state(record.id, state, base_family=family)
        pks[upload_id] = record.id
    recorded = BackscanReads(engine)
    assert recorded.probed_count(["sd1"]) == 4
    pages = list(recorded.probed(["sd1"], size=2))
    assert [[u.upload_id for u in page] for page in pages] == [["a", "b"], ["d", "f"]]
    assert pages[0][0].source == "civitai" and pages[0][0].upload_pk == pks["a"]
    assert recorded.probed_count(["sd1", "sdxl"]) == 5
    assert recorded.requeue([pks["a"], pks["e"], pks["a"]]) == 1  # "e" is not probed
    assert recorded.requeue([pks["a"]]) == 0
    states = {u.upload_id: u.state for u in store.list_uploads()}
    assert (states["a"], states["e"], states["b"]) == ("requeued", "screened", "probed")
    assert [u.upload_id for page in recorded.probed(["sd1"]) for u in page] == ["b", "d", "f"]
    assert probe_candidates(engine, ["sd1"]) == [pks["a"], pks["e"]]
