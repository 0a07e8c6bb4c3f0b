"""Back-scan by style: when an artist gains reference images, score the LoRAs probed earlier
against them again, from what their probes kept, without drawing anything.

Every probe keeps its run (`storage.probe_cache.ProbeRun`: the LoRA's and the base model's
style vectors for the same prompts and seeds, and small copies of the images). Scoring a
kept run against new references is the probe's own detection statistic (the lift of the
LoRA's images over the base model's for the same prompts and seeds, as a share of the
headroom, less half the next artist's). An upload whose detection is not above zero is
unrelated and costs nothing more; one whose detection reaches the probe's threshold becomes
a ``probe`` finding marked as a back-scan's, with an evidence sheet built from the kept
images. Only uploads with no kept run (probed before runs were kept, or with another
embedder) are put back in the probe's queue, for a full probe.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from detectors.probe import calibration
from detectors.probe.rescore import best_detections
from detectors.probe.scoring import StyleLift, probe_matches, style_lifts
from detectors.results import ArtistMatch, ArtistRef
from detectors.style.artists import ArtistGallery
from detectors.style.base import StyleEmbedder
from monitor.pipeline.score import KEPT_SHEET_CAPTION, put_evidence_sheet, with_evidence_sheet
from monitor.runtime import Runtime
from storage.backscan_reads import BackscanReads, ProbedUpload
from storage.probe_cache import ProbeCache, ProbeRun, run_key
from storage.records import LOCAL_SOURCE
from storage.references import reference_blobs

if TYPE_CHECKING:  # the prober pulls in the probe backend: only its type is needed here
    from monitor.pipeline.probe import Prober

log = logging.getLogger(__name__)

NO_BASE_MODEL = "no base model is configured ([probe] base_models)"


@dataclass(frozen=True, slots=True)
class StyleScoring:
    """What scoring a kept run needs: the embedder the runs were kept with, the probe cache
    and the detection threshold (`monitor.pipeline.probe.Prober` has them; the CLI builds
    its own)."""

    embedder: StyleEmbedder
    cache: ProbeCache
    threshold: float


@dataclass(frozen=True, slots=True)
class StyleBackscanResult:
    """``rescored``: probed uploads scored again from their kept runs; ``closer``: those whose
    images came closer to one of the artists than the base model's; ``flagged``: findings
    per artist name; ``queued``: uploads put back in the probe's queue (no kept run);
    ``unavailable``: local files without a kept run (not fetched again). ``skipped`` says
    why nothing ran (no base model, no reference images)."""

    rescored: int = 0
    closer: int = 0
    flagged: Mapping[str, int] | None = None
    queued: int = 0
    unavailable: int = 0
    skipped: str | None = None

    def summary(self) -> list[str]:
        """What the CLI prints: ``probe back-scan: 12 probed uploads re-scored …``."""
        if self.skipped:
            return [f"probe back-scan: skipped: {self.skipped}"]
        flagged = sum((self.flagged or {}).values())
        lines = [
            f"probe back-scan: {self.rescored} probed uploads re-scored from their kept probe"
            f" images, without new generation: {self.closer} came closer to the references"
            f" than the base model, {flagged} flagged"
        ]
        for name, count in sorted((self.flagged or {}).items()):
            lines.append(f"probe back-scan: {count} flagged for {name}")
        if self.queued:
            lines.append(
                f"probe back-scan: {self.queued} uploads queued for a new probe"
                " (no kept probe images)"
            )
        if self.unavailable:
            lines.append(
                f"probe back-scan: {self.unavailable} scanned local files have no kept probe"
                " images: scan them again to probe them"
            )
        return lines


def style_backscan(
    runtime: Runtime,
    scoring: StyleScoring,
    artists: Sequence[ArtistRef],
    *,
    advance: Callable[[int], None] | None = None,
) -> StyleBackscanResult:
    """Score every probed LoRA of a configured family against ``artists``' references.

    ``advance`` is called with the size of each batch of probed uploads read (a progress
    bar's step; the total is `BackscanReads.probed_count`). Sync and CPU-bound (reference
    images not embedded yet are embedded here): serve runs it on the probe thread. Raises
    ``StorageError`` when the database fails.
    """
    families = list(runtime.settings.probe.base_models)
    if not families:
        return StyleBackscanResult(skipped=NO_BASE_MODEL)
    gallery, labels = _gallery(runtime, scoring, artists)
    if gallery is None:
        return StyleBackscanResult(skipped="no reference images to compare with")
    names = {str(a.artist_id): a.name for a in artists}
    recorded = BackscanReads(runtime.engine)
    counts: Counter[str] = Counter()
    flagged: Counter[str] = Counter()
    for batch in recorded.probed(families):
        found, missing = _score_batch(runtime, scoring, gallery, batch, names, labels, counts)
        if found:
            runtime.store.record_many_findings(found, backscan=True)
            flagged.update(m.artist for _, matches in found for m in matches)
        counts["queued"] += recorded.requeue(missing)
        if advance is not None:
            advance(len(batch))
    return StyleBackscanResult(
        rescored=counts["rescored"],
        closer=counts["closer"],
        flagged=dict(flagged),
        queued=counts["queued"],
        unavailable=counts["unavailable"],
    )


def _gallery(
    runtime: Runtime, scoring: StyleScoring, artists: Sequence[ArtistRef]
) -> tuple[ArtistGallery | None, dict[str, list[str]]]:
    """The artists' references as the probe compares them, and their blob keys by id."""
    blobs = reference_blobs(runtime.engine, [a.artist_id for a in artists])
    blobs = {artist_id: keys for artist_id, keys in blobs.items() if keys}
    if not blobs:
        return None, {}
    vectors = {str(a): scoring.cache.vectors(scoring.embedder, keys) for a, keys in blobs.items()}
    return ArtistGallery.from_references(vectors), {str(a): k for a, k in blobs.items()}


