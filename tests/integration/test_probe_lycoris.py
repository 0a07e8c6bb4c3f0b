"""LyCORIS files on the probe: LoCon (kohya LoRA factors on convolutions too) loads and
draws; LoHa and LoKr, which diffusers' loaders cannot read, are a one-line ProbeError naming
the algorithm (the scan records it as the reason the probe did not run), and the pipeline
stays the base model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from detectors.architecture import infer_architecture
from detectors.errors import ProbeError
from detectors.probe.base import GenerationSettings
from detectors.probe.diffusers_probe import DiffusersProbe
from detectors.screening import read_header
from tests import probe_models as pm

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore::FutureWarning:diffusers"),
]
GENERATION = GenerationSettings(steps=pm.STEPS, guidance_scale=1.0, size_px=pm.IMAGE_PX)
MODULE = "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q"
CONV = "lora_unet_down_blocks_0_resnets_0_conv1"


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> DiffusersProbe:
    torch.set_num_threads(1)
    base = pm.build_tiny_sd(tmp_path_factory.mktemp("lycoris") / "base")
    return DiffusersProbe({"sd1": base}, device="cpu", generation=GENERATION)


def _file(tmp_path: Path, name: str, tensors: dict[str, torch.Tensor]) -> Path:
    path = tmp_path / f"{name}.safetensors"
    meta = {"ss_network_module": "lycoris.kohya", "ss_network_args": json.dumps({"algo": name})}
    save_file(tensors, str(path), metadata=meta)
    data = path.read_bytes()
    header = read_header(data, file_size=len(data), filename=path.name)
    assert infer_architecture(header).kind == "lycoris"  # what the scanner sends to the probe
    return path


def test_a_locon_loads_and_changes_images(probe, tmp_path):
    torch.manual_seed(0)
    locon = _file(
        tmp_path,
        "locon",
        {
            f"{MODULE}.lora_down.weight": torch.randn(4, 64),
            f"{MODULE}.lora_up.weight": torch.randn(64, 4),
            f"{MODULE}.alpha": torch.tensor(4.0),
            f"{CONV}.lora_down.weight": torch.randn(4, 32, 3, 3),
            f"{CONV}.lora_up.weight": torch.randn(32, 4, 1, 1),
            f"{CONV}.alpha": torch.tensor(4.0),
        },
    )
    before = probe.generate("sd1", ["a cat"], [1])
    drawn = probe.generate("sd1", ["a cat"], [1], lora=locon)
    assert pm.grid_distance(before, drawn) > 1.0
    assert probe.generate("sd1", ["a cat"], [1])[0].tobytes() == before[0].tobytes()


@pytest.mark.parametrize(
    ("algo", "tensors"),
    [
        (
            "LoHa",
            {
                f"{MODULE}.hada_w1_a": torch.ones(64, 4),
                f"{MODULE}.hada_w1_b": torch.ones(4, 64),
                f"{MODULE}.hada_w2_a": torch.ones(64, 4),
                f"{MODULE}.hada_w2_b": torch.ones(4, 64),
                f"{MODULE}.alpha": torch.tensor(4.0),
            },
        ),
        (
            "LoKr",
            {
                f"{MODULE}.lokr_w1": torch.ones(8, 8),
                f"{MODULE}.lokr_w2": torch.ones(8, 8),
                f"{MODULE}.alpha": torch.tensor(4.0),
            },
        ),
    ],
)
def test_loha_and_lokr_are_a_probe_error_naming_the_algorithm(probe, tmp_path, algo, tensors):
    path = _file(tmp_path, algo.lower(), tensors)
    before = probe.generate("sd1", ["a cat"], [1])
    with pytest.raises(ProbeError, match=f"^LyCORIS {algo} cannot be loaded"):
        probe.generate("sd1", ["a cat"], [1], lora=path)
    assert probe.generate("sd1", ["a cat"], [1])[0].tobytes() == before[0].tobytes()
