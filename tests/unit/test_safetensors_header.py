from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import load, save

from detectors.bounded_json import MAX_JSON_DEPTH, MAX_JSON_ITEMS
from detectors.errors import HeaderError, NeedMoreBytes
from detectors.safetensors_header import (
    MAX_METADATA_KEYS,
    MAX_TENSOR_DIMS,
    MAX_TENSORS,
    header_bytes_needed,
    parse_header,
)
from tests.modelfiles import (
    FIXTURE_NAMES,
    build_safetensors,
    fixture_bytes,
    fixture_header,
    materialise,
)
from tests.strategies import materialise_loose


def raw_file(header_text: str | bytes, data_len: int = 0) -> bytes:
    """A file whose header JSON is exactly ``header_text`` (no padding)."""
    header = header_text.encode() if isinstance(header_text, str) else header_text
    return len(header).to_bytes(8, "little") + header + b"\0" * data_len


def header_error(data: bytes, **kwargs: int) -> str:
    with pytest.raises(HeaderError) as caught:
        parse_header(data, **kwargs)
    assert type(caught.value) is HeaderError
    message = str(caught.value)
    assert message
    assert "\n" not in message
    return message


def tensor(dtype: str, shape: list[int], offsets: list[int]) -> dict[str, object]:
    return {"dtype": dtype, "shape": shape, "data_offsets": offsets}


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixtures_parse_whole(name):
    data = fixture_bytes(name)
    entries = fixture_header(name)
    header = parse_header(data, file_size=len(data))
    assert header.file_size == len(data)
    assert header.header_len % 8 == 0
    assert header.metadata == entries.pop("__metadata__")
    assert {t.name: (t.dtype, list(t.shape), [t.start, t.end]) for t in header.tensors} == {
        key: (entry["dtype"], entry["shape"], entry["data_offsets"])
        for key, entry in entries.items()
    }


def test_fixture_size_matches_the_hub():
    # hubs/README.md section 5: the materialised SD1.5 file is Civitai file 3104418.
    header = parse_header(fixture_bytes("kohya_sd15_style_lora"))
    assert header.data_len == 475154
    assert header.tensors[0].shape == ()


def test_reference_writer_round_trips():
    arrays: dict[str, np.ndarray] = {
        "a": np.zeros((2, 3), np.float32),
        "b": np.arange(5, dtype=np.int64),
        "c": np.zeros((), np.float16),
        "d": np.zeros((0, 4), np.uint8),
        "e": np.ones((1, 2, 3, 4), np.float64),
        "f": np.zeros(3, np.bool_),
    }
    data = save(arrays, metadata={"ss_output_name": "x", "n": "1"})
    header = parse_header(data, file_size=len(data))
    assert header.metadata == {"ss_output_name": "x", "n": "1"}
    assert {t.name: (t.dtype, t.shape) for t in header.tensors} == {
        "a": ("F32", (2, 3)),
        "b": ("I64", (5,)),
        "c": ("F16", ()),
        "d": ("U8", (0, 4)),
        "e": ("F64", (1, 2, 3, 4)),
        "f": ("BOOL", (3,)),
    }


def test_reference_reader_loads_what_build_safetensors_writes():
    data = build_safetensors(
        {"w": ("F32", (2, 2)), "b": ("I8", (3,)), "s": ("F16", ())}, {"k": "v"}
    )
    loaded = load(data)
    assert {name: (array.dtype.str, array.shape) for name, array in loaded.items()} == {
        "w": ("<f4", (2, 2)),
        "b": ("|i1", (3,)),
        "s": ("<f2", ()),
    }


def test_first_100_bytes_ask_for_the_whole_header():
    data = fixture_bytes("kohya_sdxl_lora")
    header_len = int.from_bytes(data[:8], "little")
    with pytest.raises(NeedMoreBytes) as caught:
        parse_header(data[:100])
    assert caught.value.needed == 8 + header_len
    assert header_bytes_needed(data[:100]) == 8 + header_len
    assert parse_header(data[: caught.value.needed]).tensors == parse_header(data).tensors


