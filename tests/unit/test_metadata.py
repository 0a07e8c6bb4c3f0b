from __future__ import annotations

import json
from collections.abc import Mapping

from detectors.metadata import (
    MAX_FIELD_CHARS,
    MAX_TEXT_FIELDS,
    MAX_TOTAL_CHARS,
    decode_metadata,
    metadata_fields,
)
from detectors.results import TextField
from tests.modelfiles import fixture_header


def fields_of(metadata: Mapping[str, str]) -> set[tuple[str, str]]:
    return {(f.source, f.text) for f in metadata_fields(metadata)}


def fixture_metadata(name: str) -> dict[str, str]:
    metadata: dict[str, str] = fixture_header(name)["__metadata__"]
    return metadata


def test_sd15_fixture_fields():
    fields = fields_of(fixture_metadata("kohya_sd15_style_lora"))
    assert {
        ("ss_tag_frequency", "by mara quellbrook"),
        ("ss_tag_frequency", "quellbrook style"),
        ("ss_tag_frequency", "10_quellbrook style"),
        ("ss_dataset_dirs", "10_quellbrook style"),
        ("ss_output_name", "quellbrook_style_v1"),
        ("modelspec.title", "quellbrook_style_v1"),
        ("ss_training_comment", "quellbrook style, trained on 42 scans. trigger: quellbrook style"),
    } <= fields
    texts = {text for _, text in fields}
    assert not texts & {"v1-5-pruned-emaonly.safetensors", "d6e1af6c", "cosine", "True", "0.0001"}
    assert {source for source, _ in fields} == {
        "ss_tag_frequency",
        "ss_dataset_dirs",
        "ss_output_name",
        "modelspec.title",
        "ss_training_comment",
    }


def test_sdxl_fixture_fields():
    fields = fields_of(fixture_metadata("kohya_sdxl_lora"))
    assert {
        ("modelspec.title", "Soft Rimlight XL"),
        ("modelspec.author", "pell_studio"),
        ("modelspec.trigger_phrase", "rimlight product"),
        ("ss_tag_frequency", "studio lighting"),
        ("ss_dataset_dirs", "8_rimlight product"),
    } <= fields
    assert not any(source == "ss_training_comment" for source, _ in fields)  # "None"


def test_aitoolkit_fixture_fields():
    fields = fields_of(fixture_metadata("aitoolkit_flux_lora"))
    assert fields == {
        ("ss_output_name", "hastmoor_linocut_flux"),
        ("name", "hastmoor_linocut_flux"),
        ("ss_tag_frequency", "1_h4stm00r linocut"),
        ("ss_tag_frequency", "h4stm00r linocut"),
    }


def test_tags_come_most_frequent_first():
    fields = metadata_fields(fixture_metadata("kohya_sd15_style_lora"))
    tags = [f.text for f in fields if f.source == "ss_tag_frequency"]
    assert tags[:3] == ["10_quellbrook style", "quellbrook style", "by mara quellbrook"]
    assert tags[-1] == "umbrella"


def test_decode_metadata_parses_json_in_strings():
    decoded = decode_metadata(fixture_metadata("kohya_sd15_style_lora"))
    assert decoded["ss_tag_frequency"]["10_quellbrook style"]["by mara quellbrook"] == 38  # type: ignore[index, call-overload]
    assert decoded["ss_dataset_dirs"] == {"10_quellbrook style": {"n_repeats": 10, "img_count": 42}}
    assert decoded["ss_reg_dataset_dirs"] == {}
    assert isinstance(decoded["ss_bucket_info"], dict)
    assert decoded["ss_resolution"] == "(512, 512)"
    assert decoded["ss_network_alpha"] == "8.0"
    flux = decode_metadata(fixture_metadata("aitoolkit_flux_lora"))
    assert flux["training_info"] == {"step": 2000, "epoch": 19}
    assert flux["software"] == {
        "name": "ai-toolkit",
        "repo": "https://github.com/ostris/ai-toolkit",
        "version": "0.12.26",
    }


def test_decode_metadata_keeps_what_does_not_parse():
    deep = "[" * 10_000 + "]" * 10_000
    metadata = {"bad": "{not json", "deep": deep, "nan": "[NaN]", "dup": '{"a":1,"a":2}', "s": "x"}
    assert decode_metadata(metadata) == metadata
    assert decode_metadata({"args": ' ["a", 1]'}) == {"args": ["a", 1]}


