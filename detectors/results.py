"""Frozen values the detector core returns. Their field names are docs/interface.md's JSON keys."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

FileFormat = Literal["safetensors", "pickle", "unknown"]
Kind = Literal["lora", "lycoris", "checkpoint", "embedding", "unknown"]
BaseFamily = Literal["sd1", "sd2", "sdxl", "flux", "sd3", "unknown"]
Verdict = Literal["flagged", "malformed", "clean"]
Stage = Literal["metadata", "probe"]
# Adapters: the kinds loaded onto a base model to probe them, and whose weights are
# fingerprinted (a checkpoint is probed on its own, by the worker only).
ADAPTER_KINDS: tuple[Kind, ...] = ("lora", "lycoris")

# JSON values as decoded from untrusted metadata (depth-capped by the parser).
JSONValue = None | bool | int | float | str | list["JSONValue"] | dict[str, "JSONValue"]


@dataclass(frozen=True, slots=True)
class TensorInfo:
    """One tensor entry of a safetensors header; offsets are relative to the data section."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class SafetensorsHeader:
    """A parsed, validated safetensors header.

    ``header_len`` is the JSON length from the 8-byte prefix; ``data_len`` the size of the
    tensor data section (the largest end offset). ``metadata`` is ``__metadata__`` as stored
    (string values, coerced from whatever the writer put there); ``malformed`` says why it is
    malformed when a value was not a string (None when every value was).
    """

    header_len: int
    tensors: tuple[TensorInfo, ...]
    metadata: Mapping[str, str]
    data_len: int
    malformed: str | None = None

    @property
    def data_offset(self) -> int:
        """Byte offset of the tensor data section in the file."""
        return 8 + self.header_len

    @property
    def file_size(self) -> int:
        """The size a complete file with this header has."""
        return self.data_offset + self.data_len


@dataclass(frozen=True, slots=True)
class Architecture:
    """What the tensor names and widths say the file is.

    ``layout`` names the key convention (``kohya``, ``peft``, ``diffusers``, ``locon``,
    ``loha``, ``lokr``, ``dora``, ``ldm``, ...) or ``unknown``.
    """

    kind: Kind
    base_family: BaseFamily
    layout: str = "unknown"


@dataclass(frozen=True, slots=True)
class TextField:
    """One piece of text to screen: where it came from (``source``) and the text as found."""

    source: str
    text: str


@dataclass(frozen=True, slots=True)
class Evidence:
    """What matched and where, quoted as found; ``blob_sha256`` names an image (an evidence
    sheet in the blob store) when the evidence is one. Name screening also says which
    ``rule`` fired, its ``confidence`` (the strength the moderator can sort by) and ``why``."""

    source: str
    text: str
    blob_sha256: str | None = None
    # Explanations, not identity: two pieces of evidence quoting the same text are one.
    rule: str | None = field(default=None, compare=False)
    confidence: float | None = field(default=None, compare=False)
    why: str | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class ArtistRef:
    """A registered artist as the matcher sees it: an id, the registered name, its aliases."""

    artist_id: int
    name: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ArtistMatch:
    """One artist found in an upload, with a score in [0, 1] and the evidence for it."""

    artist_id: int
    artist: str
    score: float
    stage: Stage
    evidence: tuple[Evidence, ...] = field(default_factory=tuple)


def merge_matches(matches: Iterable[ArtistMatch]) -> dict[int, ArtistMatch]:
    """One match per artist: the best score and stage, with every piece of evidence."""
    merged: dict[int, ArtistMatch] = {}
    for m in matches:
        prior = merged.get(m.artist_id)
        if prior is None:
            merged[m.artist_id] = m
            continue
        best = m if m.score > prior.score else prior
        merged[m.artist_id] = ArtistMatch(
            m.artist_id, best.artist, best.score, best.stage, prior.evidence + m.evidence
        )
    return merged
