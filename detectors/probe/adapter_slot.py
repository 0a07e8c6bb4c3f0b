"""The adapter slot: one LoRA at a time on a warm pipeline, swapped without re-injection.

Loading a LoRA through diffusers injects PEFT layers into the denoiser and unloading
removes them again: on a warm probe pipeline that rebuild is most of a LoRA's cost. The
slot injects the first LoRA normally (``load_lora_weights``) and keeps its PEFT layers.
A later LoRA whose every layer lands on a layer the slot holds, at a rank no larger than
the slot's there, is copied into those layers in place: its ``lora_A``/``lora_B`` in the
first rows/columns (the rest zeroed), its scale (``alpha / rank`` as PEFT computes it,
times the probe's LoRA scale) set per layer, and the slot's layers it does not target
switched off. Switching the slot off disables every PEFT layer, which then calls its base
layer alone: the base model's images are bit-for-bit those of a pipeline never given a
LoRA.

Key names come from diffusers' own conversion (the pipeline's ``lora_state_dict``, which
reads kohya, SGM-style SDXL and PEFT layouts; Flux's and SD3's converters ran before),
and the ranks and alphas from the ``LoraConfig`` diffusers would build, so a swapped LoRA
draws what the same file loaded fresh draws, to float rounding. What the slot cannot
represent (text-encoder keys, DoRA, trained biases, other non-LoRA keys, a layer the slot
does not hold, a larger rank or another shape) takes the slow path, logged with the
reason: the slot is unloaded and the file loaded normally, becoming the new slot.
diffusers' own ``hotswap=True`` is not used: it cost 3-4x this and mis-scaled mixed ranks.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

TEXT_ENCODERS = ("text_encoder", "text_encoder_2", "text_encoder_3")
_LORA_PARTS = (".lora_A.weight", ".lora_B.weight")


@dataclass(frozen=True, slots=True)
class _Swap:
    """One layer's weights for an in-place swap: ``down`` (rank rows), ``up``, the scale."""

    down: torch.Tensor
    up: torch.Tensor
    scaling: float


