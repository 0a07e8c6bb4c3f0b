"""The probe on a Flux.1-shaped pipeline (a transformer denoiser, CLIP and T5 encoders, flow
matching): it loads from a local folder, applies LoRAs in PEFT, ai-toolkit and kohya layouts
through the pipeline's own loader and is exactly back to base afterwards; a file none of
whose keys fit is a probe error, never a silent draw of the base model; the probe stage flags a
Flux style LoRA (no name in it) and leaves a benign one clean."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch

from detectors.errors import ProbeError
from detectors.names import ArtistIndex
from detectors.probe.base import GenerationSettings
from detectors.probe.diffusers_probe import DiffusersProbe
from detectors.results import ArtistRef
from detectors.screening import read_header, screen_header
from detectors.style.gram import GramEmbedder
from monitor.pipeline.probe import Prober
from storage.file_blobs import FileBlobStore
from storage.probe_cache import ProbeCache
from tests import probe_flux as pf
from tests import probe_models as pm

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.filterwarnings("ignore::FutureWarning:diffusers"),
]
GENERATION = GenerationSettings(
    steps=pm.STEPS, guidance_scale=1.0, size_px=pm.IMAGE_PX, batch_images=4
)
PROMPTS = ["a house", "a tree by the river", "a boat"]
SEEDS = [1, 2, 3]
LAYOUTS = ("peft", "ai-toolkit", "kohya")
ARTISTS = [ArtistRef(1, "Ember Vale"), ArtistRef(2, "Tide Marsh"), ArtistRef(3, "Moss Hart")]
STYLE_OF = {1: "ember", 2: "tide", 3: "moss"}


@pytest.fixture(scope="module")
def flux(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    torch.set_num_threads(1)
    return pf.build_tiny_flux(tmp_path_factory.mktemp("flux") / "base")


@pytest.fixture(scope="module")
def probe(flux: Path) -> DiffusersProbe:
    return DiffusersProbe({"flux": flux}, device="cpu", generation=GENERATION)


def test_flux_loras_in_every_layout_change_images_and_unload_bit_for_bit(flux, probe, tmp_path):
    state = pf.random_flux_lora(flux, seed=5)
    files = {k: pf.save_flux_lora(state, tmp_path / f"{k}.safetensors", k) for k in LAYOUTS}
    before = probe.generate("flux", PROMPTS, SEEDS)
    assert [im.size for im in before] == [(pm.IMAGE_PX, pm.IMAGE_PX)] * 3
    drawn = {k: probe.generate("flux", PROMPTS, SEEDS, lora=f) for k, f in files.items()}
    after = probe.generate("flux", PROMPTS, SEEDS)
    assert pm.grid_distance(before, drawn["peft"]) > 1.0  # the LoRA shows
    # The same weights in each key layout draw the same images.
    for layout in ("ai-toolkit", "kohya"):
        assert pm.grid_distance(drawn["peft"], drawn[layout]) < 0.5, layout
    assert [im.tobytes() for im in after] == [im.tobytes() for im in before]
    # One transformer evaluation per image per step (no guidance halves at scale 1).
    assert probe.unet_evaluations == 5 * len(PROMPTS) * pm.STEPS


def test_a_lora_whose_keys_fit_nothing_is_a_probe_error(flux, probe, tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "stranger.safetensors"
    stranger = {"lora_A": torch.ones(4, 8), "lora_B": torch.ones(8, 4)}
    save_file({f"transformer.no_such_block.{k}.weight": v for k, v in stranger.items()}, str(path))

    before = probe.generate("flux", PROMPTS[:1], SEEDS[:1])
    with pytest.raises(ProbeError, match="cannot apply the LoRA stranger"):
        probe.generate("flux", PROMPTS[:1], SEEDS[:1], lora=path)
    # An SD1 UNet LoRA: the Flux loader skips every key with only a warning.
    unet = tmp_path / "unet.safetensors"
    save_file(
        {f"unet.down_blocks.0.attn.to_q.{k}.weight": v for k, v in stranger.items()}, str(unet)
    )
    with pytest.raises(ProbeError, match="none of its keys fit the base model"):
        probe.generate("flux", PROMPTS[:1], SEEDS[:1], lora=unet)
    assert probe.generate("flux", PROMPTS[:1], SEEDS[:1])[0].tobytes() == before[0].tobytes()


@pytest.fixture(scope="module")
def world(flux: Path, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("flux-probe")
    blobs = FileBlobStore(root / "blobs")
    references = {}
    for artist_id, style in STYLE_OF.items():
        keys = []
        for image in pm.style_references(flux, style, n=4, seed=artist_id):
            out = io.BytesIO()
            image.save(out, format="PNG")
            keys.append(blobs.put(out.getvalue()))
        references[artist_id] = keys
    backend = DiffusersProbe({"flux": flux}, device="cpu", generation=GENERATION)
    prober = Prober(backend, GramEmbedder(), ProbeCache(root / "probe-cache", blobs), blobs)
    yield prober, references
    prober.close()


def _probe(world, path: Path):
    prober, references = world
    data = path.read_bytes()
    header = read_header(data, file_size=len(data), filename=path.name)
    screening = screen_header(header, ArtistIndex.build(ARTISTS))
    assert screening.matches == ()  # nothing in the file names an artist
    return prober.probe(path, screening, ARTISTS, references, family="flux")


def test_a_flux_style_lora_is_a_probe_finding(world, flux, tmp_path):
    # Trained toward "tide" (a distinct palette): its lift is 0.52 against a threshold of 0.49,
    # the other artists' below zero; CPU float32 draws repeat bit for bit.
    style = pf.train_flux_lora(flux, "tide")
    outcome = _probe(world, pf.save_flux_lora(style, tmp_path / "style.safetensors", "peft"))
    assert outcome.ran
    assert [(m.artist, m.stage) for m in outcome.matches] == [("Tide Marsh", "probe")]


def test_a_benign_flux_lora_is_clean(world, flux, tmp_path):
    benign = pf.benign_flux_lora(flux, seed=1)
    outcome = _probe(world, pf.save_flux_lora(benign, tmp_path / "benign.safetensors", "kohya"))
    assert outcome.ran
    assert outcome.matches == ()
