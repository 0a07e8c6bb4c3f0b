"""Model cards (a Hugging Face repo's README.md) are outside input: any bytes give the hub
text fields without raising, the card field holds the body after the YAML front matter,
stripped and capped, and the front matter itself is never screened as card text."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from bench.fuzz_seeds import card_seeds, hub_seeds
from monitor.sources.huggingface import MAX_CARD_CHARS, ModelInfo, _hub_text

INFO = ModelInfo.parse(json.loads(hub_seeds("hf_model")[0]))
card_text = st.text(st.characters(codec="utf-8"), max_size=400)


def _card(readme: str) -> str | None:
    cards = [field.text for field in _hub_text(INFO, readme) if field.source == "card"]
    assert len(cards) <= 1
    return cards[0] if cards else None


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=600) | st.sampled_from(card_seeds()))
def test_any_readme_bytes_give_capped_stripped_card_text(data):
    card = _card(data.decode("utf-8", errors="replace"))  # as HuggingFaceSource._readme reads
    if card is not None:
        assert card and card == card.strip()
        assert len(card) <= MAX_CARD_CHARS


@settings(max_examples=100, deadline=None)
@given(front=card_text.filter(lambda t: "\n---" not in t), body=card_text)
def test_the_card_is_the_body_after_the_front_matter(front, body):
    readme = f"---\n{front}\n---{body}"
    expected = body.strip()[:MAX_CARD_CHARS] or None
    assert _card(readme) == expected


@settings(max_examples=60, deadline=None)
@given(text=card_text.filter(lambda t: not t.startswith("---")))
def test_a_card_without_front_matter_is_kept_whole(text):
    assert _card(text) == (text.strip()[:MAX_CARD_CHARS] or None)


def test_a_long_card_is_cut_to_the_cap():
    assert _card("---\ntags: [x]\n---\n" + "y" * (MAX_CARD_CHARS + 500)) == "y" * MAX_CARD_CHARS