class AdapterSlot:
    """The LoRA slot of one pipeline; not thread-safe (the probe worker owns it).

    ``fill(state)`` applies a LoRA state dict (in a layout the pipeline's loader reads),
    ``off()`` returns the pipeline to its base model, ``clear()`` removes every adapter
    layer. ``swaps`` and ``loads`` count fills by path taken."""

    def __init__(self, pipe: Any, adapter: str, scale: float = 1.0) -> None:
        self._pipe = pipe
        self._adapter = adapter
        self._scale = scale
        self._layers: dict[str, Any] = {}  # "<component>.<module>" -> PEFT layer
        self._swappable = False
        self.swaps = 0
        self.loads = 0

    @property
    def pipe(self) -> Any:
        """The pipeline the slot's layers live in."""
        return self._pipe

    @property
    def denoiser_name(self) -> str:
        return "unet" if getattr(self._pipe, "unet", None) is not None else "transformer"

    def fill(self, state: Mapping[str, torch.Tensor]) -> None:
        """Apply the LoRA ``state``: in place when it fits, else unload and load it.

        Raises what diffusers' loader raises (ValueError, KeyError, RuntimeError, …) for a
        file it cannot load, with the pipeline left holding no adapter layer."""
        try:
            plan = self._plan(state) if self._layers else "the slot is empty"
            if isinstance(plan, str):
                if self._layers:
                    log.info(
                        "adapter slot: slow path, %s",
                        plan,
                        extra={"reason": plan, "stage": "probe"},
                    )
                self._load(state)
            else:
                self._swap(plan)
        except Exception:
            self.clear()  # never leave a LoRA half in place
            raise

    def off(self) -> None:
        """Disable every PEFT layer: each then calls its base layer alone."""
        for layer in self._layers.values():
            _switch(layer, False)

    def clear(self) -> None:
        """Remove every adapter layer from the pipeline (before anything edits its weights)."""
        self._layers = {}
        self._swappable = False
        self._pipe.unload_lora_weights()

    def is_clean(self) -> bool:
        """Whether no PEFT layer is enabled (the pipeline draws the base model): the slot's
        layers are all its PEFT layers (``fill`` loads only into a pipeline holding none)."""
        return all(layer.disable_adapters for layer in self._layers.values())

    def _load(self, state: Mapping[str, torch.Tensor]) -> None:
        if self._layers or _tuner_layers(self._pipe):
            self.clear()
        self._pipe.load_lora_weights(dict(state), adapter_name=self._adapter)
        self._layers = {
            name: layer
            for name, layer in _tuner_layers(self._pipe)
            if self._adapter in getattr(layer, "lora_A", {})
        }
        if not self._layers:
            # The loader skips keys it does not know with a warning: probing on would
            # draw the base model and call the upload clean.
            raise ValueError("none of its keys fit the base model")
        if self._scale != 1.0:  # 1.0 is what loading sets; skipping saves a pass
            self._pipe.set_adapters([self._adapter], adapter_weights=[self._scale])
        self._swappable = all(_plain_lora(layer, self._adapter) for layer in self._layers.values())
        self.loads += 1

    def _plan(self, state: Mapping[str, torch.Tensor]) -> dict[str, _Swap] | str:
        """The per-layer swap of ``state`` into the slot, or why it does not fit."""
        if not self._swappable:
            return "the slot holds DoRA or bias layers"
        view = self._denoiser_view(state)
        if isinstance(view, str):
            return view
        peft_state, alphas = view
        config = _lora_config(peft_state, alphas)
        modules = {key.rsplit(".", 2)[0] for key in peft_state}
        plan: dict[str, _Swap] = {}
        for module in sorted(modules):
            swap = self._layer_swap(module, peft_state, config)
            if isinstance(swap, str):
                return swap
            plan[f"{self.denoiser_name}.{module}"] = swap
        return plan

    def _denoiser_view(
        self, state: Mapping[str, torch.Tensor]
    ) -> tuple[dict[str, torch.Tensor], dict[str, float] | None] | str:
        """``state`` as diffusers hands it to the denoiser's PEFT loader: converted keys
        relative to the denoiser, with the network alphas; or why the slot cannot take it."""
        from diffusers.utils import state_dict_utils

        converted, alphas = _lora_state_dict(self._pipe, state)
        prefix = f"{self.denoiser_name}."
        outside = sorted({k.split(".", 1)[0] for k in converted if not k.startswith(prefix)})
        if outside:
            what = "text-encoder" if set(outside) <= set(TEXT_ENCODERS) else "non-denoiser"
            return f"{what} keys ({', '.join(outside)})"
        own = {k.removeprefix(prefix): v for k, v in converted.items()}
        if own and "lora_A" not in next(iter(own)):
            convert: Any = state_dict_utils.convert_unet_state_dict_to_peft  # untyped
            own = convert(own)
        if any("lora_magnitude_vector" in k for k in own):
            return "a DoRA LoRA"
        if any(".lora_B." in k and k.endswith(".bias") for k in own):
            return "a bias-training LoRA"
        other = [k for k in own if not k.endswith(_LORA_PARTS)]
        if not own or other:
            return f"keys the slot cannot represent ({(other or ['none'])[0]})"
        if alphas:
            alphas = {k.removeprefix(prefix): v for k, v in alphas.items() if k.startswith(prefix)}
        return own, alphas

    def _layer_swap(
        self, module: str, peft_state: Mapping[str, torch.Tensor], config: Any
    ) -> _Swap | str:
        from peft.utils.other import get_pattern_key

        layer = self._layers.get(f"{self.denoiser_name}.{module}")
        down = peft_state.get(f"{module}.lora_A.weight")
        up = peft_state.get(f"{module}.lora_B.weight")
        if layer is None:
            return f"it targets {module}, which the slot does not hold"
        if down is None or up is None:
            return f"{module} has no lora_A/lora_B pair"
        slot_down = layer.lora_A[self._adapter].weight
        slot_up = layer.lora_B[self._adapter].weight
        rank = int(down.shape[0])
        if (
            rank > slot_down.shape[0]
            or down.shape[1:] != slot_down.shape[1:]
            or up.shape[0] != slot_up.shape[0]
            or up.shape[1] != rank
            or up.shape[2:] != slot_up.shape[2:]
        ):
            return (
                f"{module} is {tuple(up.shape)} x {tuple(down.shape)}, the slot's "
                f"{tuple(slot_up.shape)} x {tuple(slot_down.shape)}"
            )
        # The rank and alpha PEFT would give this layer (LoraModel._create_and_replace).
        r = config.rank_pattern.get(get_pattern_key(config.rank_pattern.keys(), module), config.r)
        alpha = config.alpha_pattern.get(
            get_pattern_key(config.alpha_pattern.keys(), module), config.lora_alpha
        )
        if r != rank:
            return f"{module}: rank {rank} but the config says {r}"
        root = math.sqrt(r) if config.use_rslora else r
        return _Swap(down=down, up=up, scaling=self._scale * alpha / root)

    def _swap(self, plan: Mapping[str, _Swap]) -> None:
        import torch

        with torch.no_grad():
            for name, layer in self._layers.items():
                swap = plan.get(name)
                if swap is None:
                    _switch(layer, False)
                    continue
                rank = swap.down.shape[0]
                slot_down = layer.lora_A[self._adapter].weight
                slot_up = layer.lora_B[self._adapter].weight
                slot_down[:rank].copy_(swap.down)
                slot_down[rank:].zero_()
                slot_up[:, :rank].copy_(swap.up)
                slot_up[:, rank:].zero_()
                layer.scaling[self._adapter] = swap.scaling
                _switch(layer, True)
        self.swaps += 1


