"""Metadata no trainer writes is reported as malformed, with a reason, never as clean."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from detectors.errors import HeaderError
from detectors.metadata import MAX_VALUE_JSON_ITEMS, read_metadata
from detectors.names import ArtistIndex
from detectors.results import ArtistRef
from detectors.safetensors_header import parse_header
from detectors.screening import Screening, screen_header
from tests.modelfiles import FIXTURE_NAMES, fixture_header, materialise

MARA = ArtistRef(1, "Mara Quellbrook")


def screened(header: dict[str, Any]) -> Screening:
    return screen_header(parse_header(materialise(header)), ArtistIndex.build([MARA]))


def with_metadata(**values: Any) -> dict[str, Any]:
    header = copy.deepcopy(fixture_header("kohya_sd15_style_lora"))
    header["__metadata__"].update(values)
    return header


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_real_trainer_headers_are_well_formed(name):
    assert screened(fixture_header(name)).malformed is None


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (10, "a number"),
        (["a"], "a list"),
        ({"a": "b"}, "an object"),
        (None, "null"),
        (True, "a boolean"),
    ],
)
def test_a_value_that_is_not_a_string_is_malformed(value, kind):
    result = screened(with_metadata(ss_epoch=value))
    assert result.malformed == f"__metadata__ 'ss_epoch' is {kind}, not a string"


def test_deeply_nested_tag_frequency_is_malformed():
    deep = "[" * 10_000 + "]" * 10_000
    result = screened(with_metadata(ss_tag_frequency=deep))
    assert result.malformed == "metadata 'ss_tag_frequency' nests deeper than the 16-level cap"


def test_too_many_items_in_one_value_is_malformed():
    huge = json.dumps({"10_x": {f"t{i}": 1 for i in range(MAX_VALUE_JSON_ITEMS // 2)}})
    result = read_metadata({"ss_tag_frequency": huge})
    assert result.malformed is not None
    assert f"over the {MAX_VALUE_JSON_ITEMS} cap" in result.malformed


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (
            '{"10_x": {"a": 1}, "10_x": {"b": 2}}',
            "metadata 'ss_tag_frequency': JSON object repeats",
        ),
        ('{"10_x": {"a": NaN}}', "metadata 'ss_tag_frequency': JSON holds NaN"),
        ('{"10_x": {"a": 1}', "metadata 'ss_tag_frequency' is not valid JSON"),
        ('["10_x"]', "metadata 'ss_tag_frequency' is not a JSON object"),
        ('{"10_x": "\\ud800"}', "unpaired surrogate"),
    ],
)
def test_broken_json_where_trainers_write_json_is_malformed(value, reason):
    result = read_metadata({"ss_tag_frequency": value})
    assert result.malformed is not None
    assert reason in result.malformed


def test_text_that_merely_starts_with_a_bracket_is_not_malformed():
    result = read_metadata({"ss_training_comment": "[WIP] watercolour {v2}"})
    assert result.malformed is None
    assert [f.text for f in result.fields] == ["[WIP] watercolour {v2}"]


def test_deep_json_in_any_value_is_malformed_even_where_unread():
    assert read_metadata({"ss_bucket_info": "{" * 40 + "}" * 40}).malformed is not None
    assert read_metadata({"ss_learning_rate": "[" * 20 + "]" * 20}).malformed is not None


def test_what_can_be_read_is_still_screened():
    result = screened(with_metadata(ss_epoch=3, ss_tag_frequency="[" * 100 + "]" * 100))
    assert result.malformed is not None
    assert [m.artist for m in result.matches] == ["Mara Quellbrook"]  # from ss_output_name


def test_a_lone_surrogate_in_the_header_itself_is_refused():
    raw = b'{"__metadata__": {"ss_output_name": "\\udc80"}}'
    data = len(raw).to_bytes(8, "little") + raw
    with pytest.raises(HeaderError, match="unpaired surrogate"):
        parse_header(data)
