"""What a safetensors file is, from its tensor names and widths (hubs/README.md section 4).

The *kind* and *layout* come from the key convention: kohya ``lora_down``/``lora_up``, PEFT
``lora_A``/``lora_B`` (also what diffusers and ai-toolkit save today), legacy diffusers
``lora.down``, LyCORIS ``hada_*``/``lokr_*`` (and LoCon when the training metadata names
LyCORIS), DoRA ``dora_scale``, full checkpoints (``ldm``, ``bfl`` or ``diffusers`` names) and
textual-inversion embeddings. The *base family* comes from widths: the cross-attention
context (768 SD1, 1024 SD2, 2048 SDXL), Flux's 3072-wide double/single blocks, SD3's
MMDiT joint blocks (1536 wide in SD3/SD3.5 Medium, 2432 in SD3.5 Large), or SDXL's two
text encoders. Training metadata (``ss_base_model_version``, ``modelspec.architecture``) and
the hub's own base model name (Civitai ``baseModel``, Hugging Face ``base_model``) only
break ties when the widths say nothing, and never override them. What the rules do not
know is ``unknown``: a wrong family is worse than none.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence

from detectors.results import Architecture, BaseFamily, Kind, SafetensorsHeader, TensorInfo

UNKNOWN = Architecture(kind="unknown", base_family="unknown", layout="unknown")
CONTEXT_WIDTH_FAMILY: Mapping[int, BaseFamily] = {768: "sd1", 1024: "sd2", 2048: "sdxl"}
TEXT_WIDTH_FAMILY: Mapping[int, BaseFamily] = {768: "sd1", 1024: "sd2"}
FLUX_INPUT_WIDTHS = frozenset({3072, 12288, 15360})  # hidden, MLP, single-block concat
FLUX_BLOCK_COUNTS = {"double": 19, "single": 38}
# SD3's MMDiT: hidden width -> joint blocks (SD3 and SD3.5 Medium 1536 x 24, SD3.5 Large
# 2432 x 38); a block's MLP is 4x as wide. Its time, text and pooled embedders (256, 4096,
# 2048 in) carry no block index and are left out of the check.
SD3_BLOCK_COUNTS = {1536: 24, 2432: 38}
LYCORIS_ALGOS = frozenset({"lora", "locon", "loha", "lokr"})

# First match wins: LyCORIS parts before the plain LoRA suffixes they may sit beside.
_ADAPTER_LAYOUTS: Sequence[tuple[str, re.Pattern[str]]] = (
    ("loha", re.compile(r"\.hada_w[12]_[ab]$")),
    ("lokr", re.compile(r"\.lokr_w[12](?:_[ab])?$")),
    ("dora", re.compile(r"\.dora_scale$")),
    ("locon", re.compile(r"\.lora_mid\.weight$")),
    ("kohya", re.compile(r"\.lora_(?:down|up)\.weight$")),
    ("peft", re.compile(r"\.lora_[AB](?:\.\w+)?\.weight$")),
    ("diffusers", re.compile(r"[._]lora(?:_linear_layer)?\.(?:down|up)\.weight$")),
)
_LYCORIS_LAYOUTS = frozenset({"loha", "lokr", "locon"})
_CHECKPOINT_LAYOUTS: Sequence[tuple[str, re.Pattern[str]]] = (
    ("ldm", re.compile(r"^(?:model\.)?diffusion_model\.")),
    ("bfl", re.compile(r"^(?:double_blocks|single_blocks)\.\d+\.")),
    (
        "diffusers",
        re.compile(r"^(?:(?:down|up)_blocks|mid_block|(?:single_)?transformer_blocks)\."),
    ),
)
_EMBEDDING_NAMES = frozenset({"emb_params", "clip_l", "clip_g", "t5", "*"})

# A tensor that carries a module's input width, and the module's name without the part.
_NOT_INPUT = re.compile(
    r"lora_(?:up|B|mid)\b|lora(?:_linear_layer)?\.up\.|dora_scale|hada_(?:w[12]_a|t)|lokr_(?:w[12]_a|t)"
)
_INPUT_PART = re.compile(
    r"^(?P<module>.+?)[._](?P<part>lora_down\.weight|lora_A(?:\.\w+)?\.weight"
    r"|lora(?:_linear_layer)?\.down\.weight|hada_w[12]_b|lokr_w[12](?:_b)?|weight)$"
)
_CONTEXT_MODULE = re.compile(r"attn2[._](?:processor[._])?to_[kv]$")
_UNET_MODULE = re.compile(r"(?:down|up)_blocks|mid(?:dle)?_block|(?:in|out)put_blocks|attentions")
_FLUX_BLOCK = re.compile(
    r"(?:^|[._])(?P<block>double_blocks|single_blocks|single_transformer_blocks|transformer_blocks)"
    r"[._](?P<index>\d+)(?:[._]|$)"
)
# kohya sd-scripts' and ComfyUI's SD3 names (``joint_blocks.N.x_block.attn.qkv``, as
# ``lora_unet_joint_blocks_N_x_block_attn_qkv``) and diffusers' (``transformer_blocks.N``,
# also kohya-flattened by OneTrainer as ``lora_transformer_transformer_blocks_N_...``).
_SD3_BLOCK = re.compile(
    r"(?:^|[._])(?:joint_blocks[._](?P<joint>\d+)[._](?:x_block|context_block)"
    r"|(?<!single_)transformer_blocks[._](?P<index>\d+))(?:[._]|$)"
)
_JOINT_ATTENTION = re.compile(r"add_[qkv]_proj|to_add_out|ff_context|norm1_context")
_TEXT_MODULE = re.compile(
    r"^lora_te_text_model_encoder_layers_\d+_(?:self_attn_[qkv]_proj|mlp_fc1)$"
)


def infer_architecture(
    header: SafetensorsHeader, hub_base_model: str | None = None
) -> Architecture:
    """Kind, base family and key layout of the file ``header`` describes; ``hub_base_model``
    is the base model the hub names for the upload (a tie-breaker, as metadata is)."""
    kind, layout = _kind_and_layout(header)
    if kind == "unknown":
        return UNKNOWN
    family = _family(header.tensors, kind)
    hints = _metadata_hints(header.metadata) | _hub_hints(hub_base_model)
    if family is None:
        family = _family_hint(hints)
    elif family == "flux" and "unknown" in hints:
        family = "unknown"  # HunyuanVideo shares Flux's block shapes; its trainers say so
    return Architecture(kind=kind, base_family=family, layout=layout)


def _kind_and_layout(header: SafetensorsHeader) -> tuple[Kind, str]:
    names = [tensor.name for tensor in header.tensors]
    if _is_embedding(header.tensors):
        return "embedding", "textual_inversion"
    layout = _first_layout(_ADAPTER_LAYOUTS, names)
    if layout == "kohya" and _trained_with_lycoris(header.metadata):
        layout = "locon"
    if layout is not None:
        return ("lycoris" if layout in _LYCORIS_LAYOUTS else "lora"), layout
    layout = _first_layout(_CHECKPOINT_LAYOUTS, names)
    if layout is not None:
        return "checkpoint", layout
    return "unknown", "unknown"


def _first_layout(table: Sequence[tuple[str, re.Pattern[str]]], names: list[str]) -> str | None:
    for layout, pattern in table:
        if any(pattern.search(name) for name in names):
            return layout
    return None


def _is_embedding(tensors: Sequence[TensorInfo]) -> bool:
    return 0 < len(tensors) <= 3 and all(
        (t.name in _EMBEDDING_NAMES or t.name.startswith("string_to_param."))
        and len(t.shape) in (1, 2)
        for t in tensors
    )


def _trained_with_lycoris(metadata: Mapping[str, str]) -> bool:
    if metadata.get("ss_network_module", "").startswith("lycoris"):
        return True
    try:
        args = json.loads(metadata.get("ss_network_args", "{}"))
    except (ValueError, RecursionError):
        return False
    return isinstance(args, dict) and str(args.get("algo", "")).lower() in LYCORIS_ALGOS


def _family(tensors: Sequence[TensorInfo], kind: Kind) -> BaseFamily | None:
    """The family the widths show, ``unknown`` when they show a stranger, None when silent."""
    if kind == "embedding":
        return _embedding_family(tensors)
    widths = _input_widths(tensors)
    sd3 = _sd3_family(widths, [t.name for t in tensors])
    if sd3 is not None:
        return sd3
    flux = _flux_family(widths, [t.name for t in tensors])
    if flux is not None:
        return flux
    context = {width for module, width in widths.items() if _CONTEXT_MODULE.search(module)}
    if len(context) > 1:
        return "unknown"
    if context:
        return CONTEXT_WIDTH_FAMILY.get(context.pop(), "unknown")
    return _text_encoder_family(widths)


def _embedding_family(tensors: Sequence[TensorInfo]) -> BaseFamily | None:
    widths = {t.name: t.shape[-1] for t in tensors if t.shape}
    if widths == {"clip_l": 768, "clip_g": 1280}:
        return "sdxl"
    if len(widths) == 1 and not widths.keys() & {"clip_l", "clip_g", "t5"}:
        return TEXT_WIDTH_FAMILY.get(next(iter(widths.values())), "unknown")
    return None


def _input_widths(tensors: Iterable[TensorInfo]) -> dict[str, int]:
    """Input width per module: columns of a down/A matrix, a full weight, or LoKr's product."""
    widths: dict[str, int] = {}
    lokr: dict[str, dict[str, int]] = {}
    for tensor in tensors:
        match = _INPUT_PART.match(tensor.name)
        if match is None or len(tensor.shape) < 2 or _NOT_INPUT.search(tensor.name):
            continue
        module, part = match["module"], match["part"]
        if part.startswith("lokr_"):
            lokr.setdefault(module, {})[part[:7]] = tensor.shape[1]
        else:
            widths[module] = tensor.shape[1]
    for module, factors in lokr.items():
        if len(factors) == 2:
            widths[module] = factors["lokr_w1"] * factors["lokr_w2"]
    return widths


