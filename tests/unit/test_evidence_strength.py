"""Tag counts from kohya's ss_tag_frequency, read within the JSON caps."""

from __future__ import annotations

import json

from monitor.web.evidence_strength import strength, tag_counts
from storage.records import FileRecord


def lora(**metadata: object) -> FileRecord:
    return FileRecord(filename="x.safetensors", metadata=metadata)  # type: ignore[arg-type]


def test_counts_add_up_over_folders_and_files_in_any_case():
    one = lora(
        ss_tag_frequency=json.dumps(
            {"10_a": {"By Mara Quellbrook": 7, "ink": 3}, "5_b": {"by mara quellbrook": 5}}
        ),
        ss_num_train_images="40",
    )
    two = lora(ss_tag_frequency={"x": {"by mara quellbrook": 2}}, ss_num_train_images=10)
    counts = tag_counts([one, two])
    assert strength(counts, "ss_tag_frequency", "by mara quellbrook ") == "×14 of 50 images"
    assert strength(counts, "ss_tag_frequency", "ink") == "×3 of 50 images"
    assert strength(counts, "description", "ink") is None  # only tag lines are counted
    assert strength(counts, "ss_tag_frequency", "absent") is None


def test_odd_metadata_gives_no_count_and_no_error():
    nested = "[" * 10_000 + "]" * 10_000
    odd = [
        lora(ss_tag_frequency=nested),
        lora(ss_tag_frequency="not json"),
        lora(ss_tag_frequency=json.dumps({"a": {"t": "12", "u": True, "v": -3, "w": 1.5}})),
        lora(ss_tag_frequency=json.dumps({"a": {"t": 2}}), ss_num_train_images="9" * 40),
    ]
    counts = tag_counts(odd)
    assert set(counts) == {"t"}
    assert strength(counts, "ss_tag_frequency", "t") == "×2 images"
