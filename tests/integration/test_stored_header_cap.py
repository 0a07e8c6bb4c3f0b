"""Hostile headers: stored metadata is capped with the cut recorded (issue #20)."""

from __future__ import annotations

from storage.records import FileRecord
from storage.store import Store
from storage.stored_metadata import MAX_STORED_METADATA_CHARS


def test_three_uploads_with_huge_metadata_store_a_capped_copy(store: Store):
    huge = {"ss_output_name": "okafor", "ss_tag_frequency": "t" * 3_000_000}
    for n in range(3):
        store.record_upload(
            "civitai",
            f"v{n}",
            "big header",
            files=[FileRecord("big.safetensors", format="safetensors", metadata=huge)],
        )
    for upload in store.list_uploads():
        (f,) = upload.files
        assert f.metadata == {"ss_output_name": "okafor"}
        assert f.metadata_cut is not None
        assert f.metadata_cut.full_chars == sum(len(k) + len(v) for k, v in huge.items())
        assert f.metadata_cut.kept_chars <= MAX_STORED_METADATA_CHARS
        assert f.metadata_cut.dropped_keys == 1
