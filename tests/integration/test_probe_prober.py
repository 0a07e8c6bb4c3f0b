"""The probe stage end to end on the tiny pipeline: plan, base cache, lift, findings, sheets."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from detectors.names import ArtistIndex
from detectors.probe.base import GenerationSettings
from detectors.probe.diffusers_probe import DiffusersProbe
from detectors.probe.scoring import calibrate_threshold
from detectors.results import ArtistMatch, ArtistRef, Evidence, TextField
from detectors.screening import Screening, read_header, screen_header
from detectors.style.gram import GramEmbedder
from monitor.pipeline.probe import Prober
from storage.file_blobs import FileBlobStore
from storage.probe_cache import ProbeCache
from tests.probe_fixtures import TinySD
from tests.probe_models import IMAGE_PX, STEPS, style_references

pytestmark = [
    # diffusers warns that saved configs carry keys newer or older than its classes know.
    pytest.mark.filterwarnings("ignore::FutureWarning:diffusers"),
]

TINY = GenerationSettings(steps=STEPS, guidance_scale=1.0, size_px=IMAGE_PX, batch_images=8)
ARTISTS = [ArtistRef(1, "Ember Vale"), ArtistRef(2, "Tide Marsh"), ArtistRef(3, "Moss Hart")]
STYLE_OF = {1: "ember", 2: "tide", 3: "moss"}


@pytest.fixture(scope="module")
def world(tiny_sd: TinySD, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("probe-data")
    blobs = FileBlobStore(root / "blobs")
    references = {}
    for artist_id, style in STYLE_OF.items():
        keys = []
        for image in style_references(tiny_sd.base, style, n=4, seed=artist_id):
            out = io.BytesIO()
            image.save(out, format="PNG")
            keys.append(blobs.put(out.getvalue()))
        references[artist_id] = keys
    backend = DiffusersProbe({"sd1": tiny_sd.base}, device="cpu", generation=TINY)
    prober = Prober(backend, GramEmbedder(), ProbeCache(root / "probe-cache", blobs), blobs)
    yield prober, references, blobs
    prober.close()


def _screening(path: Path, hub_text=()) -> Screening:
    data = path.read_bytes()
    header = read_header(data, file_size=len(data), filename=path.name)
    return screen_header(header, ArtistIndex.build(ARTISTS), hub_text)


def test_style_lora_without_metadata_is_a_probe_finding(world, tiny_sd):
    prober, references, blobs = world
    screening = _screening(tiny_sd.style_kohya)
    assert screening.matches == ()
    outcome = prober.probe(tiny_sd.style_kohya, screening, ARTISTS, references, family="sd1")
    assert outcome.ran
    assert outcome.images <= 8
    top = outcome.matches[0]
    assert (top.artist, top.stage) == ("Ember Vale", "probe")
    assert top.score > 0.6  # well over the threshold (0.5 at it, 0.8 at twice it)
    assert [m.artist for m in outcome.matches] == ["Ember Vale"]
    assert top.evidence[0].source == "style"
    assert top.evidence[0].text.startswith("lift 0.")
    with Image.open(io.BytesIO(blobs.read(outcome.sheets[1]))) as sheet:
        assert sheet.format == "PNG"
        assert sheet.height == 3 * 192


def test_benign_lora_is_not_flagged(world, tiny_sd):
    prober, references, _ = world
    outcome = prober.probe(
        tiny_sd.benign_peft, _screening(tiny_sd.benign_peft), ARTISTS, references, family="sd1"
    )
    assert outcome.ran
    assert outcome.matches == ()


def test_base_images_are_cached_across_loras(world, tiny_sd):
    prober, references, _ = world
    # Every artist named, so both LoRAs draw the same plan whichever artists their images are
    # nearest (the second pass adds the nearest unnamed ones): only the LoRA images are new.
    named = tuple(
        ArtistMatch(a.artist_id, a.name, 0.6, "metadata", (Evidence("tags", a.name),))
        for a in ARTISTS
    )
    screening = replace(_screening(tiny_sd.benign_kohya), matches=named)
    prober.probe(tiny_sd.benign_kohya, screening, ARTISTS, references, family="sd1")
    again = prober.probe(tiny_sd.benign_extra[0], screening, ARTISTS, references, family="sd1")
    naive = 2 * again.images * STEPS  # LoRA and base image for every pair
    assert again.unet_evaluations == again.images * STEPS
    assert again.unet_evaluations <= 0.5 * naive


def test_metadata_match_keeps_its_stage_and_gains_style_evidence(world, tiny_sd):
    prober, references, _ = world
    named = ArtistMatch(2, "Tide Marsh", 0.6, "metadata", (Evidence("trainedWords", "tide"),))
    screening = replace(_screening(tiny_sd.benign_peft), matches=(named,))
    outcome = prober.probe(tiny_sd.benign_peft, screening, ARTISTS, references, family="sd1")
    (match,) = outcome.matches
    assert (match.artist, match.stage) == ("Tide Marsh", "metadata")
    assert 0.6 <= match.score < 0.7
    assert [e.source for e in match.evidence] == ["trainedWords", "style", "evidence_sheet"]
    assert match.evidence[-1].blob_sha256 == outcome.sheets[match.artist_id]


def test_trigger_words_enter_the_plan(world, tiny_sd):
    prober, references, _ = world
    text = (TextField("trainedWords", "emberstyle"),)
    screening = _screening(tiny_sd.style_peft, text)
    outcome = prober.probe(tiny_sd.style_peft, screening, ARTISTS, references, family="sd1")
    assert outcome.matches[0].artist == "Ember Vale"


def test_reports_why_it_did_not_run(world, tiny_sd):
    prober, references, _ = world
    screening = _screening(tiny_sd.style_kohya)
    outcome = prober.probe(tiny_sd.style_kohya, screening, ARTISTS, references, family="sdxl")
    assert (outcome.ran, outcome.reason) == (False, "no base model configured for family sdxl")
    outcome = prober.probe(tiny_sd.style_kohya, screening, ARTISTS, {}, family="sd1")
    assert not outcome.ran
    assert "reference images" in outcome.reason


async def test_probe_async_runs_off_the_loop(world, tiny_sd):
    prober, references, _ = world
    screening = _screening(tiny_sd.style_peft)
    outcome = await prober.probe_async(
        tiny_sd.style_peft, screening, ARTISTS, references, family="sd1"
    )
    assert outcome.matches[0].artist == "Ember Vale"


def test_threshold_calibrated_on_benign_loras_separates_the_style(world, tiny_sd):
    prober, references, _ = world
    benign = [tiny_sd.benign_peft, *tiny_sd.benign_extra]
    lifts = []
    for path in benign:
        screening = _screening(path)
        outcome = prober.probe(path, screening, ARTISTS, references, family="sd1")
        lifts.append(max(outcome.lifts.values()))
    threshold = calibrate_threshold(lifts, fpr=0.0)
    style = prober.probe(
        tiny_sd.style_peft, _screening(tiny_sd.style_peft), ARTISTS, references, family="sd1"
    )
    assert max(lifts) < threshold < style.lifts[1]
