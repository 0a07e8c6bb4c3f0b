"""The bounded JSON pre-scan: what counts toward depth and items, and what does not."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.bounded_json import MAX_JSON_DEPTH, loads_bounded
from detectors.errors import HeaderError
from detectors.results import JSONValue

DEEP = "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)
TOO_DEEP = f"deeper than the {MAX_JSON_DEPTH}-level cap"


def nested(depth: int, opener: str = "[", closer: str = "]") -> str:
    return opener * depth + closer * depth


def refusal(text: str) -> str:
    with pytest.raises(HeaderError) as caught:
        loads_bounded(text, "header")
    return str(caught.value)


@pytest.mark.parametrize(
    "text",
    [
        json.dumps({"a": "[" * 1000, "b": "{" * 1000}),
        json.dumps({"a": '\\"' + "[" * 1000}),  # an escaped backslash, then an escaped quote
        json.dumps({"a": '"' * 50 + "[" * 1000 + '\\\\"'}),  # runs of escaped quotes
        json.dumps({"": "", "b": "", "c": "[" * 100, "d": ""}),  # empty strings and keys
        json.dumps(["[", "]" * 100, "[" * 100, "{"]),
        json.dumps({"a": nested(MAX_JSON_DEPTH - 1)}),  # exactly the cap
    ],
)
def test_brackets_inside_strings_never_count(text):
    assert loads_bounded(text, "header") == json.loads(text)


def test_a_quote_after_an_escaped_backslash_ends_the_string():
    # "\\" is one backslash: the next quote closes the string, so the brackets after count.
    text = '{"a": "x\\\\", "b": ' + nested(MAX_JSON_DEPTH + 1) + "}"
    assert TOO_DEEP in refusal(text)


@pytest.mark.parametrize(("opener", "closer"), [("[", "]"), ("{", "}")], ids=["arrays", "objects"])
def test_one_level_past_the_cap_is_refused(opener, closer):
    if opener == "{":
        deep = '{"k":' * MAX_JSON_DEPTH + "{}" + "}" * MAX_JSON_DEPTH
    else:
        deep = nested(MAX_JSON_DEPTH + 1)
    assert TOO_DEEP in refusal(deep)


def test_mixed_brackets_count_as_one_depth():
    deep = '[{"k":' * 9 + "0" + "}]" * 9  # 18 levels
    assert TOO_DEEP in refusal(deep)
    ok = '[{"k":' * 8 + "0" + "}]" * 8  # 16 levels
    assert loads_bounded(ok, "header") == json.loads(ok)


def test_many_shallow_containers_pass():
    text = json.dumps({f"t{i}": {"shape": [i, 2], "data_offsets": [0, 1]} for i in range(5000)})
    assert loads_bounded(text, "header") == json.loads(text)


def test_truncated_shallow_json_is_reported_as_invalid_not_deep():
    assert "not valid JSON" in refusal('{"a":{"dtype":"F16","sha')
    assert "not valid JSON" in refusal("[[[1, 2]")


def test_unclosed_brackets_past_the_cap_are_refused():
    assert TOO_DEEP in refusal("[" * (MAX_JSON_DEPTH + 1))
    assert TOO_DEEP in refusal("[" * 8 + nested(MAX_JSON_DEPTH - 4))


def test_duplicate_keys_are_refused_at_any_depth():
    assert "repeats the key 'x'" in refusal('{"a": [{"x": 1, "y": 2, "x": 3}]}')


def depth_of(value: JSONValue) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth_of, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth_of, value), default=0)
    return 0


tricky_text = st.text(alphabet='[]{}",:\\ ab\n', max_size=12)
json_trees = st.recursive(
    st.none() | st.integers() | tricky_text,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(tricky_text, children, max_size=3)
    ),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(json_trees, st.integers(min_value=0, max_value=MAX_JSON_DEPTH + 2))
def test_depth_is_judged_exactly_whatever_the_strings_hold(tree, wraps):
    value: JSONValue = tree
    for _ in range(wraps):
        value = [value]
    text = json.dumps(value)
    if depth_of(value) > MAX_JSON_DEPTH:
        assert TOO_DEEP in refusal(text)
    else:
        assert loads_bounded(text, "header") == value