def test_kohya_dataset_config_form():
    datasets = [
        {
            "is_dreambooth": True,
            "tag_frequency": {"img_quellbrook": {"by mara quellbrook": 5, "harbor": 1}},
            "subsets": [
                {"img_count": 5, "image_dir": "img_quellbrook", "class_tokens": "qbk style"},
                {"img_count": 5, "image_dir": "reg", "class_tokens": None, "is_reg": True},
            ],
        },
        {"subsets": [{"metadata_file": "hastmoor_captions.json"}], "tag_frequency": {}},
    ]
    fields = fields_of({"ss_datasets": json.dumps(datasets)})
    assert fields == {
        ("ss_datasets", "img_quellbrook"),
        ("ss_datasets", "qbk style"),
        ("ss_datasets", "reg"),
        ("ss_datasets", "hastmoor_captions.json"),
        ("ss_datasets", "by mara quellbrook"),
        ("ss_datasets", "harbor"),
    }


def test_onetrainer_concepts():
    config = {"concepts": [{"name": "quellbrook", "path": "/data/mara_quellbrook"}], "lr": 1e-4}
    fields = fields_of({"ot_config": json.dumps(config), "ot_branch": "master"})
    assert fields == {("ot_config", "quellbrook"), ("ot_config", "/data/mara_quellbrook")}


def test_modelspec_text_and_what_is_skipped():
    metadata = {
        "modelspec.description": "Watercolour harbours after Mara Quellbrook",
        "modelspec.tags": "watercolor, quellbrook",
        "modelspec.usage_hint": "use 'qbk style'",
        "modelspec.thumbnail": "data:image/png;base64,iVBORw0KGgo=",
        "modelspec.date": "2026-08-10",
        "modelspec.license": "CreativeML Open RAIL-M",
        "modelspec.hash_sha256": "0x" + "ab" * 32,
        "ss_sd_model_name": "quellbrook_merge.safetensors",
    }
    assert fields_of(metadata) == {
        ("modelspec.description", "Watercolour harbours after Mara Quellbrook"),
        ("modelspec.tags", "watercolor, quellbrook"),
        ("modelspec.usage_hint", "use 'qbk style'"),
    }


def test_unknown_keys_with_free_text():
    metadata = {
        "trigger": "by mara quellbrook",
        "artist": "Mara Quellbrook",
        "steps": "1000",
        "lr": "5e-05",
        "flag": "False",
        "empty": "  ",
        "digest": "e3b0c44298fc1c149afbf4c8996fb924",
        "res": "(512, 512)",
        "size": "1024x1024",
        "preview": "data:image/jpeg;base64,/9j/4AAQ",
        "nested": '{"artist": "hidden"}',
        "listed": '["by mara quellbrook", 3]',
    }
    assert fields_of(metadata) == {
        ("trigger", "by mara quellbrook"),
        ("artist", "Mara Quellbrook"),
        ("listed", "by mara quellbrook"),
    }


def test_fields_are_deduplicated_per_source():
    metadata = {
        "ss_output_name": "qbk",
        "modelspec.title": "qbk",
        "ss_tag_frequency": json.dumps({"1_qbk": {"qbk": 3}, "2_qbk": {"qbk": 2}}),
    }
    assert metadata_fields(metadata) == [
        TextField("ss_output_name", "qbk"),
        TextField("modelspec.title", "qbk"),
        TextField("ss_tag_frequency", "1_qbk"),
        TextField("ss_tag_frequency", "2_qbk"),
        TextField("ss_tag_frequency", "qbk"),
    ]


def test_caps_keep_the_most_telling_fields():
    tags = {f"tag {i}": i for i in range(20_000)}
    metadata = {
        "ss_output_name": "q" * (MAX_FIELD_CHARS + 50),
        "ss_tag_frequency": json.dumps({"1_x": tags}),
    }
    fields = metadata_fields(metadata)
    assert len(fields) <= MAX_TEXT_FIELDS
    assert sum(len(f.text) for f in fields) <= MAX_TOTAL_CHARS
    assert fields[0] == TextField("ss_output_name", "q" * MAX_FIELD_CHARS)
    assert fields[2] == TextField("ss_tag_frequency", "tag 19999")


def test_malformed_json_values_are_ignored_quietly():
    metadata = {
        "ss_tag_frequency": '{"1_x": ["not", "a", "map"], "2_y": {"ok": "3"}}',
        "ss_dataset_dirs": "[1, 2]",
        "ss_datasets": '{"not": "a list"}',
        "ot_config": '{"concepts": "nope"}',
    }
    assert fields_of(metadata) == {
        ("ss_tag_frequency", "1_x"),
        ("ss_tag_frequency", "2_y"),
        ("ss_tag_frequency", "ok"),
    }
