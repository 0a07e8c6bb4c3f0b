"""Hub JSON is untrusted: any JSON value read by the adapters' parsers yields a typed value or
``SourceRejected``, nothing else, and the real fixtures parse as documented."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.errors import SourceRejected
from monitor.sources.civitai import CivitaiModel, CivitaiVersion, FeedPage
from monitor.sources.html_text import html_to_text
from monitor.sources.huggingface import ModelInfo
from tests.modelfiles import shared_dir

HUBS = shared_dir() / "hubs"

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=30,
)


def _load(*parts: str) -> Any:
    return json.loads(HUBS.joinpath(*parts).read_text())


def _mutations(doc: Any) -> st.SearchStrategy[Any]:
    """The fixture with one key's value replaced by arbitrary JSON, at any depth."""
    paths: list[tuple[Any, ...]] = []

    def walk(node: Any, path: tuple[Any, ...]) -> None:
        paths.append(path)
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, (*path, key))
        elif isinstance(node, list):
            for i, value in enumerate(node[:3]):
                walk(value, (*path, i))

    walk(doc, ())

    def replace(path: tuple[Any, ...], value: Any) -> Any:
        copy = json.loads(json.dumps(doc))
        if not path:
            return value
        node = copy
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = value
        return copy

    return st.builds(replace, st.sampled_from(paths), json_values)


def _tolerant(parse: Any, raw: Any) -> None:
    with contextlib.suppress(SourceRejected):
        parse(raw)


PARSERS = {
    "civitai_version": CivitaiVersion.parse,
    "civitai_model": CivitaiModel.parse,
    "civitai_page": FeedPage.parse,
    "hf_model": ModelInfo.parse,
}


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(sorted(PARSERS)), raw=json_values)
def test_arbitrary_json_gives_a_value_or_source_rejected(name, raw):
    _tolerant(PARSERS[name], raw)


@settings(max_examples=150, deadline=None)
@given(raw=_mutations(_load("civitai", "model_version.json")))
def test_mutated_civitai_version(raw):
    _tolerant(CivitaiVersion.parse, raw)


@settings(max_examples=150, deadline=None)
@given(raw=_mutations(_load("civitai", "models_page_1.json")))
def test_mutated_civitai_page(raw):
    _tolerant(FeedPage.parse, raw)


@settings(max_examples=150, deadline=None)
@given(raw=_mutations(_load("huggingface", "model_info.json")))
def test_mutated_hf_model_info(raw):
    _tolerant(ModelInfo.parse, raw)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300))
def test_html_to_text_never_raises_and_drops_tags(html):
    text = html_to_text(html)
    assert isinstance(text, str)
    assert "<script" not in html_to_text(f"<p>{html}</p><script>alert(1)</script>").lower()


def test_fixtures_parse_as_documented():
    version = CivitaiVersion.parse(_load("civitai", "model_version.json"))
    assert version.id > 0
    assert version.trained_words
    page = FeedPage.parse(_load("civitai", "models_page_1.json"))
    assert page.next_cursor is not None
    assert page.next_cursor.endswith("|3213876")  # the model the cursor skips
    info = ModelInfo.parse(_load("huggingface", "model_info.json"))
    assert "/" in info.id
