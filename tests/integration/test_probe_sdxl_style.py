"""The probe stage on the tiny SDXL: a style LoRA with no name in it is a probe finding for
its artist, a benign LoRA is clean (issue #21's end-to-end test for the sdxl family). The
tiny SDXL here has SDXL's text widths (768 + 1280: 2048-wide cross-attention), so screening
reads the family "sdxl" from each LoRA's own widths."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch

from detectors.names import ArtistIndex
from detectors.probe.base import GenerationSettings
from detectors.probe.diffusers_probe import DiffusersProbe
from detectors.results import ArtistRef
from detectors.screening import read_header, screen_header
from detectors.style.gram import GramEmbedder
from monitor.pipeline.probe import Prober
from storage.file_blobs import FileBlobStore
from storage.probe_cache import ProbeCache
from tests import probe_models as pm
from tests import probe_sdxl as px

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.filterwarnings("ignore::FutureWarning:diffusers"),
]
GENERATION = GenerationSettings(
    steps=pm.STEPS, guidance_scale=1.0, size_px=pm.IMAGE_PX, batch_images=4
)
ARTISTS = [ArtistRef(1, "Ember Vale"), ArtistRef(2, "Tide Marsh"), ArtistRef(3, "Moss Hart")]
STYLE_OF = {1: "ember", 2: "tide", 3: "moss"}


@pytest.fixture(scope="module")
def sdxl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    return px.build_tiny_sdxl(tmp_path_factory.mktemp("sdxl") / "base", text_widths=(768, 1280))


@pytest.fixture(scope="module")
def world(sdxl: Path, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("sdxl-probe")
    blobs = FileBlobStore(root / "blobs")
    references = {}
    for artist_id, style in STYLE_OF.items():
        keys = []
        for image in pm.style_references(sdxl, style, n=4, seed=artist_id):
            out = io.BytesIO()
            image.save(out, format="PNG")
            keys.append(blobs.put(out.getvalue()))
        references[artist_id] = keys
    backend = DiffusersProbe({"sdxl": sdxl}, device="cpu", generation=GENERATION)
    prober = Prober(backend, GramEmbedder(), ProbeCache(root / "probe-cache", blobs), blobs)
    yield prober, references
    prober.close()


def _probe(world, path: Path):
    prober, references = world
    data = path.read_bytes()
    header = read_header(data, file_size=len(data), filename=path.name)
    screening = screen_header(header, ArtistIndex.build(ARTISTS))
    assert screening.matches == ()  # nothing in the file names an artist
    assert screening.base_family == "sdxl"  # from the LoRA's 2048-wide context
    return prober.probe(path, screening, ARTISTS, references, family=screening.base_family)


def test_an_sdxl_style_lora_is_a_probe_finding(world, sdxl, tmp_path):
    # Trained toward "tide" (60 steps at lr 2e-2, rank 16, 15 rotating prompts encoded once,
    # through the pipeline's own 2-step sampler): its detection is 0.86 against a threshold
    # of 0.49, the other artists' below zero; CPU float32 draws repeat bit for bit. LoRA
    # seeds 1 and 2 reach 0.92 and 0.86. On 32-wide text encoders the same recipe gave
    # 0.95, 0.91, 0.96 for seeds 0, 1, 2
    # (30 steps at lr 5e-2, the SD3 recipe, left tide below zero; 60 at 5e-2 gave 0.78).
    style = px.train_sdxl_lora(sdxl, "tide")
    outcome = _probe(world, pm.save_peft_lora(style, tmp_path / "style.safetensors", rank=16))
    assert outcome.ran
    assert [(m.artist, m.stage) for m in outcome.matches] == [("Tide Marsh", "probe")]


def test_a_benign_sdxl_lora_is_clean(world, sdxl, tmp_path):
    benign = pm.benign_lora(sdxl, seed=1)
    outcome = _probe(world, pm.save_peft_lora(benign, tmp_path / "benign.safetensors"))
    assert outcome.ran
    assert outcome.matches == ()
