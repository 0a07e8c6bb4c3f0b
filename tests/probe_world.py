"""What the per-family probe tests share: three registered artists with tiny-model style
references, a Prober on the family's warm pipeline, and the checks every family passes (a
LoRA in each key layout draws the same images and unloads bit for bit; a file whose keys fit
nothing is a probe error)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from detectors.names import ArtistIndex
from detectors.probe.base import GenerationSettings
from detectors.probe.diffusers_probe import DiffusersProbe
from detectors.results import ArtistRef
from detectors.screening import read_header, screen_header
from detectors.style.gram import GramEmbedder
from monitor.pipeline.probe import ProbeOutcome, Prober
from storage.file_blobs import FileBlobStore
from storage.probe_cache import ProbeCache
from tests import probe_models as pm

GENERATION = GenerationSettings(
    steps=pm.STEPS, guidance_scale=1.0, size_px=pm.IMAGE_PX, batch_images=4
)
PROMPTS = ["a house", "a tree by the river", "a boat"]
SEEDS = [1, 2, 3]
ARTISTS = [ArtistRef(1, "Ember Vale"), ArtistRef(2, "Tide Marsh"), ArtistRef(3, "Moss Hart")]
STYLE_OF = {1: "ember", 2: "tide", 3: "moss"}


class ProbeWorld:
    """A Prober on one family's tiny pipeline, with the three artists' references stored."""

    def __init__(self, prober: Prober, references: dict[int, list[str]], family: str) -> None:
        self.prober = prober
        self.references = references
        self.family = family

    def probe_unnamed(self, path: Path, *, family_from_file: bool = False) -> ProbeOutcome:
        """Screen ``path`` (asserting nothing in it names an artist), then probe it; with
        ``family_from_file`` the family is the one screening read from the file's widths."""
        data = path.read_bytes()
        header = read_header(data, file_size=len(data), filename=path.name)
        screening = screen_header(header, ArtistIndex.build(ARTISTS))
        assert screening.matches == ()  # nothing in the file names an artist
        family = self.family
        if family_from_file:
            assert screening.base_family == self.family
            family = screening.base_family
        return self.prober.probe(path, screening, ARTISTS, self.references, family=family)


@contextmanager
def probe_world(base: Path, family: str, root: Path) -> Iterator[ProbeWorld]:
    blobs = FileBlobStore(root / "blobs")
    references = {}
    for artist_id, style in STYLE_OF.items():
        keys = []
        for image in pm.style_references(base, style, n=4, seed=artist_id):
            out = io.BytesIO()
            image.save(out, format="PNG")
            keys.append(blobs.put(out.getvalue()))
        references[artist_id] = keys
    backend = DiffusersProbe({family: base}, device="cpu", generation=GENERATION)
    prober = Prober(backend, GramEmbedder(), ProbeCache(root / "probe-cache", blobs), blobs)
    try:
        yield ProbeWorld(prober, references, family)
    finally:
        prober.close()


def check_layouts_draw_alike_and_unload(
    probe: DiffusersProbe,
    family: str,
    state: Mapping[str, torch.Tensor],
    save: Callable[[Mapping[str, torch.Tensor], Path, str], Path],
    layouts: Sequence[str],
    folder: Path,
) -> None:
    """The same weights saved in each layout change the images alike, and the pipeline is
    back to base bit for bit afterwards, at one denoiser evaluation per image per step."""
    files = {k: save(state, folder / f"{k}.safetensors", k) for k in layouts}
    evaluations = probe.unet_evaluations
    before = probe.generate(family, PROMPTS, SEEDS)
    assert [im.size for im in before] == [(pm.IMAGE_PX, pm.IMAGE_PX)] * len(PROMPTS)
    drawn = {k: probe.generate(family, PROMPTS, SEEDS, lora=f) for k, f in files.items()}
    after = probe.generate(family, PROMPTS, SEEDS)
    assert pm.grid_distance(before, drawn[layouts[0]]) > 1.0  # the LoRA shows
    for layout in layouts[1:]:
        assert pm.grid_distance(drawn[layouts[0]], drawn[layout]) < 0.5, layout
    assert [im.tobytes() for im in after] == [im.tobytes() for im in before]
    # One transformer evaluation per image per step (no guidance halves at scale 1).
    drawn_runs = 2 + len(layouts)
    assert probe.unet_evaluations - evaluations == drawn_runs * len(PROMPTS) * pm.STEPS


def check_keys_that_fit_nothing_are_errors(
    probe: DiffusersProbe, family: str, folder: Path
) -> None:
    """A LoRA naming no module of the base, and an SD1 UNet LoRA (which the transformer
    loaders skip with only a warning), are probe errors; the base draws as before."""
    from safetensors.torch import save_file

    from detectors.errors import ProbeError

    path = folder / "stranger.safetensors"
    stranger = {"lora_A": torch.ones(4, 8), "lora_B": torch.ones(8, 4)}
    save_file({f"transformer.no_such_block.{k}.weight": v for k, v in stranger.items()}, str(path))
    before = probe.generate(family, PROMPTS[:1], SEEDS[:1])
    with pytest.raises(ProbeError, match="cannot apply the LoRA stranger"):
        probe.generate(family, PROMPTS[:1], SEEDS[:1], lora=path)
    unet = folder / "unet.safetensors"
    save_file(
        {f"unet.down_blocks.0.attn.to_q.{k}.weight": v for k, v in stranger.items()}, str(unet)
    )
    with pytest.raises(ProbeError, match="none of its keys fit the base model"):
        probe.generate(family, PROMPTS[:1], SEEDS[:1], lora=unet)
    assert probe.generate(family, PROMPTS[:1], SEEDS[:1])[0].tobytes() == before[0].tobytes()


def assert_flagged_for(outcome: ProbeOutcome, artist: str) -> None:
    assert outcome.ran
    assert [(m.artist, m.stage) for m in outcome.matches] == [(artist, "probe")]


def assert_clean(outcome: ProbeOutcome) -> None:
    assert outcome.ran
    assert outcome.matches == ()