def _flux_family(widths: Mapping[str, int], names: list[str]) -> BaseFamily | None:
    """``flux`` when Flux-style blocks have Flux widths and counts; None without such blocks."""
    blocks = {
        module: (match["block"], int(match["index"]))
        for module in widths
        if not _UNET_MODULE.search(module) and (match := _FLUX_BLOCK.search(module))
    }
    if not blocks:
        return None
    kinds = {block for block, _ in blocks.values()}
    joint = any(_JOINT_ATTENTION.search(name) for name in names)
    if kinds == {"transformer_blocks"} and not joint:
        return "unknown"  # CogVideoX, PixArt and others use plain transformer_blocks
    fits = all(_fits_flux(block, index) for block, index in blocks.values())
    flux_wide = {widths[module] for module in blocks} <= FLUX_INPUT_WIDTHS
    return "flux" if fits and flux_wide else "unknown"


def _sd3_family(widths: Mapping[str, int], names: list[str]) -> BaseFamily | None:
    """``sd3`` when MMDiT joint blocks have one SD3 hidden width (or 4x it, the MLP) and
    fit its block count; ``unknown`` for kohya's ``joint_blocks`` of other widths; None
    when there are no such blocks or they may be another joint-attention model's (Flux)."""
    blocks: dict[str, int] = {}
    kohya_names = False
    for module in widths:
        match = _SD3_BLOCK.search(module)
        if match is None or _UNET_MODULE.search(module):
            continue
        kohya_names = kohya_names or match["joint"] is not None
        blocks[module] = int(match["joint"] or match["index"])
    if not blocks or any("single_" in module for module in widths):
        return None
    if not kohya_names and not any(_JOINT_ATTENTION.search(name) for name in names):
        return None  # plain transformer_blocks: CogVideoX, PixArt and others
    seen = {widths[module] for module in blocks}
    for hidden, count in SD3_BLOCK_COUNTS.items():
        if seen <= {hidden, 4 * hidden} and max(blocks.values()) < count:
            return "sd3"
    return "unknown" if kohya_names else None


