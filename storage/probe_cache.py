"""The probe cache: base-model images and style vectors, kept across uploads.

A base image is keyed by (family, the backend's settings key, prompt, seed) and drawn once
per family; a vector by (embedder name, image blob key), so reference images and base
images are embedded once per embedder. Images and vectors live in the blob store (PNG and
``.npy`` bytes); the index is one small JSON file per key under ``root``, written to a
temporary file and renamed, so a crash leaves an entry either absent or complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

from detectors.errors import StorageError
from storage.blobs import BlobNotFound, BlobStore

Vector = npt.NDArray[np.float32]


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


def _key(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()
