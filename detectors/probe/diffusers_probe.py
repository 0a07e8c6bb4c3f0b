"""``DiffusersProbe``: the probe backend on diffusers pipelines loaded from local folders.

One pipeline per family, loaded on first use from the operator's folder with
``local_files_only`` and ``use_safetensors`` (a pickle is never read). A LoRA file is read
with safetensors into a state dict and handed to the pipeline's own loader, which accepts
the kohya and the PEFT/diffusers key layouts (for Flux also ai-toolkit's ``diffusion_model.``
keys, renamed here to kohya's first; for SD3 kohya's and OneTrainer's keys in diffusers'
names, ``detectors.probe.sd3_lora``); a file of which no key lands on the model, and the
LyCORIS LoHa and LoKr files the loaders cannot read, are a ProbeError, never a silent draw of
the base model. Each pipeline keeps one adapter slot (``detectors.probe.adapter_slot``): the
first LoRA is injected by the loader, later ones are copied into its layers in place when
they fit. After the images the slot is switched off, and the pipeline is checked to hold
no enabled adapter layer, so the next image is the base model's again, bit for bit. The
denoiser (a UNet, or Flux's transformer) counts its evaluations.
Torch and diffusers are imported only when a pipeline is first needed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from detectors.errors import ProbeError
from detectors.probe.adapter_slot import AdapterSlot
from detectors.probe.base import Draw, GenerationSettings

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

ADAPTER_NAME = "stylewatch_probe"
MAX_LORA_BYTES = 2 * 1024**3


class DiffusersProbe:
    """Probe backend over ``{family: diffusers folder}``; not thread-safe (one worker owns it).

    ``device`` is ``"auto"`` (CUDA when present, else CPU) or a torch device string. On
    CUDA the pipelines run in float16 with PyTorch's SDPA attention and a sliced VAE decode;
    on CPU in float32, where outputs are bit-for-bit repeatable.
    """

    def __init__(
        self,
        base_models: Mapping[str, Path],
        *,
        device: str = "auto",
        lora_scale: float = 1.0,
        generation: GenerationSettings | None = None,
    ) -> None:
        self._base_models = dict(base_models)
        self._device_name = device
        self._lora_scale = lora_scale
        self._generation = generation or GenerationSettings()
        self._pipelines: dict[str, Any] = {}
        self._slots: dict[str, AdapterSlot] = {}
        self.unet_evaluations = 0

    @property
    def generation(self) -> GenerationSettings:
        """How every image is drawn (steps, guidance, size, batch)."""
        return self._generation

    def families(self) -> frozenset[str]:
        return frozenset(self._base_models)

    def settings_key(self, family: str) -> str:
        """Identifies the base model folder and every setting that changes its images."""
        folder = self._folder(family)
        index = folder / "model_index.json"
        stamp = index.stat().st_mtime_ns if index.is_file() else 0
        g = self._generation
        parts = [str(folder.resolve()), stamp, g.steps, g.guidance_scale, g.size_px, self._dtype()]
        return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:32]

    def generate(
        self,
        family: str,
        prompts: Sequence[str],
        seeds: Sequence[int],
        lora: Path | None = None,
    ) -> list[Image.Image]:
        if lora is None:
            return self._draw(self.pipeline(family), prompts, seeds)
        with self.lora(family, lora) as draw:
            return draw(prompts, seeds)

    @contextlib.contextmanager
    def lora(self, family: str, path: Path) -> Iterator[Draw]:
        """Apply the LoRA file for the block; yields a ``draw(prompts, seeds)`` function."""
        pipe = self.pipeline(family)
        self._apply(self.adapter_slot(family), path)
        try:
            yield lambda prompts, seeds: self._draw(pipe, prompts, seeds)
        finally:
            self._remove(family, pipe)

    @contextlib.contextmanager
    def checkpoint(self, family: str, path: Path) -> Iterator[Draw]:
        """Draw with a full checkpoint's UNet (``detectors.probe.checkpoint_probe``) in place of
        the family base's for the block; yields a ``draw(prompts, seeds)`` function."""
        from detectors.probe.checkpoint_probe import read_unet_weights, swapped_unet

        pipe = self.pipeline(family)
        if getattr(pipe, "unet", None) is None:  # Flux's and SD3's transformers
            raise ProbeError(f"full {family} checkpoints are not probed: only UNet families are")
        weights = read_unet_weights(path, pipe.unet.config)
        self.adapter_slot(family).clear()  # the swap edits the UNet's own weights
        with swapped_unet(pipe.unet, weights, path.name):
            del weights
            yield lambda prompts, seeds: self._draw(pipe, prompts, seeds)

    def pipeline(self, family: str) -> Any:
        """The family's pipeline, loaded on first use."""
        if family not in self._pipelines:
            self._pipelines[family] = self._load(family)
            self._slots[family] = AdapterSlot(
                self._pipelines[family], ADAPTER_NAME, self._lora_scale
            )
        return self._pipelines[family]

    def adapter_slot(self, family: str) -> AdapterSlot:
        """The family pipeline's adapter slot (its LoRA layers, swapped in place)."""
        self.pipeline(family)
        return self._slots[family]

    def _folder(self, family: str) -> Path:
        try:
            return self._base_models[family]
        except KeyError:
            raise ProbeError(
                f"no base model configured for family {family}: set [probe] base_models.{family}"
            ) from None

    def _device(self) -> str:
        import torch

        if self._device_name == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        return self._device_name

    def _dtype(self) -> str:
        return "float16" if self._device().startswith("cuda") else "float32"

    def _load(self, family: str) -> Any:
        import torch
        from diffusers import DiffusionPipeline

        folder = self._folder(family)
        if not (folder / "model_index.json").is_file():
            raise ProbeError(
                f"cannot load the {family} base model from {folder}: no model_index.json there"
            )
        extra = _without_safety_checker(folder)
        load: Any = DiffusionPipeline.from_pretrained  # diffusers is untyped
        _quiet_libraries()
        try:
            with warnings.catch_warnings():
                # diffusers 0.42 renames torch_dtype; older releases the project allows lack
                # the new name. A deprecation notice is nothing for an artist running `scan`.
                warnings.filterwarnings("ignore", "`torch_dtype` is deprecated", FutureWarning)
                pipe = load(
                    folder,
                    torch_dtype=getattr(torch, self._dtype()),
                    local_files_only=True,
                    use_safetensors=True,
                    **extra,
                )
        except (OSError, ValueError) as exc:
            raise ProbeError(
                f"cannot load the {family} base model from {folder}: {exc}".splitlines()[0]
            ) from exc
        pipe.to(self._device())
        pipe.set_progress_bar_config(disable=True)
        denoiser = _denoiser(pipe)
        if self._device().startswith("cuda"):
            pipe.vae.enable_slicing()
            if hasattr(denoiser, "set_default_attn_processor"):  # UNets: PyTorch SDPA kernels
                denoiser.set_default_attn_processor()
        denoiser.register_forward_pre_hook(self._count, with_kwargs=True)
        log.info("probe base model loaded", extra={"family": family, "stage": "probe"})
        return pipe

    def _count(self, _module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        # UNets take the latents first; Flux's and SD3's transformers as ``hidden_states``.
        latents = args[0] if args else kwargs.get("sample", kwargs.get("hidden_states"))
        if latents is not None:
            self.unet_evaluations += int(latents.shape[0])

    def _apply(self, slot: AdapterSlot, lora: Path) -> None:
        state = _ai_toolkit_as_kohya(_read_lora(lora))
        algo = _lycoris_algo(state)
        if algo is not None:
            raise ProbeError(f"LyCORIS {algo} cannot be loaded: diffusers reads no {algo} keys")
        try:
            slot.fill(_sd3_as_diffusers(slot.pipe, state))
        except (ValueError, KeyError, IndexError, RuntimeError, TypeError) as exc:
            raise ProbeError(f"cannot apply the LoRA {lora.name}: {exc}".splitlines()[0]) from exc

    def _remove(self, family: str, pipe: Any) -> None:
        slot = self._slots[family]
        slot.off()
        if not slot.is_clean():
            # Never draw another "base" image with a leftover adapter: reload on next use.
            del self._pipelines[family], self._slots[family]
            log.warning(
                "probe pipeline not clean after unload; reloading", extra={"family": family}
            )

    def _draw(self, pipe: Any, prompts: Sequence[str], seeds: Sequence[int]) -> list[Image.Image]:
        import torch

        if len(prompts) != len(seeds):
            raise ProbeError(f"{len(prompts)} prompts but {len(seeds)} seeds")
        size = self._generation.size_px
        images: list[Image.Image] = []
        step = self._generation.batch_images
        with torch.inference_mode():
            for start in range(0, len(prompts), step):
                chunk = slice(start, start + step)
                out = pipe(
                    prompt=list(prompts[chunk]),
                    generator=[_generator(seed) for seed in seeds[chunk]],
                    num_inference_steps=self._generation.steps,
                    guidance_scale=self._generation.guidance_scale,
                    height=size,
                    width=size,
                    output_type="pil",
                )
                images.extend(out.images)
        return images


def _quiet_libraries() -> None:
    """diffusers' and transformers' progress bars and advisory warnings ("No LoRA keys
    associated to CLIPTextModel ... safe to ignore", the torchvision fallback notice) off:
    `scan`'s reader and the service's log see stylewatch's own lines. Errors still show."""
    import diffusers.utils.logging as diffusers_logging
    import transformers.utils.logging as transformers_logging

    for library in (diffusers_logging, transformers_logging):
        library.set_verbosity_error()
        library.disable_progress_bar()


def _denoiser(pipe: Any) -> Any:
    """The model each sampling step calls: SD1/SDXL's UNet, Flux's and SD3's transformer."""
    denoiser = getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)
    if denoiser is None:
        raise ProbeError(f"{type(pipe).__name__} has neither a UNet nor a transformer")
    return denoiser


