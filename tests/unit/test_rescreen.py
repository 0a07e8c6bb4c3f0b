"""Re-screening stored text: the cheap raw pass never hides a name the full screening finds."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.metadata import metadata_fields
from detectors.names import ArtistIndex
from detectors.rescreen import StoredFile, rescreen, screen_groups
from detectors.results import ArtistMatch, ArtistRef, TextField
from tests.modelfiles import FIXTURE_NAMES, fixture_header

ARTISTS = (ArtistRef(1, "Mara Quellbrook"), ArtistRef(2, "Jörg Ünterwald", ("joerg_u",)))


def _full(index: ArtistIndex, files, hub_text) -> list[ArtistMatch]:
    """Screening as a poll does it: each readable file, the first with the hub text."""
    readable = [f for f in files if f.format == "safetensors"]
    if not readable:
        return index.match(hub_text)
    found: list[ArtistMatch] = []
    for i, f in enumerate(readable):
        found += index.match(
            tuple(metadata_fields(f.metadata)) + (tuple(hub_text) if i == 0 else ())
        )
    return found


def _kohya(tags: dict[str, int], **extra: str) -> dict[str, str]:
    # kohya writes its JSON values with json.dumps defaults: non-ASCII as \u escapes
    return {
        "ss_tag_frequency": json.dumps({"10_set": tags}),
        "ss_output_name": "style_v1",
        "ss_network_dim": "32",
        **extra,
    }


CASES = [
    pytest.param([StoredFile("safetensors", fixture_header(n)["__metadata__"])], (), id=n)
    for n in FIXTURE_NAMES
] + [
    pytest.param(
        [StoredFile("safetensors", _kohya({"jörg ünterwald style": 3}))], (), id="escaped"
    ),
    pytest.param(
        [StoredFile("safetensors", _kohya({}, ss_training_comment="by\nmara quellbrook"))],
        (),
        id="newline",
    ),
    pytest.param([StoredFile("pickle", {})], (TextField("name", "joerg_u v2"),), id="hub-only"),
    pytest.param(
        [StoredFile("safetensors", {}), StoredFile("safetensors", _kohya({"quellbrook": 1}))],
        (TextField("description", "by Mara Quellbrook"),),
        id="two-files",
    ),
    pytest.param([StoredFile("safetensors", _kohya({"1girl": 9}))], (), id="nobody"),
]


@pytest.mark.parametrize(("files", "hub_text"), CASES)
def test_rescreen_gives_what_screening_gives(files, hub_text):
    index = ArtistIndex.build(ARTISTS)
    assert rescreen(index, screen_groups(files, hub_text)) == _full(index, files, hub_text)


def test_rescreen_finds_escaped_names():
    index = ArtistIndex.build(ARTISTS)
    files = [StoredFile("safetensors", _kohya({"jörg ünterwald style": 3}))]
    assert "\\u00f6" in files[0].metadata["ss_tag_frequency"]
    assert [m.artist for m in rescreen(index, screen_groups(files, ()))] == ["Jörg Ünterwald"]


def test_groups_keep_the_hub_text_with_the_first_readable_file():
    hub = (TextField("name", "hub words"),)
    files = [StoredFile("pickle", {}), StoredFile("safetensors", {"ss_output_name": "a b"})]
    assert screen_groups(files, hub) == [[TextField("ss_output_name", "a b"), *hub]]
    assert screen_groups([StoredFile("pickle", {})], hub) == [list(hub)]
    assert screen_groups([], ()) == []


_words = st.sampled_from(
    ["mara", "quellbrook", "Quellbrook", "jörg", "ünterwald", "joerg_u", "style", "by", "x"]
)
_text = st.lists(_words, max_size=5).map(" ".join) | st.text(max_size=20)


@settings(max_examples=200, deadline=None)
@given(
    tags=st.dictionaries(_text, st.integers(0, 9), max_size=4),
    comment=_text,
    hub=st.lists(_text, max_size=2),
)
def test_rescreen_never_misses_what_screening_finds(tags, comment, hub):
    index = ArtistIndex.build(ARTISTS)
    files = [StoredFile("safetensors", _kohya(tags, ss_training_comment=comment))]
    hub_text = tuple(TextField("description", t) for t in hub)
    assert rescreen(index, screen_groups(files, hub_text)) == _full(index, files, hub_text)
