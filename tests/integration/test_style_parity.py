"""CLIP and CSD as their authors compute them: the same random weights, the same PIL images,
each side's own preprocessing, outputs compared within float tolerance.

No weights can be downloaded here, so these tests prove the plumbing. The references:

- CSD: github.com/learn2phoenix/CSD at 3a9df32605b869eceb704897839be80977a9f1ea.
  ``CSD/model.py`` (``CSD_CLIP``: OpenAI CLIP's visual tower with ``proj`` moved into
  ``last_layer_style`` / ``last_layer_content`` and set to None), ``CSD/loss_utils.py``
  (``transforms_branch0``, the eval transform ``main_sim.py`` uses for CSD),
  ``CSD/utils.py`` (``convert_state_dict``), ``main_sim.py`` (how a checkpoint is loaded)
  and ``CSD/train_csd.py`` (what a checkpoint holds). ``CSD_CLIP`` builds its backbone with
  ``clip.load("ViT-L/14")`` (a download), so the classes below are copied from the
  repository's ``models/clip/model.py`` (OpenAI CLIP's ``model.py``) and ``CSD_CLIP``'s
  constructor is its own with that one call replaced by a tiny tower; the forwards are
  theirs, statement for statement. No package ships this code, hence the copy.
- torchvision 0.28.0 (``transforms/functional.py``: ``_compute_resized_output_size``,
  ``resize``, ``center_crop``, ``to_tensor``, ``normalize``): ``transforms_branch0`` is
  written out below as those functions compute it on a PIL image, because torchvision is
  not in the project's environment (a matching wheel exists, but it switches transformers'
  image processors to another backend, so it is not added as a dependency).
- transformers (installed): ``CLIPVisionModelWithProjection`` and ``CLIPImageProcessorPil``
  as the HF model cards use them.
- open_clip_torch 3.3.0 and torchvision 0.28.0 themselves, in the tests marked so, which
  skip when those packages are not importable (they are not in the project's venv; run
  with them on PYTHONPATH to check the written-out references above against the real ones:
  ``pip install --no-deps --target DIR torchvision==0.28.0 open_clip_torch==3.3.0 ftfy
  timm``; where torchvision's compiled ops do not load against the installed torch, its
  pure-Python transforms still serve once ``torch.library.register_fake`` is made to skip
  ``torchvision::`` ops before the import). All 9 passed that way on 2026-12-07.
"""

from __future__ import annotations

import argparse
import copy
import os
import subprocess
import sys
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_model
from torch import nn
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from detectors.style.clip import ClipEmbedder
from detectors.style.clip_pixels import clip_pixels
from detectors.style.csd import CsdEmbedder
from detectors.style.csd_model import load_csd_model

try:
    from transformers import CLIPImageProcessorPil as HfProcessor
except ImportError:  # transformers 4: the PIL/NumPy processor has the plain name
    from transformers import CLIPImageProcessor as HfProcessor  # type: ignore[assignment]

BIN = Path(sys.executable).parent / "stylewatch"
IMAGE_PX = 224  # CSD's transforms_branch0 is fixed at 224
PATCH_PX = 32
WIDTH = 128  # two heads of 64, as OpenAI CLIP (and stylewatch) derive them
LAYERS = 2
STYLE_DIM = 48
ATOL = 1e-5


# --- learn2phoenix/CSD@3a9df32 models/clip/model.py (OpenAI CLIP), the ViT parts -----------


