"""Any bytes raise only HeaderError, within the caps; what we write parses back the same."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors.architecture import infer_architecture
from detectors.errors import HeaderError, NeedMoreBytes
from detectors.file_format import sniff_format
from detectors.metadata import MAX_TEXT_FIELDS, MAX_TOTAL_CHARS, metadata_fields
from detectors.results import SafetensorsHeader
from detectors.safetensors_header import (
    LENGTH_PREFIX_BYTES,
    MAX_HEADER_BYTES,
    MAX_METADATA_KEYS,
    MAX_TENSOR_DIMS,
    MAX_TENSORS,
    header_bytes_needed,
    parse_header,
)
from tests.strategies import (
    drawn_json_headers,
    metadata_tables,
    mutated_files,
    safetensors_files,
)

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def parse_or_header_error(data: bytes) -> SafetensorsHeader | None:
    """Parse; a HeaderError is fine (NeedMoreBytes must ask for more than was given)."""
    error: HeaderError | None = None
    try:
        header = parse_header(data)
    except HeaderError as exc:
        error = exc
    if isinstance(error, NeedMoreBytes):
        assert len(data) < error.needed <= LENGTH_PREFIX_BYTES + MAX_HEADER_BYTES
        assert error.needed == header_bytes_needed(data)
    if error is not None:
        assert "\n" not in str(error)
        return None
    assert_within_caps(header, len(data))
    return header


def assert_within_caps(header: SafetensorsHeader, size: int) -> None:
    assert header.header_len <= MAX_HEADER_BYTES
    assert header.data_offset <= size
    assert len(header.tensors) <= MAX_TENSORS
    assert len(header.metadata) <= MAX_METADATA_KEYS
    end = 0
    for tensor in sorted(header.tensors, key=lambda t: (t.start, t.end)):
        assert tensor.start == end
        assert len(tensor.shape) <= MAX_TENSOR_DIMS
        end = tensor.end
    assert end == header.data_len


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes(data):
    parse_or_header_error(data)
    assert sniff_format(data) in ("safetensors", "pickle", "unknown")


@FUZZ
@given(st.binary(max_size=200))
def test_random_json_text(body):
    data = (len(body) + 1).to_bytes(8, "little") + b"{" + body
    parse_or_header_error(data)


@FUZZ
@given(drawn_json_headers())
def test_drawn_json_headers(data):
    header = parse_or_header_error(data)
    if header is not None:
        infer_architecture(header)
        metadata_fields(header.metadata)


@FUZZ
@given(mutated_files())
def test_mutated_files(data):
    header = parse_or_header_error(data)
    if header is not None:
        infer_architecture(header)


@FUZZ
@given(safetensors_files())
def test_round_trip(drawn):
    tensors, metadata, data = drawn
    header = parse_header(data, file_size=len(data))
    assert {t.name: (t.dtype, t.shape) for t in header.tensors} == tensors
    assert header.metadata == metadata
    assert header.header_len % 8 == 0
    assert sniff_format(data) == "safetensors"
    assert_within_caps(header, len(data))
    infer_architecture(header)


@FUZZ
@given(safetensors_files(), st.integers(min_value=0))
def test_any_prefix_parses_or_asks_for_more(drawn, cut):
    _, _, data = drawn
    prefix = data[: cut % (len(data) + 1)]
    needed = header_bytes_needed(data)
    if len(prefix) >= needed:
        assert parse_header(prefix) == parse_header(data)
    else:
        with pytest.raises(NeedMoreBytes) as caught:
            parse_header(prefix)
        assert len(prefix) < caught.value.needed <= needed


@FUZZ
@given(
    metadata_tables,
    st.dictionaries(
        st.sampled_from(
            ["ss_tag_frequency", "ss_datasets", "ss_dataset_dirs", "ot_config", "modelspec.tags"]
        ),
        st.text(max_size=80),
        max_size=3,
    ),
)
def test_metadata_fields_take_any_strings(metadata, special):
    fields = metadata_fields(metadata | special)
    assert len(fields) <= MAX_TEXT_FIELDS
    assert sum(len(f.text) for f in fields) <= MAX_TOTAL_CHARS
    assert len(set(fields)) == len(fields)
