"""Training metadata (``__metadata__``) decoded, and the text in it worth screening for names.

Trainers store every value as a string and nested values as JSON inside the string (kohya
sd-scripts ``ss_tag_frequency``, ``ss_dataset_dirs``, ``ss_datasets``; ai-toolkit
``training_info``, ``software``; OneTrainer ``ot_config``). :func:`metadata_fields` picks the
free text a trainer copied from the dataset or the user (tags, folder names, titles,
comments) and skips training parameters, hashes, numbers and thumbnails. Fields are
emitted most telling first and capped, so a huge tag list cannot crowd out the title.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping

from detectors.bounded_json import loads_bounded
from detectors.errors import HeaderError
from detectors.results import JSONValue, TextField

MAX_TEXT_FIELDS = 5_000
MAX_FIELD_CHARS = 2_000  # longer text is cut to this many characters
MAX_TOTAL_CHARS = 200_000

# Free text a user or dataset wrote, in the order screened.
TEXT_KEYS = (
    "ss_output_name",
    "modelspec.title",
    "modelspec.trigger_phrase",
    "modelspec.author",
    "modelspec.tags",
    "modelspec.description",
    "modelspec.usage_hint",
    "ss_training_comment",
    "name",  # ai-toolkit job name
)
# Directory-name maps: {"<repeats>_<folder>": {...}}.
DIR_KEYS = ("ss_dataset_dirs", "ss_reg_dataset_dirs")
# Keys known to hold no text about the artist (parameters, base model, hashes, dates).
_SKIP_PREFIXES = ("ss_", "sshs_", "ot_")
_SKIP_KEYS = frozenset(
    {
        "format",
        "version",
        "software",
        "training_info",
        "modelspec.sai_model_spec",
        "modelspec.architecture",
        "modelspec.implementation",
        "modelspec.implementation_version",
        "modelspec.resolution",
        "modelspec.date",
        "modelspec.prediction_type",
        "modelspec.encoder_layer",
        "modelspec.license",
        "modelspec.thumbnail",
        "modelspec.hash_sha256",
        "modelspec.timestep_range",
        "modelspec.is_negative_embedding",
    }
)
# Keys read although a skip rule covers them.
_READ_KEYS = frozenset({*TEXT_KEYS, *DIR_KEYS, "ss_tag_frequency", "ss_datasets", "ot_config"})
_NOT_TEXT = re.compile(
    r"none|null|true|false|nan|[-+]?[\d.]+(?:e[-+]?\d+)?|(?:0x)?[0-9a-f]{8,}|\(?[\d.,\s]+\)?|[\d.x]+",
    re.IGNORECASE,
)


def decode_metadata(metadata: Mapping[str, str]) -> dict[str, JSONValue]:
    """Values that hold a JSON object or list, parsed (depth-capped); every other value as is."""
    return {key: _decode(value) for key, value in metadata.items()}


def metadata_fields(metadata: Mapping[str, str]) -> list[TextField]:
    """The text a name screener should read, each with the metadata key it came from.

    Deduplicated on (source, text), cut to :data:`MAX_FIELD_CHARS` per field and capped at
    :data:`MAX_TEXT_FIELDS` fields and :data:`MAX_TOTAL_CHARS` characters in all.
    """
    # Only keys that can hold text are decoded: most of a kohya header is parameters.
    decoded = {
        key: _decode(value)
        for key, value in metadata.items()
        if key in _READ_KEYS or not (key in _SKIP_KEYS or key.startswith(_SKIP_PREFIXES))
    }
    kept: list[TextField] = []
    seen: set[tuple[str, str]] = set()
    total = 0
    for source, values in _candidates(decoded):
        for value in values:
            if not isinstance(value, str) or not _is_free_text(value):
                continue
            text = value[:MAX_FIELD_CHARS]
            if (source, text) in seen:
                continue
            if len(kept) >= MAX_TEXT_FIELDS or total + len(text) > MAX_TOTAL_CHARS:
                return kept
            seen.add((source, text))
            kept.append(TextField(source=source, text=text))
            total += len(text)
    return kept


def _decode(value: str) -> JSONValue:
    if not value.lstrip().startswith(("{", "[")):
        return value
    try:
        return loads_bounded(value, "metadata value")
    except HeaderError:
        return value


# A group of candidate values, all from one metadata key, most telling first.
_Group = tuple[str, Iterable[JSONValue]]


def _candidates(decoded: Mapping[str, JSONValue]) -> Iterator[_Group]:
    for key in TEXT_KEYS:
        yield key, _strings(decoded.get(key))
    yield from _other_texts(decoded)
    for key in DIR_KEYS:
        yield key, _keys(decoded.get(key))
    yield from _tag_frequency("ss_tag_frequency", decoded.get("ss_tag_frequency"))
    yield from _datasets(decoded.get("ss_datasets"))
    yield from _ot_concepts(decoded.get("ot_config"))


def _other_texts(decoded: Mapping[str, JSONValue]) -> Iterator[_Group]:
    """Keys no trainer documented (``trigger``, ``artist``, …) that hold free text."""
    for key, value in decoded.items():
        known = key in TEXT_KEYS or key in _SKIP_KEYS or key.startswith(_SKIP_PREFIXES)
        if not known:
            yield key, _strings(value)


def _tag_frequency(source: str, value: JSONValue) -> Iterator[_Group]:
    """Folder names, then every tag, most frequent first (the cap keeps the common ones)."""
    if not isinstance(value, dict):
        return
    yield source, value
    counts: dict[str, float] = {}
    for tags in value.values():
        if isinstance(tags, dict):
            for tag, count in tags.items():
                weight = count if isinstance(count, int | float) else 0
                counts[tag] = counts.get(tag, 0) + weight
    ranked = sorted(counts, key=counts.__getitem__, reverse=True)
    yield source, ranked


def _datasets(value: JSONValue) -> Iterator[_Group]:
    """kohya's dataset-config form: per dataset ``subsets`` and ``tag_frequency``."""
    if not isinstance(value, list):
        return
    for dataset in value:
        if not isinstance(dataset, dict):
            continue
        for subset in _list(dataset.get("subsets")):
            if isinstance(subset, dict):
                names = ("image_dir", "class_tokens", "metadata_file")
                yield "ss_datasets", [subset.get(name) for name in names]
        yield from _tag_frequency("ss_datasets", dataset.get("tag_frequency"))


def _ot_concepts(value: JSONValue) -> Iterator[_Group]:
    """OneTrainer's saved config: each concept's name and image folder."""
    if not isinstance(value, dict):
        return
    for concept in _list(value.get("concepts")):
        if isinstance(concept, dict):
            yield "ot_config", [concept.get("name"), concept.get("path")]


def _is_free_text(text: str) -> bool:
    stripped = text.strip()
    if not stripped or stripped.startswith("data:"):
        return False
    return _NOT_TEXT.fullmatch(stripped) is None


def _strings(value: JSONValue) -> list[JSONValue]:
    """A value, or the items of a list (``modelspec.tags`` is sometimes written as JSON)."""
    return value if isinstance(value, list) else [value]


def _keys(value: JSONValue) -> list[JSONValue]:
    return list(value) if isinstance(value, dict) else []


def _list(value: JSONValue) -> list[JSONValue]:
    return value if isinstance(value, list) else []
