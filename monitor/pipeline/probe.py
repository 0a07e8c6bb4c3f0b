"""The probe stage: one LoRA file through the prompt plan, the base cache and the lift scoring.

``Prober.probe`` is synchronous and GPU-bound; ``Prober.probe_async`` runs it on the one
worker thread that owns the pipelines (and the CUDA context), so the event loop never
waits on torch. The plan is drawn in two passes under one LoRA load: a quick pass
(neutral and trigger-word prompts) whose lifts pick the nearest artists, then artist-name
prompts for those and for the artists screening named. Base-model images come from
``ProbeCache`` and are drawn only on a miss.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image

from detectors.errors import ConfigError, ProbeError
from detectors.probe import calibration
from detectors.probe import plan as prompt_plan
from detectors.probe.base import CheckpointBackend, Draw, ProbeBackend
from detectors.probe.bases import DerivativeBase, choose_base, probe_key, with_prefix
from detectors.probe.plan import PlannedImage
from detectors.probe.scoring import StyleLift, probe_matches, style_lifts
from detectors.results import ArtistMatch, ArtistRef
from detectors.screening import Screening
from detectors.style.artists import ArtistGallery
from detectors.style.base import Embeddings, StyleEmbedder
from monitor.pipeline.score import put_evidence_sheet, with_evidence_sheet
from monitor.runtime import Runtime
from monitor.settings import Settings
from storage.blobs import BlobStore
from storage.probe_cache import ProbeCache, ProbeRun
from storage.references import reference_blobs

log = logging.getLogger(__name__)
T = TypeVar("T")

TRIGGER_SOURCES = frozenset({"trainedWords", "modelspec.trigger_phrase", "trigger_words"})
NEAREST_ARTISTS = 2


@dataclass(frozen=True, slots=True)
class ProbeOutcome:
    """What the probe found: ``ran`` False with a ``reason`` when it could not run.

    ``sheets`` maps an artist id to the evidence sheet's blob key; ``lifts`` every artist
    with references to its detection statistic (``StyleLift.detection``: what
    ``calibrate_threshold`` takes the max of, per benign LoRA); ``threshold`` is the one the
    findings were decided with; ``unet_evaluations`` counts the denoiser evaluations this
    probe cost (base-cache hits cost none).
    """

    ran: bool
    reason: str = ""
    matches: tuple[ArtistMatch, ...] = ()
    sheets: Mapping[int, str] = field(default_factory=dict)
    lifts: Mapping[int, float] = field(default_factory=dict)
    threshold: float = 0.0
    images: int = 0
    unet_evaluations: int = 0


class Prober:
    """Probes LoRA files; one instance per process, its backend used by one thread only."""

    def __init__(
        self,
        backend: ProbeBackend,
        embedder: StyleEmbedder,
        cache: ProbeCache,
        blobs: BlobStore,
        *,
        max_images: int = 8,
        lift_threshold: float | None = None,
        nearest_artists: int = NEAREST_ARTISTS,
        bases: Sequence[DerivativeBase] = (),
    ) -> None:
        self._backend = backend
        self._embedder = embedder
        self._cache = cache
        self._blobs = blobs
        self._max_images = max_images
        self._threshold = lift_threshold
        self._nearest = nearest_artists
        self._bases = tuple(bases)
        self._prefixes = {probe_key(b.family, b.name): b.prompt_prefix for b in self._bases}
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="probe")

    @property
    def backend(self) -> ProbeBackend:
        return self._backend

    @property
    def embedder(self) -> StyleEmbedder:
        return self._embedder

    @property
    def cache(self) -> ProbeCache:
        return self._cache

    @property
    def lift_threshold(self) -> float:
        """The detection at which a probe flags an upload, before any base model's null
        calibration: the configured one, else the embedder's (``detectors.probe.calibration``)."""
        if self._threshold is not None:
            return self._threshold
        return calibration.threshold(self._embedder.name)

    def threshold_for(self, family: str, gallery: ArtistGallery) -> float:
        """The detection threshold for a probe on ``family``: the configured one, else the
        embedder's, raised where the base model against itself (the neutral prompts drawn with
        other seeds, cached like every base image) comes within ``NULL_FACTOR`` of it."""
        if self._threshold is not None:
            return self._threshold
        images = _PlanImages()
        plans = [self._prefixed(family, plan) for plan in prompt_plan.null_plans()]
        for plan in plans:
            self._ensure_base(family, plan, images)
        main, *others = [
            self._vectors([images.base[(p.prompt, p.seed)] for p in plan]) for plan in plans
        ]
        null = [style_lifts(gallery, other, main)[0].detection for other in others]
        return calibration.threshold(self._embedder.name, null)

    def base_for(self, family: str, metadata: Mapping[str, str], hub_base_model: str | None) -> str:
        """The probe key (``detectors.probe.bases``) an upload of ``family`` is drawn on: a
        configured derivative base its metadata or hub names, else the family's own."""
        return probe_key(family, choose_base(family, metadata, hub_base_model, self._bases))

    def _prefixed(self, family: str, plan: Sequence[PlannedImage]) -> list[PlannedImage]:
        """The plan with the base's prompt prefix (a derivative's quality or score tags)."""
        prefix = self._prefixes.get(family, "")
        if not prefix:
            return list(plan)
        prompts = with_prefix(prefix, [p.prompt for p in plan])
        return [replace(p, prompt=q) for p, q in zip(plan, prompts, strict=True)]

    def unavailable(self, family: str) -> str | None:
        """Why a file of ``family`` cannot be probed, or None when it can."""
        if family not in self._backend.families():
            return f"no base model configured for family {family}"
        return None

    async def probe_async(
        self,
        lora: Path,
        screening: Screening,
        artists: Sequence[ArtistRef],
        references: Mapping[int, Sequence[str]],
        *,
        family: str | None = None,
        remember_as: str | None = None,
        kind: str = "lora",
    ) -> ProbeOutcome:
        """``probe`` on the probe thread; the caller's loop stays free."""
        call = functools.partial(
            self.probe,
            lora,
            screening,
            artists,
            references,
            family=family,
            remember_as=remember_as,
            kind=kind,
        )
        return await self.on_probe_thread(call)

    async def on_probe_thread(self, work: Callable[[], T]) -> T:
        """Run ``work`` on the probe thread (the one that owns the pipelines and the
        embedder's device), after the probe in flight."""
        return await asyncio.get_running_loop().run_in_executor(self._worker, work)

    def close(self) -> None:
        self._worker.shutdown(wait=True)

    def probe(
        self,
        lora: Path,
        screening: Screening,
        artists: Sequence[ArtistRef],
        references: Mapping[int, Sequence[str]],
        *,
        family: str | None = None,
        remember_as: str | None = None,
        kind: str = "lora",
    ) -> ProbeOutcome:
        """Probe one LoRA file (``kind`` "checkpoint": a full checkpoint, drawn with its
        weights in place of the base model's, on the same plan). ``references`` maps artist
        ids to reference blob keys; ``family`` overrides the screening's base family.
        ``remember_as`` (an upload's `storage.probe_cache.run_key`) keeps the run in the probe
        cache, so that references added later can score it without drawing again. Raises
        ProbeError when the backend fails (the LoRA does not fit the base model, a load
        failed)."""
        family = family or screening.base_family
        reason = self.unavailable(family) or _no_references(references)
        if reason:
            return ProbeOutcome(ran=False, reason=reason)
        names = {a.artist_id: a.name for a in artists}
        gallery, labels = self._gallery(references, names)
        start = self._backend.unet_evaluations
        images = _PlanImages()
        quick = prompt_plan.quick_pass(_trigger_words(screening), self._max_images)
        quick = self._prefixed(family, quick)
        self._ensure_base(family, quick, images)
        with self._applied(kind, family, lora) as draw:
            self._draw(draw, quick, images)
            nearest = self._nearest_artists(gallery, images, names)
            named = [(m.artist_id, m.artist) for m in screening.matches]
            chosen = prompt_plan.candidates(named, nearest, self._nearest)
            second = prompt_plan.artist_pass(chosen, self._max_images, len(quick))
            second = self._prefixed(family, second)
            self._draw(draw, second, images)
        self._ensure_base(family, second, images)
        lora_vecs, base_vecs = self._plan_vectors(images)
        lifts = style_lifts(gallery, lora_vecs, base_vecs)
        threshold = self.threshold_for(family, gallery)
        matches = probe_matches(
            lifts, {str(k): v for k, v in names.items()}, screening.matches, threshold, labels
        )
        sheets = {m.artist_id: self._sheet(images, references, m.artist_id) for m in matches}
        matches = [with_evidence_sheet(m, sheets[m.artist_id]) for m in matches]
        if remember_as is not None:
            self._remember(remember_as, family, images, lora_vecs, base_vecs)
        log.info(
            "probed %s: %d findings",
            lora.name,
            len(matches),
            extra={"stage": "probe", "family": family},
        )
        return ProbeOutcome(
            ran=True,
            reason="",
            matches=tuple(matches),
            sheets=sheets,
            lifts={int(s.artist_id): s.detection for s in lifts},
            threshold=threshold,
            images=len(images.plan),
            unet_evaluations=self._backend.unet_evaluations - start,
        )

    def _applied(self, kind: str, family: str, path: Path) -> AbstractContextManager[Draw]:
        if kind != "checkpoint":
            return self._backend.lora(family, path)
        if not isinstance(self._backend, CheckpointBackend):
            raise ProbeError("this probe backend cannot load full checkpoints")
        return self._backend.checkpoint(family, path)

    def _gallery(
        self, references: Mapping[int, Sequence[str]], names: Mapping[int, str]
    ) -> tuple[ArtistGallery, dict[str, list[str]]]:
        vectors = {
            str(artist_id): self._vectors(blobs)
            for artist_id, blobs in references.items()
            if blobs and artist_id in names
        }
        if not vectors:
            raise ProbeError("no registered artist has reference images to compare with")
        labels = {str(a): [b[:12] for b in blobs] for a, blobs in references.items()}
        return ArtistGallery.from_references(vectors), labels

    def _vectors(self, blobs: Sequence[str]) -> Embeddings:
        """Style vectors of image blobs, embedded once per embedder and cached."""
        return self._cache.vectors(self._embedder, blobs)

    def _ensure_base(self, family: str, plan: Sequence[PlannedImage], images: _PlanImages) -> None:
        key = self._backend.settings_key(family)
        blobs = [self._cache.base_image(family, key, p.prompt, p.seed) for p in plan]
        todo = [i for i, b in enumerate(blobs) if b is None]
        if todo:
            drawn = self._backend.generate(
                family, [plan[i].prompt for i in todo], [plan[i].seed for i in todo]
            )
            for i, image in zip(todo, drawn, strict=True):
                blobs[i] = self._cache.put_base_image(
                    family, key, plan[i].prompt, plan[i].seed, image
                )
        for item, blob in zip(plan, blobs, strict=True):
            assert blob is not None  # every miss was drawn just above
            images.base[(item.prompt, item.seed)] = blob

    def _draw(self, draw: Draw, plan: Sequence[PlannedImage], images: _PlanImages) -> None:
        if not plan:
            return
        drawn = draw([p.prompt for p in plan], [p.seed for p in plan])
        images.plan.extend(plan)
        images.lora.extend(drawn)

    def _plan_vectors(self, images: _PlanImages) -> tuple[Embeddings, Embeddings]:
        """Style vectors of the LoRA's images and of the base images, rows paired."""
        lora_vecs = self._embedder.embed(images.lora)
        base_vecs = self._vectors([images.base[(p.prompt, p.seed)] for p in images.plan])
        return lora_vecs, base_vecs

    def _lifts(self, gallery: ArtistGallery, images: _PlanImages) -> list[StyleLift]:
        return style_lifts(gallery, *self._plan_vectors(images))

    def _remember(
        self,
        upload: str,
        family: str,
        images: _PlanImages,
        lora_vecs: Embeddings,
        base_vecs: Embeddings,
    ) -> None:
        run = ProbeRun(
            family=family,
            prompts=tuple(p.prompt for p in images.plan),
            seeds=tuple(p.seed for p in images.plan),
            lora_images=tuple(self._cache.put_thumbnail(i) for i in images.lora),
            base_images=tuple(images.base[(p.prompt, p.seed)] for p in images.plan),
            lora_vectors=np.asarray(lora_vecs, dtype=np.float32),
            base_vectors=np.asarray(base_vecs, dtype=np.float32),
        )
        self._cache.put_run(self._embedder.name, upload, run)

    def _nearest_artists(
        self, gallery: ArtistGallery, images: _PlanImages, names: Mapping[int, str]
    ) -> list[tuple[int, str]]:
        lifts = self._lifts(gallery, images)
        return [(int(s.artist_id), names[int(s.artist_id)]) for s in lifts[: self._nearest]]

    def _sheet(
        self, images: _PlanImages, references: Mapping[int, Sequence[str]], artist_id: int
    ) -> str:
        base = [self._cache.image(images.base[(p.prompt, p.seed)]) for p in images.plan]
        refs = list(references.get(artist_id, ()))
        return put_evidence_sheet(self._blobs, images.lora, base, refs, self._cache.image)


