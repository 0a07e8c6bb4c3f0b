"""CSD's image tower in plain torch: OpenAI CLIP's visual transformer and the style head.

Parameter names are those of the published checkpoint without its ``module.`` prefix
(``backbone.conv1.weight``, ``backbone.transformer.resblocks.0.attn.in_proj_weight``, …,
``last_layer_style``), so a converted file loads with ``load_state_dict`` as is. The
architecture is read off the tensor shapes (``csd_shape``); nothing else is configured.

CSD sets the backbone's ``proj`` to None and trains ``last_layer_style`` on the
``ln_post`` class-token features, so the style vector is
``normalize(ln_post(cls) @ last_layer_style)``. A file that still carries
``backbone.proj`` whose output width is the style head's input width goes through it first.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

STYLE_HEAD = "last_layer_style"
BACKBONE = "backbone."
HEAD_WIDTH = 64  # OpenAI CLIP: heads = width // 64
_BLOCK_KEY = re.compile(r"^backbone\.transformer\.resblocks\.(\d+)\.ln_1\.weight$")


@dataclass(frozen=True, slots=True)
class CsdShape:
    """The architecture a CSD state dict implies."""

    width: int
    layers: int
    heads: int
    mlp_width: int
    patch_px: int
    image_px: int
    style_dim: int
    proj_dim: int | None  # the style head reads ``backbone.proj``'s output of this width


def csd_shape(tensors: Mapping[str, torch.Tensor]) -> CsdShape:
    """The architecture from tensor shapes; ValueError naming the key when one is missing
    or has a shape no CLIP ViT has."""
    conv = _need(tensors, "backbone.conv1.weight", 4)
    width, patch = int(conv.shape[0]), int(conv.shape[2])
    positions = int(_need(tensors, "backbone.positional_embedding", 2).shape[0]) - 1
    grid = math.isqrt(positions)
    if grid * grid != positions or positions == 0:
        raise ValueError(f"backbone.positional_embedding: {positions} patches is not a square")
    layers = sorted(int(m[1]) for k in tensors if (m := _BLOCK_KEY.match(k)))
    if not layers or layers != list(range(len(layers))):
        raise ValueError("backbone.transformer.resblocks: missing or not numbered 0..N-1")
    head = _need(tensors, STYLE_HEAD, 2)
    head_in = int(head.shape[0])
    proj = tensors.get("backbone.proj")
    if head_in != width and (proj is None or tuple(proj.shape) != (width, head_in)):
        raise ValueError(f"{STYLE_HEAD}: input width {head_in} fits neither {width} nor proj")
    mlp = _need(tensors, "backbone.transformer.resblocks.0.mlp.c_fc.weight", 2)
    return CsdShape(
        width=width,
        layers=len(layers),
        heads=max(1, width // HEAD_WIDTH),
        mlp_width=int(mlp.shape[0]),
        patch_px=patch,
        image_px=grid * patch,
        style_dim=int(head.shape[1]),
        proj_dim=head_in if head_in != width else None,
    )


def _need(tensors: Mapping[str, torch.Tensor], key: str, ndim: int) -> torch.Tensor:
    tensor = tensors.get(key)
    if tensor is None:
        raise ValueError(f"{key}: missing")
    if tensor.ndim != ndim:
        raise ValueError(f"{key}: expected {ndim} dimensions, got shape {tuple(tensor.shape)}")
    return tensor


class CsdModel(nn.Module):
    """Images (CLIP-normalised, ``image_px`` square) to unit-norm CSD style vectors."""

    def __init__(self, shape: CsdShape) -> None:
        super().__init__()
        self.backbone = VisionTransformer(shape)
        head_in = shape.proj_dim or shape.width
        self.last_layer_style = nn.Parameter(torch.empty(head_in, shape.style_dim))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        features = self.backbone(pixels)
        return F.normalize(features @ self.last_layer_style, dim=-1)


class VisionTransformer(nn.Module):
    """OpenAI CLIP's ``VisionTransformer``: patches, class token, pre-LN blocks, ``ln_post``
    on the class token, then ``proj`` when the file has one."""

    def __init__(self, shape: CsdShape) -> None:
        super().__init__()
        w, grid = shape.width, shape.image_px // shape.patch_px
        self.image_px = shape.image_px
        self.conv1 = nn.Conv2d(3, w, shape.patch_px, stride=shape.patch_px, bias=False)
        self.class_embedding = nn.Parameter(torch.empty(w))
        self.positional_embedding = nn.Parameter(torch.empty(grid * grid + 1, w))
        self.ln_pre = nn.LayerNorm(w)
        self.transformer = Transformer(shape)
        self.ln_post = nn.LayerNorm(w)
        self.proj: nn.Parameter | None = None
        if shape.proj_dim is not None:
            self.proj = nn.Parameter(torch.empty(w, shape.proj_dim))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.conv1(pixels).flatten(2).transpose(1, 2)  # (n, patches, width)
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.transformer(self.ln_pre(x))
        features: torch.Tensor = self.ln_post(x[:, 0, :])
        return features if self.proj is None else features @ self.proj


class Transformer(nn.Module):
    def __init__(self, shape: CsdShape) -> None:
        super().__init__()
        self.resblocks = nn.ModuleList(ResidualBlock(shape) for _ in range(shape.layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.resblocks:
            x = block(x)
        return x


class ResidualBlock(nn.Module):
    def __init__(self, shape: CsdShape) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(shape.width)
        self.attn = Attention(shape.width, shape.heads)
        self.ln_2 = nn.LayerNorm(shape.width)
        self.mlp = Mlp(shape.width, shape.mlp_width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attended: torch.Tensor = self.attn(self.ln_1(x))
        x = x + attended
        mixed: torch.Tensor = self.mlp(self.ln_2(x))
        return x + mixed


class Attention(nn.Module):
    """``nn.MultiheadAttention``'s parameters (packed ``in_proj``), batch first, no mask."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * width))
        self.out_proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, length, width = x.shape
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)
        qkv = qkv.view(n, length, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return F.linear(
            out.transpose(1, 2).reshape(n, length, width),
            self.out_proj.weight,
            self.out_proj.bias,
        )


class Mlp(nn.Module):
    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.c_fc = nn.Linear(width, hidden)
        self.c_proj = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.linear(x, self.c_fc.weight, self.c_fc.bias)
        h = h * torch.sigmoid(1.702 * h)  # CLIP's QuickGELU
        return F.linear(h, self.c_proj.weight, self.c_proj.bias)


def load_csd_model(tensors: Mapping[str, torch.Tensor]) -> CsdModel:
    """A ``CsdModel`` holding ``tensors`` (the backbone and the style head; other keys such
    as ``last_layer_content`` are ignored). ValueError when a tensor is missing or misshapen."""
    shape = csd_shape(tensors)
    model = CsdModel(shape)
    wanted = model.state_dict()
    missing = sorted(set(wanted) - set(tensors))
    if missing:
        raise ValueError(f"{missing[0]}: missing ({len(missing)} tensors in all)")
    for key, param in wanted.items():
        if tuple(tensors[key].shape) != tuple(param.shape):
            raise ValueError(
                f"{key}: shape {tuple(tensors[key].shape)}, expected {tuple(param.shape)}"
            )
    model.load_state_dict({k: tensors[k] for k in wanted})
    return model.eval()
