"""Weight fingerprints: variants of one LoRA are the same weights, unrelated LoRAs are not."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.fingerprint import (
    FINGERPRINT_MODULES,
    SIMILAR_AT,
    canonical_module,
    fingerprint,
    fingerprint_ranges,
    similarities,
)
from detectors.safetensors_header import parse_header
from tests.lora_variants import (
    KOHYA_METADATA,
    file_fingerprint,
    kohya_lora,
    peft_lora,
    random_lora,
    rescaled,
)
from tests.modelfiles import fixture_bytes


def _similarity(a, b) -> float:
    assert a is not None and b is not None
    assert a.modules_key == b.modules_key
    return float(similarities(a.array()[None], b.array())[0])


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lora")
    return kohya_lora(random_lora(1), folder / "ilse.safetensors", metadata=KOHYA_METADATA)


VARIANTS = {
    "stripped metadata": lambda w, d: kohya_lora(w, d / "stripped.safetensors"),
    "renamed, other metadata": lambda w, d: kohya_lora(
        w, d / "cool_style.safetensors", metadata={"ss_output_name": "cool"}
    ),
    "fp16": lambda w, d: kohya_lora(w, d / "half.safetensors", dtype="float16"),
    "bf16": lambda w, d: kohya_lora(w, d / "bf16.safetensors", dtype="bfloat16"),
    "peft keys": lambda w, d: peft_lora(w, d / "peft.safetensors"),
    "peft keys, fp16": lambda w, d: peft_lora(w, d / "peft16.safetensors", dtype="float16"),
    "alpha rewrite": lambda w, d: kohya_lora(rescaled(w, 4.0), d / "alpha.safetensors"),
    "fp32 from fp16": lambda w, d: kohya_lora(
        {p: (u.astype(np.float16), dn.astype(np.float16), a) for p, (u, dn, a) in w.items()},
        d / "back.safetensors",
    ),
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_variant_is_the_same_weights(variant, original, tmp_path):
    copy = VARIANTS[variant](random_lora(1), tmp_path)
    assert copy.read_bytes() != original.read_bytes()
    assert _similarity(file_fingerprint(original), file_fingerprint(copy)) >= 0.99


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_unrelated_loras_on_the_same_base_differ(seed, original, tmp_path):
    other = kohya_lora(random_lora(seed), tmp_path / "other.safetensors", metadata=KOHYA_METADATA)
    assert _similarity(file_fingerprint(original), file_fingerprint(other)) < SIMILAR_AT / 3


def test_a_lora_with_one_module_retrained_still_differs(original, tmp_path):
    weights = random_lora(1)
    other = random_lora(9)
    mixed = {p: (other[p] if i % 2 else w) for i, (p, w) in enumerate(weights.items())}
    copy = kohya_lora(mixed, tmp_path / "mixed.safetensors")
    assert _similarity(file_fingerprint(original), file_fingerprint(copy)) < SIMILAR_AT


def test_kohya_and_peft_names_are_one_module():
    kohya = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"
    peft = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"
    assert canonical_module(kohya) == canonical_module(peft)
    assert canonical_module("base_model.model." + peft) == canonical_module(peft)
    te = canonical_module("lora_te_text_model_encoder_layers_0_self_attn_q_proj")
    assert te == canonical_module("text_encoder.text_model.encoder.layers.0.self_attn.q_proj")


def test_reads_are_bounded(original):
    data = original.read_bytes()
    header = parse_header(data, file_size=len(data))
    ranges = fingerprint_ranges(header)
    assert 0 < len(ranges) <= 2 * FINGERPRINT_MODULES
    assert sum(end - start for start, end in ranges) < len(data) / 2


def test_short_bytes_or_no_lora_give_no_fingerprint(original):
    data = original.read_bytes()
    header = parse_header(data, file_size=len(data))
    ranges = fingerprint_ranges(header)
    chunks = {r: data[r[0] : r[1] - 1] for r in ranges}
    assert fingerprint(header, chunks) is None
    zero = fixture_bytes("kohya_sd15_style_lora")
    fixture = parse_header(zero, file_size=len(zero))
    assert fingerprint_ranges(fixture)  # a LoRA: its modules are usable
    print_ = fingerprint(fixture, {r: zero[r[0] : r[1]] for r in fingerprint_ranges(fixture)})
    assert print_ is not None and not np.any(print_.array())  # zero weights sketch to zeros