class LayerNorm(nn.LayerNorm):
    """Subclass torch's LayerNorm to handle fp16."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        orig_type = x.dtype
        ret = super().forward(x.type(torch.float32))
        return ret.type(orig_type)


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    def __init__(self, d_model: int, n_head: int, attn_mask: torch.Tensor | None = None):
        super().__init__()

        self.attn = nn.MultiheadAttention(d_model, n_head)
        self.ln_1 = LayerNorm(d_model)
        self.mlp = nn.Sequential(
            OrderedDict(
                [
                    ("c_fc", nn.Linear(d_model, d_model * 4)),
                    ("gelu", QuickGELU()),
                    ("c_proj", nn.Linear(d_model * 4, d_model)),
                ]
            )
        )
        self.ln_2 = LayerNorm(d_model)
        self.attn_mask = attn_mask

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        self.attn_mask = (
            self.attn_mask.to(dtype=x.dtype, device=x.device)
            if self.attn_mask is not None
            else None
        )
        out: torch.Tensor = self.attn(x, x, x, need_weights=False, attn_mask=self.attn_mask)[0]
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.ln_1(x))
        x = x + self.mlp(self.ln_2(x))
        return x


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int):
        super().__init__()
        self.width = width
        self.layers = layers
        self.resblocks = nn.Sequential(
            *[ResidualAttentionBlock(width, heads) for _ in range(layers)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.resblocks(x)
        return out


class VisionTransformer(nn.Module):
    def __init__(
        self,
        input_resolution: int,
        patch_size: int,
        width: int,
        layers: int,
        heads: int,
        output_dim: int,
    ):
        super().__init__()
        self.input_resolution = input_resolution
        self.output_dim = output_dim
        self.conv1 = nn.Conv2d(
            in_channels=3,
            out_channels=width,
            kernel_size=patch_size,
            stride=patch_size,
            bias=False,
        )

        scale = width**-0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(
            scale * torch.randn((input_resolution // patch_size) ** 2 + 1, width)
        )
        self.ln_pre = LayerNorm(width)

        self.transformer = Transformer(width, layers, heads)

        self.ln_post = LayerNorm(width)
        self.proj: nn.Parameter | None = nn.Parameter(scale * torch.randn(width, output_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)  # shape = [*, width, grid, grid]
        x = x.reshape(x.shape[0], x.shape[1], -1)  # shape = [*, width, grid ** 2]
        x = x.permute(0, 2, 1)  # shape = [*, grid ** 2, width]
        x = torch.cat(
            [
                self.class_embedding.to(x.dtype)
                + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype, device=x.device),
                x,
            ],
            dim=1,
        )  # shape = [*, grid ** 2 + 1, width]
        x = x + self.positional_embedding.to(x.dtype)
        x = self.ln_pre(x)

        x = x.permute(1, 0, 2)  # NLD -> LND
        x = self.transformer(x)
        x = x.permute(1, 0, 2)  # LND -> NLD

        x = self.ln_post(x[:, 0, :])

        if self.proj is not None:
            x = x @ self.proj

        return x


# --- learn2phoenix/CSD@3a9df32 CSD/model.py: CSD_CLIP ----------------------------------------


class CSD_CLIP(nn.Module):
    """backbone + projection head; ``clip.load`` replaced by the ``backbone`` argument."""

    def __init__(self, backbone: VisionTransformer, content_proj_head: str = "default"):
        super().__init__()
        self.content_proj_head = content_proj_head
        self.backbone = backbone  # was: clipmodel, _ = clip.load(...); clipmodel.visual
        # convert_weights_float(self.backbone): a no-op on a float32 tower
        self.last_layer_style = copy.deepcopy(self.backbone.proj)
        self.last_layer_content = copy.deepcopy(self.backbone.proj)  # content_proj_head default
        self.backbone.proj = None

    def forward(
        self, input_data: torch.Tensor, alpha: float | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        feature = self.backbone(input_data)
        reverse_feature = feature  # ReverseLayerF.apply(feature, alpha) when training

        style_output = feature @ self.last_layer_style
        style_output = nn.functional.normalize(style_output, dim=1, p=2)

        content_output = reverse_feature @ self.last_layer_content
        content_output = nn.functional.normalize(content_output, dim=1, p=2)
        return feature, content_output, style_output


def convert_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CSD/utils.py's ``convert_state_dict``."""
    new_state_dict = OrderedDict()
    for k, v in state_dict.items():
        if k.startswith("module."):
            k = k.replace("module.", "")
        new_state_dict[k] = v
    return new_state_dict


