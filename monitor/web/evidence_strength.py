"""How strong a metadata line is: how many training images a matched tag captioned.

kohya's ``ss_tag_frequency`` maps each dataset folder to ``{tag: count}``, so "by mara
quellbrook" counted 12 times of ``ss_num_train_images`` 50 tells a moderator the artist's
name captions a quarter of the training set, not one stray image.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from detectors.bounded_json import loads_bounded
from detectors.errors import InputError
from detectors.results import JSONValue
from storage.records import FileRecord

TAG_SOURCES = ("ss_tag_frequency", "ss_datasets")


@dataclass(frozen=True, slots=True)
class TagCount:
    count: int  # images whose caption holds the tag
    images: int | None  # images trained on, when the file says

    def text(self) -> str:
        of = f" of {self.images:,} images" if self.images else " images"
        return f"×{self.count:,}{of}"


def tag_counts(files: Iterable[FileRecord]) -> dict[str, TagCount]:
    """Every tag of the files' ``ss_tag_frequency`` (casefolded) with its count."""
    counts: Counter[str] = Counter()
    images = 0
    for file in files:
        frequency = _json(file.metadata.get("ss_tag_frequency"))
        if isinstance(frequency, dict):
            for tags in frequency.values():
                if isinstance(tags, dict):
                    for tag, count in tags.items():
                        if isinstance(count, int) and not isinstance(count, bool) and count > 0:
                            counts[tag.strip().casefold()] += count
        images += _int(file.metadata.get("ss_num_train_images"))
    return {tag: TagCount(n, images or None) for tag, n in counts.items()}


def strength(counts: Mapping[str, TagCount], source: str, text: str) -> str | None:
    """ "×12 of 50 images" for a tag line, None for any other evidence."""
    if source not in TAG_SOURCES:
        return None
    found = counts.get(text.strip().casefold())
    return None if found is None else found.text()


def _json(value: JSONValue | None) -> JSONValue | None:
    if not isinstance(value, str):
        return value
    try:
        return loads_bounded(value, "ss_tag_frequency")
    except (InputError, ValueError):  # malformed metadata is screening's to report
        return None


def _int(value: JSONValue | None) -> int:
    text = str(value).strip() if isinstance(value, str | int) else ""
    return int(text) if text.isdigit() and len(text) <= 9 else 0
