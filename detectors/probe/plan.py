"""The prompt plan: which (prompt, seed) pairs one LoRA is probed with.

Two passes. The *quick* pass draws neutral subjects and the upload's trigger words; its
images say which artists the LoRA looks nearest to. The *artist* pass then names each
candidate artist (named by screening first, then the nearest in style) over neutral
subjects. Every prompt has a fixed seed (by subject), so the same pair recurs across
uploads and its base-model image is drawn once per family.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

SUBJECTS = (
    "a portrait of a woman",
    "a landscape with a river",
    "a still life with fruit",
    "a city street at night",
)
SEEDS = (1234, 2345, 3456, 4567)
ARTIST_TEMPLATES = ("{subject}, by {artist}", "{subject}, in the style of {artist}")
QUICK_IMAGES = 3
MAX_TRIGGER_WORDS = 3
NULL_DRAWS = 3  # seed sets the base model is compared with itself at (null_plans)
NULL_SEED_STEP = 100_003

Purpose = Literal["neutral", "trigger", "artist"]


@dataclass(frozen=True, slots=True)
class PlannedImage:
    """One image of the plan; ``artist_id`` is set for artist-name prompts."""

    prompt: str
    seed: int
    purpose: Purpose
    artist_id: int | None = None


def quick_pass(trigger_words: Sequence[str], max_images: int) -> list[PlannedImage]:
    """Trigger-word prompts (one per distinct word, up to ``MAX_TRIGGER_WORDS``) then neutral
    subjects, ``min(QUICK_IMAGES, max_images)`` images in all (at least one neutral)."""
    budget = min(QUICK_IMAGES, max_images)
    words = list(dict.fromkeys(w.strip() for w in trigger_words if w.strip()))
    words = words[: min(MAX_TRIGGER_WORDS, budget - 1)]
    plan = [
        PlannedImage(f"{SUBJECTS[i % len(SUBJECTS)]}, {word}", SEEDS[i % len(SEEDS)], "trigger")
        for i, word in enumerate(words)
    ]
    for i in range(budget - len(plan)):
        plan.append(PlannedImage(SUBJECTS[i], SEEDS[i], "neutral"))
    return plan


def artist_pass(
    artists: Sequence[tuple[int, str]], max_images: int, already: int
) -> list[PlannedImage]:
    """Artist-name prompts for ``(artist_id, name)`` candidates, best candidate first.

    The ``max_images - already`` images left are dealt round-robin, so every candidate gets
    one before any gets two; each artist's k-th image uses subject k and template k.
    """
    left = max(0, max_images - already)
    per_artist = len(SUBJECTS)
    plan: list[PlannedImage] = []
    for k in range(per_artist):
        for artist_id, name in artists:
            if len(plan) == left:
                return plan
            template = ARTIST_TEMPLATES[k % len(ARTIST_TEMPLATES)]
            prompt = template.format(subject=SUBJECTS[k], artist=name)
            plan.append(PlannedImage(prompt, SEEDS[k], "artist", artist_id))
    return plan


def null_plans(draws: int = NULL_DRAWS) -> list[list[PlannedImage]]:
    """The base model against itself: the neutral subjects at their own seeds, then
    ``draws`` more times at other seeds. What a comparison of these finds is chance."""
    return [
        [
            PlannedImage(subject, seed + NULL_SEED_STEP * k, "neutral")
            for subject, seed in zip(SUBJECTS, SEEDS, strict=True)
        ]
        for k in range(draws + 1)
    ]


def candidates(
    named: Sequence[tuple[int, str]], nearest: Sequence[tuple[int, str]], k: int
) -> list[tuple[int, str]]:
    """Artists named by screening (in order), then up to ``k`` of the nearest not yet in."""
    chosen = list(dict.fromkeys(named))
    ids = {artist_id for artist_id, _ in chosen}
    extra = [a for a in nearest if a[0] not in ids][:k]
    return chosen + extra
