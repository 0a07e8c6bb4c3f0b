"""The probe cache: base-model images and style vectors, kept across uploads.

A base image is keyed by (family, the backend's settings key, prompt, seed) and drawn once
per family; a vector by (embedder name, image blob key), so reference images and base
images are embedded once per embedder. A probe run (`ProbeRun`: what one probe of one
upload drew and its style vectors) is keyed by (embedder name, upload), so references added
later can score the upload again without drawing anything. Images and vectors live in the
blob store (PNG, JPEG, ``.npy`` and raw float32 bytes); the index is one small JSON file per key
under ``root``, written to a temporary file and renamed, so a crash leaves an entry either
absent or complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

from detectors.errors import StorageError
from detectors.style.base import StyleEmbedder
from storage.blobs import BlobNotFound, BlobStore

Vector = npt.NDArray[np.float32]
# LoRA images are kept as small JPEGs: enough for an evidence sheet's cells (192 px).
THUMBNAIL_PX = 192
THUMBNAIL_QUALITY = 88


@dataclass(frozen=True, slots=True)
class ProbeRun:
    """One probe of one upload, kept for scoring it later against other references.

    Row ``i`` of ``lora_vectors`` and ``base_vectors`` is the style vector of the LoRA's and
    the base model's image for ``(prompts[i], seeds[i])``; ``lora_images`` are small copies of
    the LoRA's images and ``base_images`` the base images (blob keys, same order).
    """

    family: str
    prompts: tuple[str, ...]
    seeds: tuple[int, ...]
    lora_images: tuple[str, ...]
    base_images: tuple[str, ...]
    lora_vectors: Vector
    base_vectors: Vector


class ProbeCache:
    """Index files under ``root`` (``<data_dir>/probe-cache``); bytes in ``blobs``."""

    def __init__(self, root: Path, blobs: BlobStore) -> None:
        self.root = root
        self.blobs = blobs

    def base_image(self, family: str, settings_key: str, prompt: str, seed: int) -> str | None:
        """The blob key of the cached base image, or None."""
        entry = self._read(_key("image", family, settings_key, prompt, seed))
        key = entry.get("blob") if entry else None
        return key if isinstance(key, str) and self.blobs.exists(key) else None

    def put_base_image(
        self, family: str, settings_key: str, prompt: str, seed: int, image: Image.Image
    ) -> str:
        blob = self.put_image(image)
        self._write(_key("image", family, settings_key, prompt, seed), {"blob": blob})
        return blob

    def put_image(self, image: Image.Image) -> str:
        out = io.BytesIO()
        image.save(out, format="PNG")
        return self.blobs.put(out.getvalue())

    def image(self, blob: str) -> Image.Image:
        with Image.open(io.BytesIO(self.blobs.read(blob))) as img:
            return img.convert("RGB")

    def vector(self, embedder: str, blob: str) -> Vector | None:
        """The cached style vector of an image blob for one embedder, or None."""
        entry = self._read(_key("vector", embedder, blob))
        key = entry.get("blob") if entry else None
        if not isinstance(key, str):
            return None
        try:
            data = self.blobs.read(key)
        except BlobNotFound:
            return None
        vector: Vector = np.load(io.BytesIO(data), allow_pickle=False).astype(np.float32)
        return vector

    def put_vector(self, embedder: str, blob: str, vector: Vector) -> None:
        out = io.BytesIO()
        np.save(out, np.asarray(vector, dtype=np.float32), allow_pickle=False)
        self._write(_key("vector", embedder, blob), {"blob": self.blobs.put(out.getvalue())})

    def vectors(self, embedder: StyleEmbedder, blobs: Sequence[str]) -> Vector:
        """Style vectors of image blobs (rows in order), embedding only those not cached."""
        cached = [self.vector(embedder.name, b) for b in blobs]
        missing = [i for i, v in enumerate(cached) if v is None]
        if missing:
            fresh = embedder.embed([self.image(blobs[i]) for i in missing])
            for i, vector in zip(missing, fresh, strict=True):
                self.put_vector(embedder.name, blobs[i], vector)
                cached[i] = vector
        return np.stack([v for v in cached if v is not None]).astype(np.float32)

    def put_thumbnail(self, image: Image.Image) -> str:
        """A JPEG copy of ``image`` at most ``THUMBNAIL_PX`` on a side; its blob key."""
        small = image.convert("RGB")
        small.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        small.save(out, format="JPEG", quality=THUMBNAIL_QUALITY)
        return self.blobs.put(out.getvalue())

    def put_run(self, embedder: str, upload: str, run: ProbeRun) -> None:
        """Keep a probe run of ``upload`` (a stable key, e.g. ``source:upload_id``); a later
        run of the same upload replaces it."""
        pair = np.stack([run.lora_vectors, run.base_vectors]).astype("<f4")
        entry: dict[str, object] = {
            "vectors": self.blobs.put(pair.tobytes()),  # raw: read back without parsing
            "dim": int(pair.shape[2]),
            "family": run.family,
            "prompts": list(run.prompts),
            "seeds": list(run.seeds),
            "lora_images": list(run.lora_images),
            "base_images": list(run.base_images),
        }
        self._write(_key("run", embedder, upload), entry)

    def run(self, embedder: str, upload: str) -> ProbeRun | None:
        """The probe run kept for ``upload`` with this embedder's vectors, or None (never
        kept, or unreadable: the caller probes again)."""
        entry = self._read(_key("run", embedder, upload))
        if entry is None:
            return None
        vectors, dim = entry.get("vectors"), entry.get("dim")
        if not (isinstance(vectors, str) and isinstance(dim, int) and dim > 0):
            return None
        arrays = self._arrays(vectors, dim)
        if arrays is None:
            return None
        seeds = entry.get("seeds")
        run = ProbeRun(
            family=str(entry.get("family", "")),
            prompts=_strings(entry.get("prompts")),
            seeds=tuple(s for s in seeds if isinstance(s, int)) if isinstance(seeds, list) else (),
            lora_images=_strings(entry.get("lora_images")),
            base_images=_strings(entry.get("base_images")),
            lora_vectors=arrays[0],
            base_vectors=arrays[1],
        )
        return run if _consistent(run) else None

    def _arrays(self, blob: str, dim: int) -> tuple[Vector, Vector] | None:
        """The LoRA and base vectors from a kept run's raw float32 bytes, or None."""
        try:
            data = self.blobs.read(blob)
        except (BlobNotFound, OSError):
            return None
        if not data or len(data) % (8 * dim):  # two arrays of whole rows
            return None  # damaged: a miss, like a damaged index entry
        pair = np.frombuffer(data, dtype="<f4").reshape(2, -1, dim).astype(np.float32)
        return pair[0], pair[1]

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def _read(self, key: str) -> dict[str, object] | None:
        try:
            entry = json.loads(self._path(key).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return None  # a damaged entry is a miss: the value is drawn again
        return entry if isinstance(entry, dict) else None

    def _write(self, key: str, entry: dict[str, object]) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(entry, fh)
            os.replace(tmp, path)
        except OSError as exc:
            with contextlib.suppress(OSError, UnboundLocalError):
                os.unlink(tmp)
            raise StorageError(
                f"cannot write the probe cache in {self.root}: {exc.strerror}"
            ) from exc


def run_key(source: str, upload_id: str) -> str:
    """How the probe cache names an upload's probe run (`ProbeCache.put_run`)."""
    return f"{source}:{upload_id}"


def _strings(value: object) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def _consistent(run: ProbeRun) -> bool:
    """Every column has one entry per row of two paired, non-empty vector arrays."""
    lora, base = run.lora_vectors, run.base_vectors
    if lora.ndim != 2 or lora.shape != base.shape or lora.shape[0] == 0:
        return False
    columns = (run.prompts, run.seeds, run.lora_images, run.base_images)
    return all(len(c) == lora.shape[0] for c in columns)


def _key(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()
