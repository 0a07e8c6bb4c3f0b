"""Training metadata (``__metadata__``) decoded, and the text in it worth screening for names.

Trainers store every value as a string and nested values as JSON inside the string (kohya
sd-scripts ``ss_tag_frequency``, ``ss_dataset_dirs``, ``ss_datasets``; ai-toolkit
``training_info``, ``software``; OneTrainer ``ot_config``). :func:`metadata_fields` picks the
free text a trainer copied from the dataset or the user (tags, folder names, titles,
comments) and skips training parameters, hashes, numbers and thumbnails. Fields are
emitted most telling first and capped, so a huge tag list cannot crowd out the title.

:func:`read_metadata` also says why metadata is *malformed*, which no trainer writes: a
value that looks like JSON and nests deeper than :data:`~detectors.bounded_json.MAX_JSON_DEPTH`
or holds more than :data:`MAX_VALUE_JSON_ITEMS` items, or a key trainers write as JSON
(:data:`JSON_SHAPES`) that is not valid JSON of its shape (duplicate keys, ``NaN``, lone
surrogates included). Screening reports such a file as malformed, never as clean.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from detectors.bounded_json import check_shape, loads_bounded, quote
from detectors.errors import HeaderError
from detectors.results import JSONValue, TextField

MAX_TEXT_FIELDS = 5_000
MAX_FIELD_CHARS = 2_000  # longer text is cut to this many characters
MAX_TOTAL_CHARS = 200_000
# JSON items (strings, commas, brackets) in one metadata value: kohya's tag list of a
# 10,000-image dataset has about 200,000.
MAX_VALUE_JSON_ITEMS = 1_000_000

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
# Keys trainers write as JSON, and the JSON type each holds.
JSON_SHAPES: Mapping[str, type] = {
    "ss_tag_frequency": dict,
    "ss_dataset_dirs": dict,
    "ss_reg_dataset_dirs": dict,
    "ss_datasets": list,
    "ss_bucket_info": dict,
    "ot_config": dict,
}
_SHAPE_WORDS: Mapping[type, str] = {dict: "a JSON object", list: "a JSON list"}
# Keys read although a skip rule covers them.
_READ_KEYS = frozenset({*TEXT_KEYS, *DIR_KEYS, "ss_tag_frequency", "ss_datasets", "ot_config"})
_NOT_TEXT = re.compile(
    r"none|null|true|false|nan|[-+]?[\d.]+(?:e[-+]?\d+)?|(?:0x)?[0-9a-f]{8,}|\(?[\d.,\s]+\)?|[\d.x]+",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class MetadataText:
    """The text fields of :func:`metadata_fields`, and why the metadata is malformed (or None)."""

    fields: tuple[TextField, ...]
    malformed: str | None = None


def decode_metadata(metadata: Mapping[str, str]) -> dict[str, JSONValue]:
    """Values that hold a JSON object or list, parsed (depth-capped); every other value as is."""
    return {key: _decode(key, value)[0] for key, value in metadata.items()}


def read_metadata(metadata: Mapping[str, str]) -> MetadataText:
    """The text fields (see :func:`metadata_fields`) and the first reason the metadata is
    malformed, from one decoding of each value."""
    decoded: dict[str, JSONValue] = {}
    malformed: str | None = None
    for key, value in metadata.items():
        # Only keys that can hold text are decoded: most of a kohya header is parameters.
        read = key in _READ_KEYS or not (key in _SKIP_KEYS or key.startswith(_SKIP_PREFIXES))
        if read or (key in JSON_SHAPES and malformed is None):
            decoded_value, problem = _decode(key, value)
            if read:
                decoded[key] = decoded_value
        else:
            problem = _shape_problem(key, value) if malformed is None else None
        malformed = malformed or problem
    return MetadataText(tuple(_fields(decoded)), malformed)


def metadata_fields(metadata: Mapping[str, str]) -> list[TextField]:
    """The text a name screener should read, each with the metadata key it came from.

    Deduplicated on (source, text), cut to :data:`MAX_FIELD_CHARS` per field and capped at
    :data:`MAX_TEXT_FIELDS` fields and :data:`MAX_TOTAL_CHARS` characters in all.
    """
    return list(read_metadata(metadata).fields)


def _fields(decoded: Mapping[str, JSONValue]) -> list[TextField]:
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


def _looks_like_json(value: str) -> bool:
    return value.lstrip().startswith(("{", "["))


def _decode(key: str, value: str) -> tuple[JSONValue, str | None]:
    """The value, parsed when it looks like JSON, and why it is malformed (or None).

    A key trainers write as JSON must hold valid JSON of its shape; any other value that
    looks like JSON but is not stays text (``[WIP] watercolor``), unless it breaks a cap.
    """
    if not _looks_like_json(value):
        return value, None
    what = f"metadata {quote(key)}"
    shape = JSON_SHAPES.get(key)
    if shape is None:
        problem = _shape_problem(key, value)
        if problem is not None:
            return value, problem
    try:
        parsed = loads_bounded(value, what, max_items=MAX_VALUE_JSON_ITEMS)
    except HeaderError as exc:
        return value, None if shape is None else str(exc)
    if shape is not None and not isinstance(parsed, shape):
        return value, f"{what} is not {_SHAPE_WORDS[shape]}"
    if "\\u" in value and not _encodes(parsed):
        return value, f"{what} holds an unpaired surrogate escape"
    return parsed, None


def _encodes(value: JSONValue) -> bool:
    """Whether every string in ``value`` encodes as UTF-8 (a ``\\ud800`` escape does not)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shape_problem(key: str, value: str) -> str | None:
    """Why a value that is not read is malformed: over a cap when it looks like JSON."""
    if not _looks_like_json(value):
        return None
    try:
        check_shape(value, f"metadata {quote(key)}", max_items=MAX_VALUE_JSON_ITEMS)
    except HeaderError as exc:
        return str(exc)
    return None


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
