"""Building the probe stage's Prober from ``[probe]`` and ``[style]``: the diffusers backend,
the style embedder, the probe cache and the derivative bases."""

from __future__ import annotations

from detectors.probe.base import GenerationSettings
from detectors.probe.bases import DerivativeBase, probe_key
from monitor.pipeline.probe import Prober, style_embedder
from monitor.runtime import Runtime
from storage.probe_cache import ProbeCache


def build_prober(runtime: Runtime, generation: GenerationSettings | None = None) -> Prober:
    """The Prober the settings describe: DiffusersProbe drawing as ``[probe]`` says, the
    configured style embedder, the probe cache under ``<data_dir>/probe-cache``. Imports no
    torch until first use."""
    from detectors.probe.diffusers_probe import DiffusersProbe

    settings = runtime.settings
    if generation is None:
        probe = settings.probe
        generation = GenerationSettings(
            steps=probe.steps,
            guidance_scale=probe.guidance_scale,
            size_px=probe.size_px,
            batch_images=probe.batch_images,
        )
    bases = [
        DerivativeBase(name, b.family, tuple(b.match or [name]), b.prompt_prefix)
        for name, b in settings.probe.bases.items()
    ]
    folders = dict(settings.probe.base_models)
    folders.update({probe_key(b.family, n): b.path for n, b in settings.probe.bases.items()})
    backend = DiffusersProbe(
        folders,
        device=settings.probe.device,
        lora_scale=settings.probe.lora_scale,
        merge_loras=settings.probe.merge_loras,
        generation=generation,
    )
    cache = ProbeCache(settings.data_dir / "probe-cache", runtime.blobs)
    return Prober(
        backend,
        style_embedder(settings),
        cache,
        runtime.blobs,
        max_images=settings.probe.max_images,
        lift_threshold=settings.probe.lift_threshold,
        bases=bases,
    )
