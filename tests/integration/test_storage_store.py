"""The repository, on SQLite and PostgreSQL: idempotent stages and concurrent writers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from typing import TypeVar

import pytest
from sqlalchemy import Engine, text

from detectors.errors import InputError, StorageError
from detectors.results import ArtistMatch, ArtistRef, Evidence, TextField
from storage.records import FileRecord, UploadRef
from storage.store import Store

T = TypeVar("T")
THREADS = 8


def _count(engine: Engine, table: str) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text(f'SELECT count(*) FROM "{table}"')).scalar_one())


def _race(call: Callable[[], T], threads: int = THREADS) -> list[T]:
    """Run ``call`` from many threads released at the same moment."""
    barrier = threading.Barrier(threads)

    def contender() -> T:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(contender) for _ in range(threads)]
        return [f.result() for f in futures]


def _match(artist_id: int, name: str, score: float, *evidence: tuple[str, str]) -> ArtistMatch:
    return ArtistMatch(
        artist_id, name, score, "metadata", tuple(Evidence(s, t) for s, t in evidence)
    )


# -- artists -----------------------------------------------------------------------------


def test_add_and_list_artists(store: Store, clock):
    added = store.add_artist("Mira Okafor", aliases=["mokafor", "M. Okafor"], email="m@example.org")
    store.add_artist("Anders Lund")
    assert added.name == "Mira Okafor"
    assert added.aliases == ("mokafor", "M. Okafor")
    assert added.email == "m@example.org"
    assert added.created_at == clock.now
    assert added.created_at.tzinfo is not None
    assert [a.name for a in store.list_artists()] == ["Anders Lund", "Mira Okafor"]


def test_duplicate_artist_name_is_an_input_error(store: Store):
    store.add_artist("Mira Okafor")
    with pytest.raises(InputError, match="already exists"):
        store.add_artist("mira okafor")
    assert len(store.list_artists()) == 1


def test_empty_artist_name_is_an_input_error(store: Store):
    with pytest.raises(InputError, match="empty"):
        store.add_artist("   ")


def test_add_alias_by_name_or_id_is_idempotent(store: Store):
    artist = store.add_artist("Mira Okafor")
    store.add_alias("Mira Okafor", "mokafor")
    store.add_alias(artist.id, "mokafor")
    updated = store.add_alias(artist.id, "okafor_art")
    assert updated.aliases == ("mokafor", "okafor_art")
    assert store.artist_refs() == [ArtistRef(artist.id, "Mira Okafor", ("mokafor", "okafor_art"))]


def test_alias_for_unknown_artist_is_an_input_error(store: Store):
    with pytest.raises(InputError, match="artist add"):
        store.add_alias("Nobody", "x")


def test_import_artists_registers_new_and_updates_known(store: Store):
    store.add_artist("Mira Okafor", aliases=["mokafor"])
    added, updated = store.import_artists(
        [
            ("mira okafor", ["mokafor", "okafor_art"], "m@example.org"),
            ("Anders Lund", ["alund"], None),
            ("Anders Lund", ["alund"], None),
        ]
    )
    assert (added, updated) == (1, 1)
    by_name = {a.name: a for a in store.list_artists()}
    assert by_name["Mira Okafor"].aliases == ("mokafor", "okafor_art")
    assert by_name["Mira Okafor"].email == "m@example.org"
    assert by_name["Anders Lund"].aliases == ("alund",)
    assert store.import_artists([("Anders Lund", ["alund"], None)]) == (0, 0)


def test_reference_images_link_once(store: Store, engine: Engine):
    artist = store.add_artist("Mira Okafor")
    sha = "ab" * 32
    assert store.add_reference_image(artist.id, sha, mime="image/png", width=8, height=8, size=90)
    assert not store.add_reference_image(
        artist.id, sha.upper(), mime="image/png", width=8, height=8, size=90
    )
    assert _count(engine, "reference_image") == 1
    with pytest.raises(InputError):
        store.add_reference_image(999_999, sha, mime="image/png", width=8, height=8, size=90)


def test_counts(store: Store):
    artist = store.add_artist("Mira Okafor")
    upload, _ = _record(store)
    store.record_findings(upload.id, [_match(artist.id, artist.name, 0.5)])
    counts = store.counts()
    assert (counts.artists, counts.uploads, counts.findings) == (1, 1, 1)


# -- sources -----------------------------------------------------------------------------


def test_ensure_source_is_stable_and_keeps_the_watermark(store: Store, clock):
    source_id = store.ensure_source("civitai")
    assert store.ensure_source("civitai") == source_id
    clock.advance(60)
    saved = store.save_source("civitai", high_water="12345", state={"cursor": "abc"})
    assert saved.id == source_id
    again = store.get_source("civitai")
    assert (again.high_water, dict(again.state), again.updated_at) == (
        "12345",
        {"cursor": "abc"},
        clock.now,
    )


# -- uploads -----------------------------------------------------------------------------


def _record(store: Store, upload_id: str = "v1001", name: str = "Okafor style LoRA"):
    return store.record_upload(
        "civitai",
        upload_id,
        name,
        url="https://civitai.example/models/1",
        uploader="someone",
        kind="lora",
        base_family="sdxl",
        files=[
            FileRecord(
                "okafor.safetensors",
                sha256="a" * 64,
                size=5_000_000_000,
                format="safetensors",
                kind="lora",
                base_family="sdxl",
                layout="kohya",
                metadata={"ss_tag_frequency": {"okafor": 3}},
                hashes={"autov2": "abcdef0123"},
            )
        ],
        hub_text=[TextField("title", name), TextField("trainedWords", "mokafor style")],
    )


def test_record_upload_once(store: Store, engine: Engine, clock):
    record, created = _record(store)
    assert created
    assert (record.source, record.upload_id, record.name, record.state) == (
        "civitai",
        "v1001",
        "Okafor style LoRA",
        "new",
    )
    assert (record.kind, record.base_family, record.artists, record.reupload_of) == (
        "lora",
        "sdxl",
        (),
        None,
    )
    assert record.hub_text[1] == TextField("trainedWords", "mokafor style")
    assert record.files[0].size == 5_000_000_000
    assert record.files[0].metadata == {"ss_tag_frequency": {"okafor": 3}}
    assert record.created_at == clock.now
    assert record.created_at.tzinfo == UTC


def test_same_upload_twice_is_one_row_and_unchanged(store: Store, engine: Engine, clock):
    first, _ = _record(store)
    clock.advance(3600)
    again, created = _record(store, name="renamed on the hub")
    assert not created
    assert again == first
    assert _count(engine, "upload") == 1
    assert _count(engine, "model_file") == 1
    assert [u.upload_id for u in store.list_uploads()] == ["v1001"]


def test_list_uploads_by_source(store: Store):
    _record(store, "v1")
    store.record_upload("huggingface", "owner/repo@abc", "other")
    assert [u.upload_id for u in store.list_uploads(source="civitai")] == ["v1"]
    assert [u.source for u in store.list_uploads()] == ["civitai", "huggingface"]
    assert store.list_uploads(source="folder") == []
    assert store.get_upload("huggingface", "owner/repo@abc") is not None
    assert store.get_upload("civitai", "nope") is None


def test_set_upload_state_and_reupload_of(store: Store, clock):
    original, _ = _record(store, "v1")
    copy, _ = _record(store, "v2")
    clock.advance(5)
    failed = store.set_upload_state(copy.id, "failed", error="header too long")
    assert (failed.state, failed.error, failed.updated_at) == (
        "failed",
        "header too long",
        clock.now,
    )
    screened = store.set_upload_state(
        copy.id, "screened", kind="checkpoint", reupload_of=original.id
    )
    assert (screened.state, screened.error, screened.kind) == ("screened", None, "checkpoint")
    assert screened.reupload_of == UploadRef("civitai", "v1")
    with pytest.raises(StorageError, match="no upload"):
        store.set_upload_state(999_999, "screened")


def test_concurrent_record_upload_makes_one_row(store: Store, engine: Engine):
    results = _race(lambda: _record(store, "v-race"))
    assert sum(created for _, created in results) == 1
    assert len({record.id for record, _ in results}) == 1
    assert _count(engine, "upload") == 1
    assert _count(engine, "source") == 1


# -- findings ----------------------------------------------------------------------------


def test_record_findings_creates_one_finding_per_artist(store: Store):
    mira = store.add_artist("Mira Okafor")
    anders = store.add_artist("Anders Lund")
    upload, _ = _record(store)
    findings = store.record_findings(
        upload.id,
        [
            _match(mira.id, mira.name, 0.4, ("trainedWords", "mokafor style")),
            _match(anders.id, anders.name, 0.9, ("title", "lund")),
        ],
    )
    assert [(f.artist, f.score, f.stage, f.state) for f in findings] == [
        ("Mira Okafor", 0.4, "metadata", "needs_review"),
        ("Anders Lund", 0.9, "metadata", "needs_review"),
    ]
    assert (findings[0].source, findings[0].upload_id, findings[0].name) == (
        "civitai",
        "v1001",
        "Okafor style LoRA",
    )
    assert [f.artist for f in store.list_findings()] == ["Anders Lund", "Mira Okafor"]
    assert store.list_uploads()[0].artists == ("Anders Lund", "Mira Okafor")


def test_same_finding_twice_is_one_row_with_max_score_and_merged_evidence(
    store: Store, engine: Engine, clock
):
    mira = store.add_artist("Mira Okafor")
    upload, _ = _record(store)
    first = store.record_findings(
        upload.id, [_match(mira.id, mira.name, 0.5, ("trainedWords", "mokafor"))]
    )[0]
    clock.advance(10)
    probe = ArtistMatch(mira.id, mira.name, 0.8, "probe", (Evidence("style", "lift 0.31"),))
    raised = store.record_findings(upload.id, [probe])[0]
    clock.advance(10)
    lower = store.record_findings(
        upload.id,
        [_match(mira.id, mira.name, 0.2, ("trainedWords", "mokafor"), ("title", "okafor"))],
    )[0]
    assert raised.id == first.id == lower.id
    assert (raised.score, raised.stage) == (0.8, "probe")
    assert (lower.score, lower.stage) == (0.8, "probe")
    assert lower.evidence == (
        Evidence("trainedWords", "mokafor"),
        Evidence("style", "lift 0.31"),
        Evidence("title", "okafor"),
    )
    assert lower.created_at < lower.updated_at == clock.now
    assert _count(engine, "finding") == 1
    assert _count(engine, "evidence") == 3


def test_duplicate_matches_in_one_call_merge(store: Store, engine: Engine):
    mira = store.add_artist("Mira Okafor")
    upload, _ = _record(store)
    findings = store.record_findings(
        upload.id,
        [
            _match(mira.id, mira.name, 0.3, ("tags", "okafor")),
            _match(mira.id, mira.name, 0.6, ("tags", "okafor"), ("title", "Okafor")),
        ],
    )
    assert len(findings) == 1
    assert findings[0].score == 0.6
    assert [e.source for e in findings[0].evidence] == ["tags", "title"]
    assert _count(engine, "evidence") == 2


def test_long_evidence_is_truncated_not_refused(store: Store):
    mira = store.add_artist("Mira Okafor")
    upload, _ = _record(store)
    finding = store.record_findings(
        upload.id, [_match(mira.id, mira.name, 0.5, ("description", "x" * 50_000))]
    )[0]
    assert len(finding.evidence[0].text) == 1000


def test_findings_filter_by_state(store: Store):
    mira = store.add_artist("Mira Okafor")
    upload, _ = _record(store)
    store.record_findings(upload.id, [_match(mira.id, mira.name, 0.5)])
    assert len(store.list_findings(state="needs_review")) == 1
    assert store.list_findings(state="dismissed") == []


def test_findings_for_unknown_upload_or_artist_are_refused(store: Store):
    mira = store.add_artist("Mira Okafor")
    upload, _ = _record(store)
    with pytest.raises(StorageError, match="no upload"):
        store.record_findings(999_999, [_match(mira.id, mira.name, 0.5)])
    with pytest.raises(StorageError, match="no artist"):
        store.record_findings(upload.id, [_match(999_999, "ghost", 0.5)])


def test_concurrent_record_findings_makes_one_row(store: Store, engine: Engine):
    mira = store.add_artist("Mira Okafor")
    upload, _ = _record(store)
    results = _race(
        lambda: store.record_findings(
            upload.id, [_match(mira.id, mira.name, 0.5, ("tags", "okafor"))]
        )
    )
    assert len({r[0].id for r in results}) == 1
    assert _count(engine, "finding") == 1
    assert _count(engine, "evidence") == 1