@pytest.mark.parametrize("size", [0, 1, 7])
def test_fewer_than_8_bytes_ask_for_8(size):
    with pytest.raises(NeedMoreBytes) as caught:
        parse_header(b"\x10" * size)
    assert caught.value.needed == 8
    assert header_bytes_needed(b"\x10" * size) == 8


def test_header_only_prefix_parses_without_the_data():
    data = fixture_bytes("aitoolkit_flux_lora")
    needed = header_bytes_needed(data)
    header = parse_header(data[:needed], file_size=len(data))
    assert header.file_size == len(data)


def test_empty_header_is_a_file_without_tensors():
    header = parse_header(raw_file("{}"), file_size=10)
    assert (header.tensors, dict(header.metadata), header.data_len) == ((), {}, 0)


def test_sub_byte_dtypes_pack():
    data = materialise({"q": tensor("F4", [2, 2], [0, 2]), "r": tensor("F6_E2M3", [4], [2, 5])})
    assert [t.dtype for t in parse_header(data).tensors] == ["F4", "F6_E2M3"]


def test_metadata_values_that_are_not_strings_become_json_text():
    entries = {"__metadata__": {"n": 5, "b": True, "z": None, "o": {"x": [1, 2]}, "f": 0.5}}
    header = parse_header(materialise(entries))
    assert header.metadata == {"n": "5", "b": "true", "z": "null", "o": '{"x": [1, 2]}', "f": "0.5"}


@pytest.mark.parametrize(
    ("length", "expected"),
    [
        (99_999_999_999, "header length 99999999999 exceeds the 100 MB cap"),
        (2**64 - 1, "exceeds the 100 MB cap"),
        (0, "too short"),
        (1, "too short"),
    ],
)
def test_bad_length_field(length, expected):
    data = length.to_bytes(8, "little") + b"{}" * 8
    assert expected in header_error(data)
    with pytest.raises(HeaderError):
        header_bytes_needed(data)


def test_header_longer_than_the_file():
    data = raw_file('{"a":1}')
    assert "the file has 10" in header_error(data[:10], file_size=10)


@pytest.mark.parametrize(
    ("header_text", "expected"),
    [
        ('{"a":{"dtype":"F16","sha', "not valid JSON"),
        ("[1, 2]", "not '{'"),
        ('"text"', "not '{'"),
        (" {}", "not '{'"),
        ("{}{}", "not valid JSON"),
        ('{"a": NaN}', "NaN"),
        ('{"__metadata__": {"x": Infinity}}', "Infinity"),
        ('{"__metadata__": {"x": -Infinity}}', "-Infinity"),
        ('{"__metadata__": {"x": 1e999}}', "out of range"),
        ('{"__metadata__": {"x": ' + "9" * 5000 + "}}", "not usable JSON"),
        ('{"__metadata__": {"x": "a", "x": "b"}}', "repeats the key 'x'"),
        ('{"__metadata__": "none"}', "__metadata__ is not a JSON object"),
        ('{"\\ud800": {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]}}', "surrogate"),
        ('{"__metadata__": {"k": "\\udfff"}}', "surrogate"),
        ('{"a": 1}', "not a JSON object"),
        ('{"a": {"shape": [1], "data_offsets": [0, 1]}}', "unknown dtype"),
        ('{"a": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}}', "unknown dtype"),
        (
            '{"a": {"dtype": "U8", "shape": "1", "data_offsets": [0, 1]}}',
            "shape is not a JSON list",
        ),
        ('{"a": {"dtype": "U8", "shape": [-1], "data_offsets": [0, 1]}}', "integers"),
        ('{"a": {"dtype": "U8", "shape": [1.0], "data_offsets": [0, 1]}}', "integers"),
        ('{"a": {"dtype": "U8", "shape": [true], "data_offsets": [0, 1]}}', "integers"),
        ('{"a": {"dtype": "U8", "shape": [1]}}', "data_offsets is not a JSON list"),
        ('{"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1, 2]}}', "[start, end]"),
        ('{"a": {"dtype": "U8", "shape": [1], "data_offsets": [1, 0]}}', "[start, end]"),
        (
            '{"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 18446744073709551616]}}',
            "2**64",
        ),
        ('{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}', "spans 4 bytes"),
        ('{"a": {"dtype": "F4", "shape": [3], "data_offsets": [0, 2]}}', "whole bytes"),
    ],
)
def test_hostile_headers(header_text, expected):
    assert expected in header_error(raw_file(header_text, data_len=64))