def _score_batch(
    runtime: Runtime,
    scoring: StyleScoring,
    gallery: ArtistGallery,
    batch: Sequence[ProbedUpload],
    names: Mapping[str, str],
    references: Mapping[str, list[str]],
    counts: Counter[str],
) -> tuple[list[tuple[int, list[ArtistMatch]]], list[int]]:
    """(upload key, findings) for the uploads whose kept runs reach the threshold, and the
    keys of the uploads to probe again."""
    kept, missing = _kept_runs(scoring, batch, gallery.vectors.shape[1], counts)
    found: list[tuple[int, list[ArtistMatch]]] = []
    for (upload, run), best in zip(
        kept,
        best_detections(gallery, [(r.lora_vectors, r.base_vectors) for _, r in kept]),
        strict=True,
    ):
        if best <= 0:
            continue  # no nearer to any of the artists than the base model: unrelated
        counts["closer"] += 1
        if best < scoring.threshold:
            continue
        lifts = style_lifts(gallery, run.lora_vectors, run.base_vectors)
        matches = _matches(runtime, scoring, run, lifts, names, references)
        if not matches:
            continue  # at the threshold within rounding: style_lifts has the last word
        found.append((upload.upload_pk, matches))
        log.info(
            "backscan.style.flagged",
            extra={
                "upload_pk": upload.upload_pk,
                "artist": ", ".join(m.artist for m in matches),
                "stage": "backscan",
            },
        )
    return found, missing


def _kept_runs(
    scoring: StyleScoring, batch: Sequence[ProbedUpload], dim: int, counts: Counter[str]
) -> tuple[list[tuple[ProbedUpload, ProbeRun]], list[int]]:
    """The batch's kept runs with vectors of the gallery's size, and the keys of the uploads
    without one (local files without one are only counted: they cannot be fetched)."""
    kept, missing = [], []
    for upload in batch:
        run = scoring.cache.run(scoring.embedder.name, run_key(upload.source, upload.upload_id))
        if run is not None and run.lora_vectors.shape[1] == dim:
            kept.append((upload, run))
        elif upload.source == LOCAL_SOURCE:
            counts["unavailable"] += 1
        else:
            missing.append(upload.upload_pk)
    counts["rescored"] += len(kept)
    return kept, missing


def _matches(
    runtime: Runtime,
    scoring: StyleScoring,
    run: ProbeRun,
    lifts: Sequence[StyleLift],
    names: Mapping[str, str],
    references: Mapping[str, list[str]],
) -> list[ArtistMatch]:
    """The probe's findings for the lifts at the threshold, each with an evidence sheet."""
    over = [s for s in lifts if s.detection >= scoring.threshold]
    labels = {a: [b[:12] for b in keys] for a, keys in references.items()}
    matches = probe_matches(over, names, (), scoring.threshold, labels)
    return [_with_sheet(runtime, scoring.cache, run, m, references) for m in matches]


def _with_sheet(
    runtime: Runtime,
    cache: ProbeCache,
    run: ProbeRun,
    match: ArtistMatch,
    references: Mapping[str, list[str]],
) -> ArtistMatch:
    sheet = put_evidence_sheet(
        runtime.blobs,
        [cache.image(b) for b in run.lora_images],
        [cache.image(b) for b in run.base_images],
        references.get(str(match.artist_id), []),
        cache.image,
    )
    return with_evidence_sheet(match, sheet, KEPT_SHEET_CAPTION)


def prober_scoring(prober: Prober) -> StyleScoring:
    """The scoring parts of a running probe worker's prober (its embedder, cache, threshold)."""
    return StyleScoring(prober.embedder, prober.cache, prober.lift_threshold)


def cli_scoring(runtime: Runtime) -> StyleScoring:
    """The scoring parts the settings describe, for a process without a probe worker (the
    CLI, or serve when probes run in ``stylewatch worker``): the configured embedder, the
    probe cache, ``[probe] lift_threshold`` or else the embedder's calibrated threshold
    (without the base model's null floor, which needs the probe's base model)."""
    from monitor.pipeline.probe import style_embedder

    settings = runtime.settings
    embedder = style_embedder(settings)
    configured = settings.probe.lift_threshold
    return StyleScoring(
        embedder=embedder,
        cache=ProbeCache(settings.data_dir / "probe-cache", runtime.blobs),
        threshold=calibration.threshold(embedder.name) if configured is None else configured,
    )
