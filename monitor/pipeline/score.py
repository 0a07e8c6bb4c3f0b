"""The score stage: a probe's style lifts become findings, each with its evidence sheet.

The lifts themselves are computed in detectors/ (`detectors.probe.scoring`: pure numpy);
`detectors.probe.scoring.probe_matches` names those at the threshold, and this stage gives
each finding its evidence sheet, a blob: the LoRA's images, the base model's images from the
same prompts and seeds, and a few of the artist's reference images (`put_evidence_sheet`,
`with_evidence_sheet`).
The probe scores a fresh run; the back-scan by style scores a kept one the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from PIL import Image

from detectors.probe.sheet import evidence_sheet
from detectors.results import ArtistMatch, Evidence
from storage.blobs import BlobStore

__all__ = [
    "KEPT_SHEET_CAPTION",
    "SHEET_CAPTION",
    "SHEET_REFERENCES",
    "put_evidence_sheet",
    "with_evidence_sheet",
]

SHEET_REFERENCES = 4  # reference images on a sheet
SHEET_CAPTION = "LoRA images | base model images, same prompts and seeds | artist references"
KEPT_SHEET_CAPTION = SHEET_CAPTION + " (kept from an earlier probe)"


def put_evidence_sheet(
    blobs: BlobStore,
    lora: Sequence[Image.Image],
    base: Sequence[Image.Image],
    references: Sequence[str],
    image: Callable[[str], Image.Image],
) -> str:
    """Draw a finding's evidence sheet and store it in ``blobs``; its blob key. The first
    `SHEET_REFERENCES` of the artist's ``references`` (blob keys) are loaded by ``image``."""
    refs = [image(key) for key in references[:SHEET_REFERENCES]]
    return blobs.put(evidence_sheet(lora, base, refs))


def with_evidence_sheet(
    match: ArtistMatch, sheet: str, caption: str = SHEET_CAPTION
) -> ArtistMatch:
    """``match`` with its evidence sheet (blob key ``sheet``) as one more piece of evidence."""
    image = Evidence(source="evidence_sheet", text=caption, blob_sha256=sheet)
    return replace(match, evidence=(*match.evidence, image))