def _generator(seed: int) -> torch.Generator:
    import torch

    # CPU generators draw the same starting noise on every device, so a seed means one image.
    return torch.Generator("cpu").manual_seed(seed)


def _read_lora(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if path.suffix.lower() != ".safetensors":
        raise ProbeError(f"{path.name} is not a .safetensors file; the probe never loads pickles")
    try:
        if path.stat().st_size > MAX_LORA_BYTES:
            raise ProbeError(f"{path.name} is larger than {MAX_LORA_BYTES // 2**20} MiB")
        return load_file(str(path))
    except (OSError, SafetensorError) as exc:
        raise ProbeError(f"cannot read the LoRA {path.name}: {exc}") from exc


LYCORIS_PARTS = {".hada_": "LoHa", ".lokr_": "LoKr"}


def _lycoris_algo(state: Mapping[str, Any]) -> str | None:
    """``LoHa``/``LoKr`` when the file holds such factors (which diffusers' loaders reject
    with a key-renaming error); LoCon's ``lora_down``/``lora_up`` convs load as a LoRA."""
    for part, algo in LYCORIS_PARTS.items():
        if any(part in key for key in state):
            return algo
    return None


def _ai_toolkit_as_kohya(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """ai-toolkit's and ComfyUI's ``diffusion_model.<BFL module>.lora_A/lora_B`` keys in
    kohya's names, which diffusers' Flux converter reads (it skips the PEFT-named form)."""
    names = list(state)
    if not names or not all(k.startswith("diffusion_model.") for k in names):
        return state
    if not any(k.endswith((".lora_A.weight", ".lora_B.weight")) for k in names):
        return state
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        module, _, part = key.removeprefix("diffusion_model.").rpartition(".lora_")
        part = part.replace("A.weight", "down.weight").replace("B.weight", "up.weight")
        out[f"lora_unet_{module.replace('.', '_')}.lora_{part}"] = value
    return out


def _sd3_as_diffusers(pipe: Any, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """On an SD3 pipeline, kohya sd-scripts' and OneTrainer's keys in diffusers' names
    (``detectors.probe.sd3_lora``): diffusers' SD3 loader reads no kohya key."""
    from detectors.probe.sd3_lora import is_kohya_sd3, kohya_sd3_as_diffusers

    if not hasattr(pipe, "tokenizer_3") or not is_kohya_sd3(state):
        return state
    models = ("transformer", "text_encoder", "text_encoder_2")
    modules = {
        name: [n for n, _ in getattr(pipe, name).named_modules()]
        for name in models
        if getattr(pipe, name, None) is not None
    }
    layers = int(pipe.transformer.config.num_layers)
    return kohya_sd3_as_diffusers(state, num_layers=layers, modules=modules)


def _without_safety_checker(folder: Path) -> dict[str, Any]:
    """Skip a bundled safety checker: it costs time and blanks images the probe must see."""
    try:
        index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if isinstance(index, dict) and "safety_checker" in index:
        return {"safety_checker": None, "requires_safety_checker": False}
    return {}
