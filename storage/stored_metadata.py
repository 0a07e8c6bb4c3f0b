"""A file's ``__metadata__`` as the database keeps it: capped, with the cut recorded.

Screening reads the whole header once, when the upload arrives; the row keeps the metadata
for rescreening and the evidence pages. A hostile header can carry tens of megabytes of
metadata (three 30 MB headers grew the database by 90 MB), so at most
:data:`MAX_STORED_METADATA_CHARS` of it is stored. Whole entries are kept, smallest first
(a cut JSON value would read back as malformed), so the short keys screening reads
(``ss_output_name``, trigger words, the tag list of a normal LoRA) survive and the huge one
goes. What was cut is recorded in the same JSON column under :data:`CUT_KEY`, a name no
trainer writes (``__``-prefixed keys are the format's own), so no migration is needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from detectors.results import JSONValue

MAX_STORED_METADATA_CHARS = 256 * 1024  # kohya's metadata of a large LoRA is ~20 KB
CUT_KEY = "__stylewatch_cut__"


@dataclass(frozen=True, slots=True)
class MetadataCut:
    """How a file's stored metadata was cut: its full size in characters (keys plus
    values), how many of them were kept, and how many entries were dropped."""

    full_chars: int
    kept_chars: int
    dropped_keys: int

    def as_json(self) -> dict[str, int]:
        return {
            "full_chars": self.full_chars,
            "kept_chars": self.kept_chars,
            "dropped_keys": self.dropped_keys,
        }


def _chars(key: str, value: JSONValue) -> int:
    return len(key) + (len(value) if isinstance(value, str) else len(repr(value)))


def cap_metadata(
    metadata: Mapping[str, JSONValue], max_chars: int = MAX_STORED_METADATA_CHARS
) -> tuple[dict[str, JSONValue], MetadataCut | None]:
    """The entries of ``metadata`` that fit in ``max_chars`` (smallest first, in their
    original order), and the cut (None when everything fits)."""
    sizes = {key: _chars(key, value) for key, value in metadata.items()}
    full = sum(sizes.values())
    if full <= max_chars:
        return dict(metadata), None
    kept: set[str] = set()
    used = 0
    for key in sorted(sizes, key=sizes.__getitem__):
        if used + sizes[key] > max_chars:
            break
        kept.add(key)
        used += sizes[key]
    stored = {key: value for key, value in metadata.items() if key in kept}
    return stored, MetadataCut(full, used, len(metadata) - len(kept))


def to_column(metadata: Mapping[str, JSONValue]) -> dict[str, Any]:
    """What the ``metadata`` column stores for ``metadata``: capped, the cut under
    :data:`CUT_KEY`."""
    stored, cut = cap_metadata({k: v for k, v in metadata.items() if k != CUT_KEY})
    column: dict[str, Any] = dict(stored)
    if cut is not None:
        column[CUT_KEY] = cut.as_json()
    return column


def from_column(column: Mapping[str, Any]) -> tuple[dict[str, JSONValue], MetadataCut | None]:
    """The metadata a ``metadata`` column holds, and its cut (None when stored whole)."""
    metadata = {k: v for k, v in column.items() if k != CUT_KEY}
    raw = column.get(CUT_KEY)
    if not isinstance(raw, dict):
        return metadata, None
    cut = MetadataCut(
        full_chars=int(raw.get("full_chars", 0)),
        kept_chars=int(raw.get("kept_chars", 0)),
        dropped_keys=int(raw.get("dropped_keys", 0)),
    )
    return metadata, cut
