"""The base an SDXL-shaped upload is probed on: chosen from its training metadata, then the
hub's baseModel, among the configured derivative bases; the family's own base otherwise."""

from __future__ import annotations

import pytest

from detectors.probe.bases import DerivativeBase, choose_base, probe_key, with_prefix

PONY = DerivativeBase("pony", "sdxl", ("pony",), "score_9, score_8_up, score_7_up")
ILLUSTRIOUS = DerivativeBase("illustrious", "sdxl", ("illustrious",), "masterpiece, best quality")
NOOB = DerivativeBase("noobai", "sdxl", ("noobai", "noob"), "masterpiece")
BASES = (PONY, ILLUSTRIOUS, NOOB)


@pytest.mark.parametrize(
    ("metadata", "hub", "expected"),
    [
        ({"ss_base_model_version": "sdxl_base_v1-0"}, "Pony", "pony"),
        (
            {"modelspec.architecture": "stable-diffusion-xl-v1-base/lora"},
            "Illustrious",
            "illustrious",
        ),
        ({"ss_sd_model_name": "ponyDiffusionV6XL_v6StartWithThisOne.safetensors"}, None, "pony"),
        ({"ss_sd_model_name": "NoobAI-XL-v1.1.safetensors"}, "SDXL 1.0", "noobai"),
        ({}, "NoobAI", "noobai"),
        ({"modelspec.architecture": "stable-diffusion-xl-v1-base/lora"}, "SDXL 1.0", None),
        ({}, None, None),
    ],
)
def test_the_base_comes_from_metadata_then_the_hub(metadata, hub, expected):
    assert choose_base("sdxl", metadata, hub, BASES) == expected


def test_metadata_wins_over_the_hub():
    """The trainer's record of the model it trained on outranks a hub field set by hand."""
    metadata = {"ss_sd_model_name": "illustriousXL_v01.safetensors"}
    assert choose_base("sdxl", metadata, "Pony", BASES) == "illustrious"


def test_a_base_of_another_family_is_never_chosen():
    assert choose_base("sd1", {}, "Pony", BASES) is None
    assert choose_base("sdxl", {}, "Pony", ()) is None


def test_probe_keys_and_prefixes():
    assert probe_key("sdxl", None) == "sdxl"
    assert probe_key("sdxl", "pony") == "sdxl/pony"
    assert with_prefix("score_9, score_8_up, ", ["a portrait"]) == [
        "score_9, score_8_up, a portrait"
    ]
    assert with_prefix("  ", ["a portrait"]) == ["a portrait"]