# --- CSD/loss_utils.py transforms_branch0, as torchvision 0.28.0 computes it on a PIL image --


def transforms_branch0(image: Image.Image, size: int = IMAGE_PX) -> torch.Tensor:
    """``Compose([Resize(size, BICUBIC), CenterCrop(size), ToTensor(), normalize])``."""
    # functional.resize -> _compute_resized_output_size (size given for the short edge only)
    w, h = image.size
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size, int(size * long / short)
    new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    if [h, w] != [new_h, new_w]:  # resize returns the image itself when nothing changes
        image = image.resize((new_w, new_h), Image.Resampling.BICUBIC)  # _functional_pil
    # functional.center_crop (never smaller than the crop here): int(round(...)) there
    crop_top = round((new_h - size) / 2.0)
    crop_left = round((new_w - size) / 2.0)
    image = image.crop((crop_left, crop_top, crop_left + size, crop_top + size))
    # functional.to_tensor on an RGB PIL image
    img = torch.from_numpy(np.array(image, np.uint8, copy=True))
    img = img.view(image.size[1], image.size[0], 3).permute((2, 0, 1)).contiguous()
    x = img.to(dtype=torch.get_default_dtype()).div(255)
    # functional.normalize
    mean = torch.as_tensor(CLIP_MEAN_CSD, dtype=x.dtype)
    std = torch.as_tensor(CLIP_STD_CSD, dtype=x.dtype)
    return x.sub_(mean[:, None, None]).div_(std[:, None, None])


# loss_utils.py: transforms.Normalize((0.48145466, ...), (0.26862954, ...)), typed out again
# here so a change to stylewatch's constants cannot pass unnoticed.
CLIP_MEAN_CSD = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD_CSD = (0.26862954, 0.26130258, 0.27577711)


def authors_open(image: Image.Image) -> Image.Image:
    """data/wikiart.py: ``Image.open(img_loc).convert("RGB")``."""
    return image.convert("RGB")


# --- fixtures -------------------------------------------------------------------------------


def parity_images() -> list[Image.Image]:
    """Pixel noise over a gradient (so a one-pixel shift moves the embedding), at sizes where
    the rounding conventions part: a long side of 334.88 px (truncated vs rounded), an odd
    margin of 3 (round vs floor), a margin of 5 (half to even), an upscale, and grey and
    RGBA modes."""
    rng = np.random.default_rng(0)

    def noise(w: int, h: int, mode: str = "RGB") -> Image.Image:
        ramp = np.linspace(0, 120, w)[None, :, None] + np.linspace(0, 80, h)[:, None, None]
        px = np.clip(ramp + rng.integers(0, 135, (h, w, 4)), 0, 255).astype(np.uint8)
        rgba = Image.fromarray(px, "RGBA")
        return rgba if mode == "RGBA" else rgba.convert(mode)

    return [
        noise(299, 200),
        noise(200, 299),
        noise(227, 224),
        noise(224, 229),
        noise(150, 100),
        noise(300, 300, "L"),
        noise(260, 240, "RGBA"),
    ]


def perturb(module: nn.Module, seed: int) -> None:
    """Seeded noise on every parameter, so no LayerNorm is an identity and no bias is zero:
    a swapped or skipped tensor shows."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))


def authors_model(seed: int) -> CSD_CLIP:
    torch.manual_seed(seed)
    tower = VisionTransformer(IMAGE_PX, PATCH_PX, WIDTH, LAYERS, WIDTH // 64, STYLE_DIM)
    model = CSD_CLIP(tower)
    perturb(model, seed)  # and the two heads, both copies of proj, now differ
    return model.eval()


def authors_checkpoint(model: CSD_CLIP, path: Path) -> None:
    """CSD/train_csd.py's ``save_dict`` from a DistributedDataParallel model (``module.``)."""
    ddp = {f"module.{k}": v for k, v in model.state_dict().items()}
    params = list(model.parameters())
    opt_bb = torch.optim.AdamW(params[:-2], lr=1e-5)
    opt_proj = torch.optim.AdamW(params[-2:], lr=1e-3)
    for opt in (opt_bb, opt_proj):
        for p in opt.param_groups[0]["params"]:
            p.grad = torch.zeros_like(p)
        opt.step()  # lr on zero gradients leaves the weights alone but fills the state
    save_dict: dict[str, object] = {
        "model_state_dict": ddp,
        "opt_bb": opt_bb.state_dict(),
        "opt_proj": opt_proj.state_dict(),
        "iter": 100000,
        "args": argparse.Namespace(arch="vit_base", lr=3e-5, use_fp16=True, eval_k=[1, 10]),
        "fp16_scaler": {"scale": 65536.0, "growth_factor": 2.0, "_growth_tracker": 17},
    }
    torch.save(save_dict, path)


