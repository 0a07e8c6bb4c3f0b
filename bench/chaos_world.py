"""The chaos bench's world: its artists, the uploads the fake hubs release, and what a
correct stylewatch ends up with (the ground truth the run is audited against).

Five kinds of upload, mixed by ``--seed``:

- ``metadata``: a kohya SD1 LoRA whose ``ss_tag_frequency`` names an artist (screening finds it);
- ``hubtext``: a clean SD1 LoRA whose hub text (Civitai description, Hugging Face card) names one;
- ``style``: a tiny-pipeline LoRA trained to draw an artist's style, named nowhere (only the
  probe finds it);
- ``benign``: a tiny-pipeline LoRA that changes almost nothing (probed, no finding);
- ``clean``: an SD1 LoRA naming nobody.

The tiny pipeline and its LoRAs are built once (tests/probe_models.py) and cached under
``bench/.data/chaos-models``. Their family is "unknown" (too narrow for SD1), so the probe's
base model is configured under that name and only the tiny LoRAs are probed.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from tests.fakehubs.civitai import generic_lora
from tests.fakehubs.servers import Hubs

Kind = Literal["metadata", "hubtext", "style", "benign", "clean"]
Hub = Literal["civitai", "huggingface"]
PROBE_FAMILY = "unknown"
# Share of each kind among the uploads (the rest are clean).
MIX: Mapping[Kind, float] = {"metadata": 0.2, "hubtext": 0.12, "style": 0.06, "benign": 0.04}
HF_SHARE = 0.3
REFERENCES_PER_STYLE = 6
BENIGN_SEEDS = (1, 2, 3)


@dataclass(frozen=True, slots=True)
class Artist:
    name: str
    subscriber: str | None = None  # an email address subscribed to this artist's alerts
    style: str | None = None  # a tests/probe_models.py style this artist's works are drawn in


ARTISTS = (
    Artist("Mara Quellbrook", subscriber="mara@chaos.test"),
    Artist("Oriel Hastmoor"),
    Artist("Corvin Ashdale"),
    Artist("Ember Vale", subscriber="ember@chaos.test", style="ember"),
    Artist("Tide Marsh", style="tide"),
)
NAMED = tuple(a.name for a in ARTISTS if a.style is None)
STYLED = tuple(a for a in ARTISTS if a.style is not None)


@dataclass(frozen=True, slots=True)
class Planned:
    """One upload to release ``at_s`` seconds into the run; ``artist`` is who it imitates."""

    n: int
    hub: Hub
    kind: Kind
    artist: str | None
    at_s: float

    @property
    def title(self) -> str:
        return f"chaos {self.kind} {self.n}"


@dataclass(frozen=True, slots=True)
class Models:
    """The cached tiny pipeline, its LoRAs (safetensors bytes) and reference image folders."""

    base: Path
    style_loras: Mapping[str, bytes]
    benign_loras: tuple[bytes, ...]
    references: Mapping[str, Path]


def plan(count: int, release_s: float, seed: int) -> list[Planned]:
    """``count`` uploads at random moments in ``[0, release_s]``, in release order."""
    rng = random.Random(seed)
    kinds: list[Kind] = []
    for kind, share in MIX.items():
        kinds += [kind] * max(1, round(count * share))
    kinds = (kinds + ["clean"] * count)[:count]
    rng.shuffle(kinds)
    times = sorted(rng.uniform(0, release_s) for _ in range(count))
    planned = []
    for n, (kind, at_s) in enumerate(zip(kinds, times, strict=True)):
        hub: Hub = "huggingface" if rng.random() < HF_SHARE else "civitai"
        artist = None
        if kind in ("metadata", "hubtext"):
            artist = rng.choice(NAMED)
        elif kind == "style":
            artist = rng.choice(STYLED).name
        planned.append(Planned(n, hub, kind, artist, at_s))
    return planned


def build_models(folder: Path) -> Models:
    """The tiny pipeline, one style LoRA per styled artist, benign LoRAs and each styled
    artist's reference images; built on the first run, read back after."""
    import torch

    from tests import probe_models as pm

    torch.set_num_threads(1)  # tiny models: a second thread only contends on 2 cores
    # Keyed by the source that builds them, so a change to how tiny models are trained never
    # audits a run against LoRAs cached by an older version.
    source = Path(pm.__file__).read_bytes()
    folder = folder / hashlib.sha256(source).hexdigest()[:12]
    base = folder / "base"
    if not (base / "model_index.json").exists():
        pm.build_tiny_sd(base)
    styles = {}
    references = {}
    for artist in STYLED:
        assert artist.style is not None
        lora = folder / f"style-{artist.style}.safetensors"
        if not lora.exists():
            pm.save_peft_lora(pm.train_style_lora(base, artist.style), lora)
        styles[artist.name] = lora.read_bytes()
        references[artist.name] = _references(base, artist.style, folder / f"refs-{artist.style}")
    benign = []
    for seed in BENIGN_SEEDS:
        lora = folder / f"benign-{seed}.safetensors"
        if not lora.exists():
            pm.save_peft_lora(pm.benign_lora(base, seed=seed), lora)
        benign.append(lora.read_bytes())
    return Models(base, styles, tuple(benign), references)


