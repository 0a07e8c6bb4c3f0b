"""Artist name matching: normalisation, the index, scoring and evidence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from detectors.name_normalise import normalise, normalise_many, screen_form, skeleton, tokens
from detectors.names import MAX_QUOTE_CHARS, STRENGTH, ArtistIndex, field_kind
from detectors.results import ArtistRef, Evidence, TextField

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "hubs" / "safetensors"

MARA = ArtistRef(1, "Mara Quellbrook", ("M. Quellbrook",))
ORIEL = ArtistRef(2, "Oriel Hastmoor")
ARTHUR = ArtistRef(3, "Arthur")
JOHN_SMITH = ArtistRef(4, "John Smith")
ZOE = ArtistRef(5, "Zoë Ançelin")
# Two artists sharing the distinctive-looking surname "Vantorre".
ELSA = ArtistRef(6, "Elsa Vantorre")
PIET = ArtistRef(7, "Piet Vantorre")

ARTISTS = (MARA, ORIEL, ARTHUR, JOHN_SMITH, ZOE, ELSA, PIET)


@pytest.fixture(scope="module")
def index() -> ArtistIndex:
    return ArtistIndex.build(ARTISTS)


def matched(index: ArtistIndex, text: str, source: str = "ss_tag_frequency") -> dict[str, float]:
    return {m.artist: m.score for m in index.match([TextField(source, text)])}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Маrа Quellbrook", "mara quellbrook"),  # Cyrillic М and а
        ("mara\u200dquell\u200bbrook", "maraquellbrook"),  # zero-width joiner and space
        ("mara_quellbrook", "mara quellbrook"),
        ("MaraQuellbrook", "mara quellbrook"),
        ("m4ra qu3llbrook", "mara quellbrook"),
        ("Mára Quéllbrook", "mara quellbrook"),
        ("quellbrook-000010", "quellbrook 000010"),
        ("quellbrook_v2", "quellbrook v 2"),
        ("quellbrookV2", "quellbrook v 2"),
        ("quellbrook2", "quellbrook 2"),
        ("1girl, v2, sd15", "1 girl v 2 sd 15"),
        ("h4stm00r linocut", "hastmoor linocut"),
        ("(by mara quellbrook:1.2)", "by mara quellbrook 1 2"),
        ("ΜΑRΑ", "mara"),  # Greek capitals
        ("Łódź", "lodz"),
        ("ＦＵＬＬＷＩＤＴＨ", "fullwidth"),
        ("", ""),
    ],
)
def test_normalise_known_cases(text: str, expected: str) -> None:
    assert normalise(text) == expected


def test_tokens_point_back_at_the_original_text() -> None:
    text = "art by Маrа\u200dQu3llbrook!"
    found = tokens(text)
    assert [t.text for t in found] == ["art", "by", "mara", "quellbrook"]
    assert [text[t.start : t.end] for t in found] == ["art", "by", "Маrа", "Qu3llbrook"]


def test_normalise_many_agrees_with_normalise() -> None:
    texts = ["Mara Quellbrook", "", "a\nb", "Zoë", "m4ra", "x\u2028y"]
    assert normalise_many(texts) == [normalise(t) for t in texts]


def test_skeleton_merges_i_l_and_1() -> None:
    assert skeleton("quellbrook") == skeleton("queilbrook") == "queiibrook"
    assert screen_form("Que1lbrook") == "queiibrook"


@pytest.mark.parametrize(
    "text",
    [
        "Маrа Quellbrook",
        "mara\u200dquellbrook",
        "mara_quellbrook",
        "MaraQuellbrook",
        "maraquellbrook",
        "m4ra qu3llbrook",
        "Mára Quéllbrook",
        "MARA QUELLBROOK",
        "mara queIlbrook",  # capital I for l
    ],
)
def test_spellings_of_the_full_name_match(index: ArtistIndex, text: str) -> None:
    assert matched(index, text) == {"Mara Quellbrook": STRENGTH["name", "tag", False]}


@pytest.mark.parametrize(
    "text", ["quellbrook-000010", "quellbrook_v2", "quellbrookV2", "10_quellbrook style"]
)
def test_distinctive_surname_with_suffixes_matches(index: ArtistIndex, text: str) -> None:
    assert set(matched(index, text)) == {"Mara Quellbrook"}


def test_alias_matches(index: ArtistIndex) -> None:
    hits = index.hits([TextField("prompt", "M. Quellbrook")])
    assert [(h.artist, h.kind) for h in hits] == [("Mara Quellbrook", "name")]


def test_diacritics_in_the_registered_name_match_plain_text(index: ArtistIndex) -> None:
    assert set(matched(index, "zoe ancelin")) == {"Zoë Ançelin"}
    assert set(matched(index, "ZOË_ANÇELIN")) == {"Zoë Ançelin"}


def test_a_name_inside_a_longer_word_does_not_match(index: ArtistIndex) -> None:
    assert matched(index, "arthurian legends") == {}
    assert matched(index, "quellbrookish") == {}
    assert set(matched(index, "arthur")) == {"Arthur"}


def test_a_name_inside_a_longer_registered_name_is_dropped() -> None:
    index = ArtistIndex.build([ARTHUR, ArtistRef(8, "Arthur Rackham")])
    assert set(matched(index, "by arthur rackham")) == {"Arthur Rackham"}


def test_common_surname_alone_does_not_match(index: ArtistIndex) -> None:
    assert matched(index, "smith") == {}
    assert matched(index, "blacksmith smith") == {}
    assert set(matched(index, "john smith")) == {"John Smith"}
    assert set(matched(index, "JohnSmith_v2")) == {"John Smith"}


def test_shared_surname_matches_neither_artist_alone(index: ArtistIndex) -> None:
    assert matched(index, "vantorre style") == {}
    assert set(matched(index, "by elsa vantorre")) == {"Elsa Vantorre"}


def test_by_name_in_tags_outscores_a_passing_mention(index: ArtistIndex) -> None:
    strong = matched(index, "by mara quellbrook", "ss_tag_frequency")["Mara Quellbrook"]
    passing = matched(index, "I like mara quellbrook a lot", "description")["Mara Quellbrook"]
    surname = matched(index, "quellbrook", "description")["Mara Quellbrook"]
    assert strong >= 0.9
    assert passing == pytest.approx(0.5)
    assert strong > passing > surname


@pytest.mark.parametrize(
    ("text", "source", "strength"),
    [
        ("by mara quellbrook", "ss_tag_frequency", 0.95),
        ("mara quellbrook style", "trainedWords", 0.95),
        ("in the style of Mara Quellbrook", "prompt", 0.95),
        ("mara_quellbrook_v1", "ss_output_name", 0.90),
        ("mara quellbrook", "modelspec.trigger_phrase", 0.80),
        ("thanks to mara quellbrook", "modelspec.description", 0.50),
        ("quellbrook style", "ss_tag_frequency", 0.60),
        ("quellbrook", "ss_training_comment", 0.30),
    ],
)
def test_hit_strength(index: ArtistIndex, text: str, source: str, strength: float) -> None:
    (hit,) = index.hits([TextField(source, text)])
    assert hit.strength == pytest.approx(strength)


def test_independent_fields_raise_the_score(index: ArtistIndex) -> None:
    one = index.match([TextField("ss_output_name", "quellbrook_v1")])
    two = index.match(
        [TextField("ss_output_name", "quellbrook_v1"), TextField("modelspec.title", "Quellbrook")]
    )
    repeated = index.match([TextField("description", "quellbrook, quellbrook and quellbrook")])
    assert two[0].score > one[0].score
    assert repeated[0].score == pytest.approx(0.30)
    assert two[0].score < 1


def test_evidence_quotes_the_field_as_found(index: ArtistIndex) -> None:
    fields = [
        TextField("ss_output_name", "stems_v3"),
        TextField("ss_tag_frequency", "by Маrа\u200dQuellbrook"),
    ]
    (match,) = index.match(fields)
    assert match.artist_id == MARA.artist_id
    assert match.stage == "metadata"
    assert match.evidence == (Evidence("ss_tag_frequency", "by Маrа\u200dQuellbrook"),)
    (hit,) = index.hits(fields)
    assert fields[1].text[hit.start : hit.end] == "Маrа\u200dQuellbrook"
    assert (hit.matched, hit.kind, hit.context) == ("mara quellbrook", "name", True)


def test_long_fields_are_quoted_around_the_hit(index: ArtistIndex) -> None:
    text = "x " * 300 + "painted like Mara Quellbrook does" + " y" * 300
    (hit,) = index.hits([TextField("description", text)])
    assert len(hit.text) == MAX_QUOTE_CHARS
    assert "Mara Quellbrook" in hit.text
    assert hit.text in text


def test_matches_are_sorted_by_score(index: ArtistIndex) -> None:
    fields = [
        TextField("description", "also see arthur"),
        TextField("ss_tag_frequency", "by oriel hastmoor"),
    ]
    assert [m.artist for m in index.match(fields)] == ["Oriel Hastmoor", "Arthur"]


def test_kohya_fixture_names_mara_quellbrook(index: ArtistIndex) -> None:
    from detectors.metadata import metadata_fields

    header = json.loads((FIXTURES / "kohya_sd15_style_lora.json").read_text())
    (match,) = index.match(metadata_fields(header["__metadata__"]))
    assert match.artist == "Mara Quellbrook"
    assert match.score >= 0.95
    assert match.evidence[0] == Evidence("ss_tag_frequency", "by mara quellbrook")


def test_aitoolkit_fixture_names_hastmoor_in_leetspeak(index: ArtistIndex) -> None:
    from detectors.metadata import metadata_fields

    header = json.loads((FIXTURES / "aitoolkit_flux_lora.json").read_text())
    (match,) = index.match(metadata_fields(header["__metadata__"]))
    assert match.artist == "Oriel Hastmoor"
    assert Evidence("ss_tag_frequency", "h4stm00r linocut") in match.evidence


def test_short_names_are_not_indexed() -> None:
    index = ArtistIndex.build([ArtistRef(9, "Bo"), MARA])
    assert index.unindexed == [(9, "bo")]
    assert matched(index, "bo bo bo") == {}


def test_an_empty_index_matches_nothing() -> None:
    assert ArtistIndex.build([]).match([TextField("prompt", "anything")]) == []


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("ss_tag_frequency", "tag"),
        ("trainedWords", "tag"),
        ("prompt", "tag"),
        ("negativePrompt", "text"),
        ("ss_dataset_dirs", "name"),
        ("ss_output_name", "name"),
        ("modelspec.title", "name"),
        ("name", "name"),
        ("description", "text"),
        ("ss_training_comment", "text"),
    ],
)
def test_field_kind(source: str, kind: str) -> None:
    assert field_kind(source) == kind


@given(st.text())
def test_normalise_is_idempotent(text: str) -> None:
    once = normalise(text)
    assert normalise(once) == once


@given(st.text())
def test_tokens_agree_with_normalise(text: str) -> None:
    found = tokens(text)
    assert " ".join(t.text for t in found) == normalise(text)
    assert all(0 <= t.start < t.end <= len(text) for t in found)


def test_lone_surrogates_vanish_and_control_characters_separate(index: ArtistIndex) -> None:
    assert normalise("mara\ud800quellbrook\x00x") == "maraquellbrook x"
    assert set(matched(index, "by mara\ud800quellbrook")) == {"Mara Quellbrook"}


@pytest.mark.parametrize("text", ["john  smith", "john_-_smith", "JOHNSMITH", "John-Smith"])
def test_separator_runs_and_joined_forms_match_a_common_surname_name(
    index: ArtistIndex, text: str
) -> None:
    assert set(matched(index, text)) == {"John Smith"}


@pytest.mark.parametrize(
    ("text", "artist"),
    [
        ("quell brook style", "Mara Quellbrook"),
        ("Quell-brook style", "Mara Quellbrook"),
        ("by mara quell_brook", "Mara Quellbrook"),
        ("10_quell brookesque", "Mara Quellbrook"),
        ("j o h n smith", "John Smith"),
    ],
)
def test_a_name_split_inside_a_word_still_matches(
    index: ArtistIndex, text: str, artist: str
) -> None:
    assert set(matched(index, text)) == {artist}


@pytest.mark.parametrize("text", ["xquell brook style", "quell brookx style", "quell, brook style"])
def test_a_split_name_must_start_and_end_on_word_boundaries(index: ArtistIndex, text: str) -> None:
    assert matched(index, text, source="modelspec.tags") == {}


@pytest.mark.parametrize("text", ["John, Smith", "john | smith", "john; smith", "john (smith)"])
def test_a_name_never_matches_across_a_tag_or_phrase_break(index: ArtistIndex, text: str) -> None:
    assert matched(index, text, source="modelspec.tags") == {}


_ANY_TEXT = st.text(st.characters(blacklist_categories=()))


@given(st.lists(st.tuples(st.text(max_size=12), _ANY_TEXT), max_size=6))
def test_match_never_raises(pairs: list[tuple[str, str]]) -> None:
    index = ArtistIndex.build(ARTISTS)
    fields = [TextField(source, text) for source, text in pairs]
    for match in index.match(fields):
        assert 0 < match.score < 1
        assert match.evidence


_INVISIBLE = st.sampled_from(["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"])


@given(st.data())
def test_zero_width_characters_inside_a_name_still_match(data: st.DataObject) -> None:
    name = "Mara Quellbrook"
    cuts = data.draw(st.lists(st.integers(0, len(name)), min_size=1, max_size=4))
    text = name
    for cut in sorted(cuts, reverse=True):
        text = text[:cut] + data.draw(_INVISIBLE) + text[cut:]
    index = ArtistIndex.build([MARA])
    assert [m.artist for m in index.match([TextField("prompt", text)])] == [name]


# What a text names is remembered across calls (tags recur across uploads); the answer must
# not depend on what was screened before, nor on the cache filling up and starting afresh.
_UPLOADS = (
    ("1girl", "watercolor", "by mara quellbrook", "harbor"),
    ("watercolor", "1girl", "quellbrook style"),
    ("10_quellbrook style", "harbor", "by mara quellbrook"),
    ("watercolor", "Hastmoor, Oriel", "harbor"),
    ("1girl", "harbor"),
    ("hastmoor", "1girl", "w a t e r"),
    ("by mara quellbrook", "by mara quellbrook", "1girl"),
)


def _as_fields(texts: tuple[str, ...]) -> list[TextField]:
    return [TextField("ss_tag_frequency", text) for text in texts]


def _answers(index: ArtistIndex) -> list[list[tuple[str, float, tuple[Evidence, ...]]]]:
    return [
        [(m.artist, m.score, m.evidence) for m in index.match(_as_fields(texts))]
        for texts in _UPLOADS
    ]


def _fresh_answers() -> list[list[tuple[str, float, tuple[Evidence, ...]]]]:
    answers = []
    for texts in _UPLOADS:
        index = ArtistIndex.build(ARTISTS)
        answers.append([(m.artist, m.score, m.evidence) for m in index.match(_as_fields(texts))])
    return answers


def test_remembered_texts_give_the_answers_a_fresh_index_gives() -> None:
    fresh = _fresh_answers()
    assert [bool(answer) for answer in fresh] == [True, True, True, True, False, True, True]
    index = ArtistIndex.build(ARTISTS)
    assert _answers(index) == fresh
    assert _answers(index) == fresh  # every text remembered this time
    index.clear_cache()
    assert _answers(index) == fresh


@pytest.mark.parametrize("room", [1, 2, 3, 5])
def test_a_full_cache_starts_afresh_without_losing_a_hit(
    monkeypatch: pytest.MonkeyPatch, room: int
) -> None:
    import detectors.names as names

    fresh = _fresh_answers()
    monkeypatch.setattr(names, "MAX_CACHED_FIELDS", room)
    index = ArtistIndex.build(ARTISTS)
    for _ in range(3):
        assert _answers(index) == fresh


def test_a_long_text_that_names_nobody_is_screened_again_each_time(index: ArtistIndex) -> None:
    from detectors.names import MAX_CACHED_CLEAN_CHARS

    long_text = "harbor " * (MAX_CACHED_CLEAN_CHARS // 7 + 1)
    assert index.match(_as_fields((long_text,))) == []
    named = long_text + "by mara quellbrook"
    assert [m.artist for m in index.match(_as_fields((long_text, named)))] == ["Mara Quellbrook"]
    assert index.match(_as_fields((long_text,))) == []


# The cheap pass decides which texts are verified at all: whatever verification would find
# in a text, the pass over a batch of texts must flag it, whichever of its shortcuts (no
# separator runs, no spaced letters, ASCII only) the batch takes.
_WORDS = st.sampled_from(
    [*{w for a in ARTISTS for n in (a.name, *a.aliases) for w in n.split()}, "1girl", "style",
     "by", "esque", "V2", "4", "é", "w", "l", "o", "p"]
)  # fmt: skip
_SEPARATORS = st.sampled_from(["", " ", " ", "  ", "_", "-", ", ", " | ", ".", "\n", "-_-", "@"])


@st.composite
def _text(draw: st.DrawFn) -> str:
    """Words, whole names (letter by letter too) and cues, joined by drawn separators."""
    parts: list[str] = []
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.booleans()):
            ref = draw(st.sampled_from(ARTISTS))
            name = draw(st.sampled_from((ref.name, *ref.aliases)))
            if draw(st.integers(0, 4)) == 0:
                name = " ".join(name.replace(" ", ""))
            parts.extend(name.split(" "))
        else:
            parts.append(draw(_WORDS))
    return "".join(part + draw(_SEPARATORS) for part in parts)


@given(st.lists(_text(), min_size=1, max_size=5))
def test_the_cheap_pass_flags_every_text_verification_would_find_a_name_in(
    texts: list[str],
) -> None:
    from detectors.names import _flagged

    index = ArtistIndex.build(ARTISTS)
    automaton = index.automaton
    assert automaton is not None
    flagged = _flagged(texts, automaton, index._keys.keys)
    for position, text in enumerate(texts):
        if index._found(text, automaton):
            assert position in flagged, (text, texts)