def _fits_flux(block: str, index: int) -> bool:
    group = "single" if block.startswith("single") else "double"
    return index < FLUX_BLOCK_COUNTS[group]


def _text_encoder_family(widths: Mapping[str, int]) -> BaseFamily | None:
    """Two CLIP encoders mean SDXL; kohya's single ``lora_te_`` is SD1 or SD2 by width."""
    modules = list(widths)
    prefixes = {m.split("_text_model", 1)[0] for m in modules if m.startswith("lora_te")}
    prefixes |= {m.split(".", 1)[0] for m in modules if m.startswith("text_encoder")}
    first, second = {"lora_te1", "text_encoder"}, {"lora_te2", "text_encoder_2"}
    third = {"lora_te3", "text_encoder_3"}  # SD3's T5: three encoders are not SDXL
    if prefixes & first and prefixes & second and not prefixes & third:
        return "sdxl"
    text = {widths[m] for m in modules if _TEXT_MODULE.match(m)}
    if len(text) == 1:
        return TEXT_WIDTH_FAMILY.get(text.pop(), "unknown")
    return None


def _family_hint(hints: set[BaseFamily]) -> BaseFamily:
    """The family the training metadata names, if it names exactly one we know."""
    return next(iter(hints)) if len(hints) == 1 else "unknown"