def authors_embed(checkpoint: Path, images: list[Image.Image]) -> torch.Tensor:
    """main_sim.py's CSD path: a fresh CSD_CLIP, the checkpoint's ``model_state_dict``
    through ``convert_state_dict``, ``load_state_dict(strict=False)``, eval; the style output
    of ``transforms_branch0`` pixels (``eval_embed='head'``)."""
    model = authors_model(seed=999)  # other weights, all to be replaced by the checkpoint's
    checkpoint_obj = torch.load(checkpoint, map_location="cpu", weights_only=False)
    state_dict = convert_state_dict(checkpoint_obj["model_state_dict"])
    msg = model.load_state_dict(state_dict, strict=False)
    assert not msg.missing_keys and not msg.unexpected_keys, msg
    model.eval()
    pixels = torch.stack([transforms_branch0(authors_open(img)) for img in images])
    with torch.inference_mode():
        style: torch.Tensor = model(pixels)[2]
    return style


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STYLEWATCH_")}
    env["STYLEWATCH_DATA_DIR"] = str(tmp_path / "data")
    return subprocess.run(
        [str(BIN), *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def csd_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """The authors' checkpoint.pth and what ``stylewatch models convert-csd`` made of it."""
    folder = tmp_path_factory.mktemp("csd-parity")
    checkpoint, out = folder / "checkpoint.pth", folder / "csd.safetensors"
    authors_checkpoint(authors_model(seed=0), checkpoint)
    result = run_cli(folder, "models", "convert-csd", str(checkpoint), str(out))
    assert result.returncode == 0, result.stderr
    return checkpoint, out, result.stdout


def assert_rows_close(ours: np.ndarray, theirs: torch.Tensor) -> None:
    expected = theirs.detach().float().numpy()
    assert ours.shape == expected.shape
    np.testing.assert_allclose(ours, expected, atol=ATOL, rtol=0)


# --- CSD --------------------------------------------------------------------------------------


def test_csd_pixels_are_the_authors_pixels() -> None:
    """stylewatch's CSD preprocessing gives transforms_branch0's tensor, image by image."""
    for img in parity_images():
        ours = clip_pixels([img], IMAGE_PX, "cpu", torch.float32)[0]
        theirs = transforms_branch0(authors_open(img))
        torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)


def test_convert_csd_round_trips_the_authors_checkpoint(csd_files: tuple[Path, Path, str]):
    """Every backbone tensor and the style head come out bit for bit, under the names
    CSD_CLIP gives them; the content head, optimiser state and args are left behind."""
    checkpoint, out, stdout = csd_files
    heads = WIDTH // 64
    assert (
        f"width {WIDTH}, {LAYERS} layers, {heads} heads, patch {PATCH_PX}, "
        f"image {IMAGE_PX}px, style dim {STYLE_DIM}" in stdout
    )
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)["model_state_dict"]
    expected = {
        k.removeprefix("module."): v for k, v in state.items() if "last_layer_content" not in k
    }
    converted = load_file(out)
    assert set(converted) == set(expected)
    for key, tensor in expected.items():
        assert torch.equal(converted[key], tensor), key


