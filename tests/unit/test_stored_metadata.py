"""The stored metadata cap: whole entries kept smallest first, the cut recorded."""

from __future__ import annotations

import json

from storage.stored_metadata import CUT_KEY, MetadataCut, cap_metadata, from_column, to_column


def test_metadata_under_the_cap_is_stored_whole():
    metadata = {"ss_output_name": "okafor", "ss_tag_frequency": '{"d": {"okafor": 3}}'}
    assert to_column(metadata) == metadata
    assert from_column(to_column(metadata)) == (metadata, None)


def test_a_huge_entry_is_dropped_and_the_small_ones_kept_in_order():
    metadata = {"ss_output_name": "okafor", "ss_tag_frequency": "x" * 5000, "ss_epoch": "10"}
    stored, cut = cap_metadata(metadata, max_chars=1000)
    assert list(stored) == ["ss_output_name", "ss_epoch"]
    full = sum(len(k) + len(v) for k, v in metadata.items())
    assert cut == MetadataCut(full_chars=full, kept_chars=full - 5016, dropped_keys=1)


def test_the_column_stays_under_the_cap_and_reads_back_with_its_cut():
    metadata = {f"key{i}": "v" * 100_000 for i in range(40)} | {"ss_output_name": "okafor"}
    column = to_column(metadata)
    assert len(json.dumps(column)) < 300 * 1024
    stored, cut = from_column(column)
    assert CUT_KEY not in stored and stored["ss_output_name"] == "okafor"
    assert cut is not None and cut.dropped_keys == len(metadata) - len(stored)
    assert cut.full_chars == sum(len(k) + len(v) for k, v in metadata.items())


def test_a_hub_file_cannot_forge_the_cut_marker():
    column = to_column({CUT_KEY: "forged", "ss_output_name": "okafor"})
    assert column == {"ss_output_name": "okafor"}