def _metadata_hints(metadata: Mapping[str, str]) -> set[BaseFamily]:
    """Families the metadata names; ``unknown`` stands for a model outside those known."""
    hints: set[BaseFamily] = set()
    version = metadata.get("ss_base_model_version", "").strip().lower()
    if version:
        hints.add(_version_family(version))
    architecture = metadata.get("modelspec.architecture", "").strip().lower()
    if architecture:
        hints.add(_modelspec_family(architecture))
    return hints


def _hub_hints(hub_base_model: str | None) -> set[BaseFamily]:
    """The family the hub's base model name says, when it is SD3/SD3.5 (Civitai "SD 3.5",
    "SD 3.5 Large", "SD 3.5 Medium"; Hugging Face "stabilityai/stable-diffusion-3.5-large");
    other names are no hint (Civitai's base names are free to grow)."""
    flat = re.sub(r"[^a-z0-9]+", "", (hub_base_model or "").lower().rpartition("/")[2])
    return {"sd3"} if flat.startswith(("sd3", "stablediffusion3")) else set()


def _version_family(version: str) -> BaseFamily:
    """kohya (``sd_v1``, ``sdxl_base_v1-0``, ``flux1``, ``sd3_m``) and ai-toolkit (``sd_1.5``,
    ``flux.1``, ``sd_3``)."""
    prefixes: Sequence[tuple[str, BaseFamily]] = (
        ("sdxl", "sdxl"),
        ("flux", "flux"),
        ("sd3", "sd3"),
        ("sd_3", "sd3"),
        ("sd_v1", "sd1"),
        ("sd_1", "sd1"),
        ("sd_v2", "sd2"),
        ("sd_2", "sd2"),
    )
    return next((family for prefix, family in prefixes if version.startswith(prefix)), "unknown")


def _modelspec_family(architecture: str) -> BaseFamily:
    """ModelSpec ids: ``stable-diffusion-v1/lora``, ``stable-diffusion-xl-v1-base/lora``,
    ``stable-diffusion-3-medium/lora`` (kohya's SD3 ids; ``stable-diffusion-v3`` too), …"""
    prefixes: Sequence[tuple[str, BaseFamily]] = (
        ("stable-diffusion-xl-v1-base", "sdxl"),
        ("stable-diffusion-3", "sd3"),
        ("stable-diffusion-v3", "sd3"),
        ("stable-diffusion-v1", "sd1"),
        ("stable-diffusion-v2", "sd2"),
        ("flux-1", "flux"),
        ("flux.1", "flux"),
    )
    base = architecture.split("/", 1)[0]
    return next((family for prefix, family in prefixes if base.startswith(prefix)), "unknown")