def test_csd_embedding_is_the_authors(csd_files: tuple[Path, Path, str]) -> None:
    """The converted file through CsdEmbedder (PIL images in) gives CSD_CLIP's style output
    on transforms_branch0 pixels from the original checkpoint, and not its content output
    or backbone feature."""
    checkpoint, out, _ = csd_files
    images = parity_images()
    ours = CsdEmbedder(out, device="cpu").embed(images)
    theirs = authors_embed(checkpoint, images)
    assert_rows_close(ours, theirs)
    # The head matters: the content head's output is far from the style head's.
    model = authors_model(seed=0)
    pixels = torch.stack([transforms_branch0(authors_open(img)) for img in images])
    with torch.inference_mode():
        _, content, _ = model(pixels)
    assert np.abs(ours - content.numpy()).max() > 0.1


def test_csd_embedding_from_the_hub_layout_is_the_authors(tmp_path: Path) -> None:
    """CSD_CLIP as PyTorchModelHubMixin.save_pretrained writes it (safetensors, no
    ``module.``, content head included) loads as is and gives the authors' output."""
    model = authors_model(seed=3)
    path = tmp_path / "model.safetensors"
    save_model(model, str(path))
    images = parity_images()[:3]
    pixels = torch.stack([transforms_branch0(authors_open(img)) for img in images])
    with torch.inference_mode():
        _, _, theirs = model(pixels)
    assert_rows_close(CsdEmbedder(path, device="cpu").embed(images), theirs)


# --- CLIP through transformers -------------------------------------------------------------

PROCESSORS: dict[str, dict[str, Any]] = {
    # What openai/clip-vit-*'s preprocessor_config.json says, at this model's size.
    "openai": {"size": {"shortest_edge": 64}, "crop_size": {"height": 64, "width": 64}},
    # Resize larger than the crop, other statistics: stylewatch must read the file.
    "resize-72-crop-64": {
        "size": {"shortest_edge": 72},
        "crop_size": {"height": 64, "width": 64},
        "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5],
    },
}


def hf_clip(seed: int) -> CLIPVisionModelWithProjection:
    torch.manual_seed(seed)
    config = CLIPVisionConfig(
        hidden_size=WIDTH,
        intermediate_size=4 * WIDTH,
        num_hidden_layers=LAYERS,
        num_attention_heads=WIDTH // 64,
        image_size=64,
        patch_size=16,
        projection_dim=STYLE_DIM,
    )
    model = CLIPVisionModelWithProjection(config)
    perturb(model, seed)
    nn.Module.eval(model)
    return model


