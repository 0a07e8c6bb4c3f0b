"""Which base model an upload is probed on: its family's, or a derivative's of that family.

SDXL derivatives (Pony, Illustrious, NoobAI) have SDXL's shapes, so the widths call their
LoRAs and checkpoints "sdxl"; drawn on SDXL base they are drawn off their own model and lift
is measured against the wrong images. The operator configures each derivative base
(``[probe.bases.<name>]``: family, folder, prompt prefix, the names that pick it), and
``choose_base`` picks one from what the file and the hub say: the training metadata
(``ss_base_model_version``, ``modelspec.architecture``, ``ss_sd_model_name``) first, then the
hub's own base model (Civitai ``baseModel``, Hugging Face ``base_model``). A name matches when
one of the base's ``match`` terms appears in it, compared as lower-case letters and digits
only ("NoobAI-XL" matches "noobai"). Nothing matched, or no derivative configured: the
family's own base. The chosen base is a *probe key*: ``family`` or ``family/name``, which
the backend and the base image cache treat as a family of their own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

METADATA_KEYS = ("ss_base_model_version", "modelspec.architecture", "ss_sd_model_name")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True, slots=True)
class DerivativeBase:
    """One configured derivative base: ``family`` it derives from, the ``match`` terms
    that name it, and the ``prompt_prefix`` its users start every prompt with."""

    name: str
    family: str
    match: tuple[str, ...]
    prompt_prefix: str = ""


def probe_key(family: str, base: str | None) -> str:
    """The backend's key for a family's own base (``base`` None) or a derivative's."""
    return family if base is None else f"{family}/{base}"


def choose_base(
    family: str,
    metadata: Mapping[str, str],
    hub_base_model: str | None,
    bases: Sequence[DerivativeBase],
) -> str | None:
    """The name of the derivative base to probe on, or None for the family's own base."""
    candidates = [b for b in bases if b.family == family]
    if not candidates:
        return None
    names = [metadata.get(key, "") for key in METADATA_KEYS] + [hub_base_model or ""]
    for text in names:
        flat = _flat(text)
        if not flat:
            continue
        for base in candidates:
            if any(_flat(term) and _flat(term) in flat for term in base.match):
                return base.name
    return None


def with_prefix(prefix: str, prompts: Sequence[str]) -> list[str]:
    """Each prompt after the base's prefix (as its users write them), or as it is."""
    prefix = prefix.strip().rstrip(",").strip()
    return [f"{prefix}, {p}" if prefix else p for p in prompts]


def _flat(text: str) -> str:
    return _NOT_ALNUM.sub("", text.lower())