def test_invalid_utf8():
    assert "not UTF-8" in header_error(raw_file(b'{"a\xff": 1}'))


def test_overlapping_offsets():
    entries = {"a": tensor("F16", [4], [0, 8]), "b": tensor("F16", [4], [4, 12])}
    assert "overlaps" in header_error(materialise(entries))


def test_out_of_order_overlap():
    entries = {"late": tensor("U8", [8], [8, 16]), "early": tensor("U8", [12], [0, 12])}
    assert "'late' overlaps" in header_error(materialise(entries))


def test_gap_between_tensors():
    entries = {"a": tensor("F16", [4], [0, 8]), "b": tensor("F16", [4], [16, 24])}
    assert "gap at data byte 8" in header_error(materialise(entries))


def test_data_must_start_at_zero():
    assert "gap at data byte 0" in header_error(materialise({"a": tensor("U8", [2], [4, 6])}))


def test_offsets_past_the_end_of_the_file():
    data = fixture_bytes("kohya_sd15_style_lora")
    assert "tensor data ends at byte" in header_error(data, file_size=len(data) - 1)
    assert "tensor data ends at byte" in header_error(data, file_size=len(data) + 1)


def test_too_many_dims():
    shape = [1] * (MAX_TENSOR_DIMS + 1)
    message = header_error(materialise({"a": tensor("U8", shape, [0, 1])}))
    assert f"over the {MAX_TENSOR_DIMS} cap" in message


@pytest.mark.parametrize("where", ["tensor", "metadata"])
def test_deep_nesting_is_refused_before_parsing(where):
    deep = "[" * 10_000 + "]" * 10_000
    text = '{"a": ' + deep + "}" if where == "tensor" else '{"__metadata__": {"x": ' + deep + "}}"
    assert f"deeper than the {MAX_JSON_DEPTH}-level cap" in header_error(raw_file(text))


def test_unbalanced_deep_nesting_is_refused():
    assert "deeper" in header_error(raw_file('{"a": ' + "{" * 100_000))


def test_brackets_inside_strings_do_not_count():
    deep = "[" * 1000 + '"\\' + "{" * 1000  # a quote and a backslash, escaped by json.dumps
    header = parse_header(raw_file(json.dumps({"__metadata__": {"x": deep}})))
    assert header.metadata["x"] == deep


def test_too_many_tensors():
    entry = '"t{}":{{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}'
    text = "{" + ",".join(entry.format(i) for i in range(MAX_TENSORS + 2)) + "}"
    assert f"over the {MAX_TENSORS} cap" in header_error(raw_file(text))


def test_too_many_metadata_keys():
    entries = {"__metadata__": {str(i): "" for i in range(MAX_METADATA_KEYS + 1)}}
    assert f"over the {MAX_METADATA_KEYS} cap" in header_error(materialise_loose(entries))


def test_too_many_json_items():
    text = '{"__metadata__": {"x": [' + ",".join("0" * (MAX_JSON_ITEMS + 1)) + "]}}"
    assert f"over the {MAX_JSON_ITEMS} cap" in header_error(raw_file(text))


def test_parsing_does_not_change_the_input():
    data = fixture_bytes("kohya_sdxl_lora")
    copy = bytes(data)
    parse_header(data)
    assert data == copy