def _references(base: Path, style: str, folder: Path) -> Path:
    from tests import probe_models as pm

    if not folder.is_dir() or len(list(folder.glob("*.png"))) < REFERENCES_PER_STYLE:
        folder.mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(pm.style_references(base, style, n=REFERENCES_PER_STYLE)):
            image.save(folder / f"{i}.png")
    return folder


def with_metadata(lora: bytes, metadata: Mapping[str, str]) -> bytes:
    """The same tensors under a rewritten ``__metadata__``: each upload its own SHA-256."""
    length = int.from_bytes(lora[:8], "little")
    header = json.loads(lora[8 : 8 + length])
    header["__metadata__"] = {**header.get("__metadata__", {}), **metadata}
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return len(raw).to_bytes(8, "little") + raw + lora[8 + length :]


def file_bytes(upload: Planned, models: Models) -> bytes:
    name = upload.title.replace(" ", "_")
    if upload.kind == "style":
        assert upload.artist is not None
        return with_metadata(models.style_loras[upload.artist], {"ss_output_name": name})
    if upload.kind == "benign":
        lora = models.benign_loras[upload.n % len(models.benign_loras)]
        return with_metadata(lora, {"ss_output_name": name})
    if upload.kind == "metadata":
        assert upload.artist is not None
        tags = {"10_painting": {f"by {upload.artist.lower()}": 12, "portrait": 7}}
        return generic_lora(name, ss_tag_frequency=json.dumps(tags))
    return generic_lora(name)


def hub_text(upload: Planned) -> str | None:
    """The hub text naming the artist, for ``hubtext`` uploads."""
    if upload.kind != "hubtext" or upload.artist is None:
        return None
    return f"Soft painterly portraits in the style of {upload.artist}."


def release(hubs: Hubs, upload: Planned, models: Models) -> tuple[str, str]:
    """Publish ``upload`` on its hub now; returns its (source, hub id)."""
    data = file_bytes(upload, models)
    text = hub_text(upload)
    now = datetime.now(UTC)
    if upload.hub == "civitai":
        description = f"<p>{text}</p>" if text else "<p>A LoRA.</p>"
        version = hubs.civitai.add_upload(
            upload.title.title(), data, published_at=now, description=description
        )
        return "civitai", str(version.id)
    repo_id = f"chaos-{upload.n % 7}/{upload.title.replace(' ', '-')}"
    card = {"instance_prompt": text} if text else {}
    files = {f"{upload.title.replace(' ', '_')}.safetensors": data}
    hubs.huggingface.add_repo(repo_id, now, files, card_data=card, readme="# a LoRA\n")
    return "huggingface", repo_id


def expected_findings(
    released: Mapping[tuple[str, str], Planned],
) -> set[tuple[str, str, str]]:
    """(source, hub id, artist) for every upload that imitates an artist."""
    return {(s, u, p.artist) for (s, u), p in released.items() if p.artist is not None}


def probed(planned: Sequence[Planned]) -> int:
    return sum(p.kind in ("style", "benign") for p in planned)