@dataclass
class _PlanImages:
    """The plan drawn so far: LoRA images in plan order, base blobs by (prompt, seed)."""

    plan: list[PlannedImage] = field(default_factory=list)
    lora: list[Image.Image] = field(default_factory=list)
    base: dict[tuple[str, int], str] = field(default_factory=dict)


def _trigger_words(screening: Screening) -> list[str]:
    words: list[str] = []
    for f in screening.fields:
        if f.source in TRIGGER_SOURCES:
            words.extend(w.strip() for w in f.text.split(",") if w.strip())
    return words


def _no_references(references: Mapping[int, Sequence[str]]) -> str | None:
    if not any(references.values()):
        return "no registered artist has reference images to compare with"
    return None


def style_embedder(settings: Settings) -> StyleEmbedder:
    """The embedder ``[style] embedder`` names, built from its local weights; ConfigError
    when the weights key is unset or the weights do not load."""
    style = settings.style
    if style.embedder == "clip":
        if style.clip_weights is None:
            raise ConfigError(["style.clip_weights: required when style.embedder is 'clip'"])
        from detectors.style.clip import ClipEmbedder

        return ClipEmbedder(style.clip_weights, device=settings.probe.device)
    if style.embedder == "csd":
        if style.csd_weights is None:
            raise ConfigError(["style.csd_weights: required when style.embedder is 'csd'"])
        from detectors.style.csd import CsdEmbedder

        return CsdEmbedder(style.csd_weights, device=settings.probe.device)
    if style.embedder == "gram":
        from detectors.style.gram import GramEmbedder

        return GramEmbedder()
    from detectors.style.style_v1 import StyleV1Embedder

    return StyleV1Embedder()


def references_for(runtime: Runtime) -> tuple[list[ArtistRef], dict[int, list[str]]]:
    """Every artist and their reference blob keys, read from the runtime's database."""
    return runtime.store.artist_refs(), reference_blobs(runtime.engine)
