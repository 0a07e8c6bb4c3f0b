"""Screening: the cheap stage every upload goes through.

From the first bytes of a model file (a Range fetch is enough) and the hub's own text, it
says what the file is (format, kind, base family) and which registered artists its training
metadata or hub text names. Metadata no trainer writes (non-string values, nested JSON
over the caps or broken) makes the screening *malformed*, with a one-line reason: such a file
is reported as malformed, never as clean, and what could be read is still screened.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from detectors.architecture import infer_architecture
from detectors.errors import RefusedFile
from detectors.file_format import sniff_format
from detectors.metadata import read_metadata
from detectors.names import ArtistIndex
from detectors.results import (
    Architecture,
    ArtistMatch,
    BaseFamily,
    FileFormat,
    Kind,
    SafetensorsHeader,
    TextField,
)
from detectors.safetensors_header import parse_header

# What a screening reads first; most LoRA headers fit (the rest is asked for by NeedMoreBytes).
PREFIX_BYTES = 256 * 1024
# The longest header stylewatch reads, from a hub or a local file. The format allows 100 MB,
# a full SDXL checkpoint's header is ~0.2 MB, and parsing holds a few copies of the text
# (bytes, str, the decoded values): a 99 MB header peaked at 983 MB in `stylewatch scan`.
MAX_READ_HEADER_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Screening:
    """The result of screening one model file (plus its hub text, when it has any).

    ``malformed`` is why the file's metadata is malformed, or None when it is well formed.
    """

    format: FileFormat
    kind: Kind
    base_family: BaseFamily
    layout: str
    header: SafetensorsHeader
    fields: tuple[TextField, ...]
    matches: tuple[ArtistMatch, ...] = field(default_factory=tuple)
    malformed: str | None = None

    def flagged(self, threshold: float) -> bool:
        """Whether any artist matched with at least ``threshold``."""
        return any(m.score >= threshold for m in self.matches)


def read_header(prefix: bytes, *, file_size: int | None, filename: str | None) -> SafetensorsHeader:
    """Parse the header of a safetensors file from its first bytes.

    Raises RefusedFile for pickle and unknown formats, HeaderError for a broken header and
    NeedMoreBytes (a HeaderError) when ``prefix`` is too short for the header.
    """
    fmt = sniff_format(prefix, filename)
    if fmt == "pickle":
        raise RefusedFile(
            f"{filename or 'the file'} is a pickle file; stylewatch never loads pickles "
            "(ask the uploader for a .safetensors version)",
            format="pickle",
        )
    if fmt != "safetensors":
        raise RefusedFile(f"{filename or 'the file'} is not a safetensors model file")
    return parse_header(prefix, file_size=file_size)


def screen_header(
    header: SafetensorsHeader,
    index: ArtistIndex,
    hub_text: Sequence[TextField] = (),
    hub_base_model: str | None = None,
) -> Screening:
    """Screen a parsed header and the hub's text against every registered artist;
    ``hub_base_model`` (the base model the hub names) breaks a tie on the base family."""
    arch: Architecture = infer_architecture(header, hub_base_model)
    metadata = read_metadata(header.metadata)
    fields = metadata.fields + tuple(hub_text)
    return Screening(
        format="safetensors",
        kind=arch.kind,
        base_family=arch.base_family,
        layout=arch.layout,
        header=header,
        fields=fields,
        matches=tuple(index.match(fields)),
        malformed=header.malformed or metadata.malformed,
    )