def _switch(layer: Any, on: bool) -> None:
    """Enable or disable a PEFT layer for inference. PEFT's ``enable_adapters`` also sets
    ``requires_grad`` on every adapter weight, which cost most of a swap; the forward reads
    only this flag (``disable_adapters``: the base layer alone)."""
    layer._disable_adapters = not on


def _tuner_layers(pipe: Any) -> list[tuple[str, Any]]:
    """Every PEFT layer of the pipeline's denoiser and text encoders, by qualified name."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    layers: list[tuple[str, Any]] = []
    for component in ("unet", "transformer", *TEXT_ENCODERS):
        model = getattr(pipe, component, None)
        if model is None:
            continue
        layers.extend(
            (f"{component}.{name}", module)
            for name, module in model.named_modules()
            if isinstance(module, BaseTunerLayer)
        )
    return layers


def _plain_lora(layer: Any, adapter: str) -> bool:
    """A layer the slot can overwrite: plain ``lora_A``/``lora_B`` (no DoRA or other
    variant, no bias), as nn.Linear or nn.Conv2d."""
    if adapter in getattr(layer, "lora_variant", {}):
        return False
    down, up = layer.lora_A[adapter], layer.lora_B[adapter]
    return getattr(up, "bias", None) is None and getattr(down, "bias", None) is None


def _lora_state_dict(
    pipe: Any, state: Mapping[str, torch.Tensor]
) -> tuple[dict[str, torch.Tensor], dict[str, float] | None]:
    """The pipeline's own ``lora_state_dict`` conversion, called as its
    ``load_lora_weights`` calls it (SDXL with the UNet's config, for SGM-style keys)."""
    from diffusers.loaders import lora_pipeline

    kwargs: dict[str, Any] = {"return_lora_metadata": True}
    if "return_alphas" in inspect.signature(pipe.lora_state_dict).parameters:
        kwargs["return_alphas"] = True
    sdxl: Any = lora_pipeline.StableDiffusionXLLoraLoaderMixin  # Any: pipe stays untyped
    if isinstance(pipe, sdxl):
        kwargs["unet_config"] = pipe.unet.config
    out = pipe.lora_state_dict(dict(state), **kwargs)
    if len(out) == 3:
        converted, alphas, _metadata = out
        return converted, alphas
    converted, _metadata = out
    return converted, None


def _lora_config(peft_state: Mapping[str, torch.Tensor], alphas: dict[str, float] | None) -> Any:
    """The ``LoraConfig`` diffusers' ``load_lora_adapter`` builds for the state."""
    from diffusers.utils import peft_utils

    ranks = {
        f"^{key}": int(value.shape[1])
        for key, value in peft_state.items()
        if "lora_B" in key and value.ndim > 1
    }
    create: Any = peft_utils._create_lora_config  # untyped; what load_lora_adapter calls
    return create(dict(peft_state), alphas, None, ranks)
