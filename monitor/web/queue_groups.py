"""The queue's cards: near-identical uploads found for one artist share one card and one decision.

Two uploads are near-identical when the re-upload link says so (the same file bytes or weight
fingerprint, :mod:`monitor.pipeline.record`), or when one uploader posted them on one hub under
names that differ only in version marks ("Mira Ink Washes v2", "mira_ink_washes-v3 (reupload)"):
the way a copier re-posts a takedown, or an uploader ships the same LoRA in several versions.
Grouping is per page, in page order: the first finding of a group holds the card.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

from storage.records import UploadRecord, UploadRef
from storage.web_queries import FindingView

# Words that mark a version, a re-post, the adapter's format or the base model, not what the
# model is: "X v2 (SD1.5)" and "X (SDXL) final" are one model, posted twice.
_VERSION_WORDS = frozenset(
    (
        *("v", "ver", "version", "epoch", "ep", "step", "steps", "final", "fixed", "fix"),
        *("new", "updated", "update", "reupload", "reuploaded", "repost", "mirror", "copy"),
        *("backup", "alt", "lora", "locon", "loha", "lokr", "lycoris", "dora", "checkpoint"),
        *("sd", "sd1", "sd15", "sd2", "sd21", "sdxl", "xl", "pony", "flux", "sd3", "sd35"),
        *("illustrious", "noobai", "noob", "il", "dev", "schnell"),
    )
)
_VERSION_TOKEN = re.compile(r"(?:v|ver|e|ep|epoch|s|step)?\d+(?:[._]\d+)*[a-z]?")
_NOT_WORD = re.compile(r"[^\w]+|_+")
MIN_PATTERN_LETTERS = 4  # a name of version marks and a short word ("v2 art") groups nothing


def name_pattern(name: str) -> str:
    """The words of an upload's name without version marks, folded ("" if too little is left).

    >>> name_pattern("Mira_Ink-Washes v2.1 (reupload)")
    'mira ink washes'
    """
    folded = unicodedata.normalize("NFKC", name).casefold()
    words = [
        word
        for word in _NOT_WORD.sub(" ", folded).split()
        if word not in _VERSION_WORDS and not _VERSION_TOKEN.fullmatch(word)
    ]
    pattern = " ".join(words)
    return pattern if sum(c.isalpha() for c in pattern) >= MIN_PATTERN_LETTERS else ""


@dataclass(slots=True)
class Card:
    """One card of the queue: ``view`` holds it; ``also`` are the other findings its one
    decision decides, in page order: ``reuploads`` of them linked re-uploads of its model,
    ``similar`` of them the same uploader's uploads named like it."""

    view: FindingView
    also: list[FindingView] = field(default_factory=list)
    reuploads: int = 0
    similar: int = 0

    @property
    def uploader(self) -> str:
        return self.view.upload.uploader or "unknown uploader"


def queue_cards(views: Sequence[FindingView]) -> list[Card]:
    """The page's findings as cards, in page order (see the module's docstring)."""
    by_model: dict[tuple[int, str, str], Card] = {}
    by_pattern: dict[tuple[int, str, str, str], Card] = {}
    cards: list[Card] = []
    for view in views:
        artist = view.finding.artist_id
        root = view.upload.reupload_of or UploadRef(view.upload.source, view.upload.upload_id)
        model = (artist, root.source, root.upload_id)
        pattern = _pattern_key(artist, view.upload)
        if (card := by_model.get(model)) is not None:
            card.also.append(view)
            card.reuploads += 1
        elif pattern is not None and (card := by_pattern.get(pattern)) is not None:
            card.also.append(view)
            card.similar += 1
            by_model[model] = card  # its own re-uploads join the same card
        else:
            card = Card(view)
            cards.append(card)
            by_model[model] = card
            if pattern is not None:
                by_pattern[pattern] = card
    return cards


def _pattern_key(artist: int, upload: UploadRecord) -> tuple[int, str, str, str] | None:
    if not upload.uploader:
        return None
    pattern = name_pattern(upload.name)
    if not pattern:
        return None
    return (artist, upload.source, upload.uploader.casefold(), pattern)