@pytest.mark.parametrize("processor", sorted(PROCESSORS))
def test_clip_embedding_is_transformers(processor: str, tmp_path: Path) -> None:
    """A folder as save_pretrained writes it (model and image processor) through
    ClipEmbedder gives what transformers gives: CLIPImageProcessor's pixels, the model's
    ``image_embeds``, L2-normalised."""
    hf_clip(seed=5).save_pretrained(tmp_path, safe_serialization=True)
    HfProcessor(**PROCESSORS[processor]).save_pretrained(tmp_path)
    images = parity_images()
    ref_processor = HfProcessor.from_pretrained(tmp_path, local_files_only=True)
    ref_model: Any = CLIPVisionModelWithProjection.from_pretrained(
        tmp_path, local_files_only=True, use_safetensors=True
    )
    pixels = ref_processor(images, return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        theirs = nn.functional.normalize(ref_model.eval()(pixel_values=pixels).image_embeds)
    assert_rows_close(ClipEmbedder(tmp_path, device="cpu").embed(images), theirs)


# --- against the real torchvision and open_clip, where installed ----------------------------


def test_written_out_transforms_are_torchvisions() -> None:
    transforms = pytest.importorskip("torchvision.transforms")
    mode = transforms.InterpolationMode.BICUBIC
    real: Callable[[Image.Image], torch.Tensor] = transforms.Compose(
        [
            transforms.Resize(size=IMAGE_PX, interpolation=mode),
            transforms.CenterCrop(IMAGE_PX),
            transforms.ToTensor(),
            transforms.Normalize(CLIP_MEAN_CSD, CLIP_STD_CSD),
        ]
    )
    for img in parity_images():
        rgb = authors_open(img)
        torch.testing.assert_close(transforms_branch0(rgb), real(rgb), atol=0, rtol=0)


def open_clip_tower(open_clip: Any) -> Any:
    torch.manual_seed(7)
    tower = open_clip.transformer.VisionTransformer(
        image_size=IMAGE_PX,
        patch_size=PATCH_PX,
        width=WIDTH,
        layers=LAYERS,
        heads=WIDTH // 64,
        mlp_ratio=4.0,
        output_dim=STYLE_DIM,
        act_layer=open_clip.transformer.QuickGELU,
    )
    perturb(tower, 7)
    return tower.eval()


def test_open_clip_agrees_with_stylewatch_and_the_copied_tower() -> None:
    """open_clip's ViT and eval transform, on an OpenAI-layout state dict, against
    stylewatch's CSD backbone and clip_pixels, and against the tower copied above."""
    open_clip = pytest.importorskip("open_clip")
    tower = open_clip_tower(open_clip)
    visual = {k: v.detach().clone() for k, v in tower.state_dict().items()}
    mean, std = open_clip.OPENAI_DATASET_MEAN, open_clip.OPENAI_DATASET_STD
    preprocess = open_clip.transform.image_transform(IMAGE_PX, False, mean=mean, std=std)
    # RGB in: open_clip (like OpenAI CLIP's _transform) converts to RGB after the crop, so an
    # RGBA image is resampled with its alpha (PIL premultiplies it); CSD converts on opening
    # (data/wikiart.py) and so does stylewatch.
    images = [authors_open(img) for img in parity_images()]
    pixels = torch.stack([preprocess(img) for img in images])
    ours_pixels = clip_pixels(images, IMAGE_PX, "cpu", torch.float32)
    torch.testing.assert_close(ours_pixels, pixels, atol=1e-6, rtol=0)

    gen = torch.Generator().manual_seed(8)
    style = torch.randn(STYLE_DIM, 16, generator=gen)
    ours = load_csd_model(
        {**{f"backbone.{k}": v for k, v in visual.items()}, "last_layer_style": style}
    )
    copied = VisionTransformer(IMAGE_PX, PATCH_PX, WIDTH, LAYERS, WIDTH // 64, STYLE_DIM)
    copied.load_state_dict(visual)
    with torch.inference_mode():
        theirs = tower(pixels)
        torch.testing.assert_close(copied.eval()(pixels), theirs, atol=ATOL, rtol=0)
        expected = nn.functional.normalize(theirs @ style, dim=-1)
        torch.testing.assert_close(ours(pixels), expected, atol=ATOL, rtol=0)


def test_open_clip_agrees_with_transformers_clip() -> None:
    """The same weights in transformers' CLIP and in open_clip (the mapping transformers'
    convert_clip_original_pytorch_to_hf.py applies): the same image embedding."""
    open_clip = pytest.importorskip("open_clip")
    from tests.integration.test_csd import openai_visual

    config = CLIPVisionConfig(
        hidden_size=WIDTH,
        intermediate_size=4 * WIDTH,
        num_hidden_layers=LAYERS,
        num_attention_heads=WIDTH // 64,
        image_size=IMAGE_PX,
        patch_size=PATCH_PX,
        projection_dim=STYLE_DIM,
    )
    torch.manual_seed(9)
    hf = CLIPVisionModelWithProjection(config)
    perturb(hf, 9)
    nn.Module.eval(hf)
    tower = open_clip_tower(open_clip)
    tower.load_state_dict(openai_visual(hf))
    pixels = torch.stack([transforms_branch0(authors_open(img)) for img in parity_images()])
    with torch.inference_mode():
        torch.testing.assert_close(
            hf(pixel_values=pixels).image_embeds, tower(pixels), atol=ATOL, rtol=0
        )
