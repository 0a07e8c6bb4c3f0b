"""Second-order texture statistics tried for a style-v2 (an experiment; not used by the package).

Every function takes a batch of Lab images ``(B, 3, H, W)`` (as ``descriptors.srgb_to_lab``
gives them) and returns named feature groups of shape ``(B, d)``. Nothing is learned from
images: the filters are designed (Gaussian derivatives) or drawn once from a fixed seed, so
a vector depends only on its own image.

- ``derivative_covariance``: at three scales (full, 1/2, 1/4; average pooling only, so the
  brushwork at the image's own scale is kept at the first), the covariance of 17 maps: L, a,
  b, the first and second Gaussian derivatives of L, the first derivatives of a and b, and the
  rectified magnitudes of L's derivatives. It sees how colour and stroke co-vary, which
  histograms of each alone do not.
- ``random_gram``: Gram matrices of a seeded random two-layer convolution net (Lab input,
  ReLU), the texture statistics of Gatys et al. without trained weights, at two scales.
- ``chroma_2d``: a 12 x 12 chroma (a, b) histogram weighted by nothing but counts, and one
  per lightness tercile.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

Groups = dict[str, "torch.Tensor"]

SCALES = (1, 2, 4)
RANDOM_SEED = 1234
RANDOM_CHANNELS = (24, 32)


def _upper(cov: torch.Tensor) -> torch.Tensor:
    import torch

    n = cov.shape[-1]
    i, j = torch.triu_indices(n, n)
    return cov[:, i, j]


def _covariance(maps: torch.Tensor) -> torch.Tensor:
    """Upper triangle of each image's channel covariance, ``maps`` (B, C, H, W)."""
    flat = maps.flatten(2)
    flat = flat - flat.mean(2, keepdim=True)
    cov = flat @ flat.transpose(1, 2) / flat.shape[2]
    return _upper(cov)


def _gram(maps: torch.Tensor) -> torch.Tensor:
    flat = maps.flatten(2)
    return _upper(flat @ flat.transpose(1, 2) / flat.shape[2])


def _derivative_kernels() -> torch.Tensor:
    import torch

    x = torch.arange(-2, 3, dtype=torch.float32)
    g = torch.exp(-(x**2) / 2)
    g = g / g.sum()
    d1 = -x * g
    d1 = d1 / (d1 * -x).sum()
    d2 = (x**2 - 1) * g
    d2 = d2 - d2.mean()
    gx = torch.outer(g, d1)
    gxx = torch.outer(g, d2)
    gxy = torch.outer(d1, d1)
    return torch.stack([gx, gx.T, gxx, gxx.T, gxy]).unsqueeze(1)


def derivative_covariance(lab: torch.Tensor) -> Groups:
    import torch
    import torch.nn.functional as F

    scale = torch.tensor([100.0, 50.0, 50.0]).view(1, 3, 1, 1)
    x = lab / scale
    kernels = _derivative_kernels()
    groups: Groups = {}
    for s in SCALES:
        img = F.avg_pool2d(x, s) if s > 1 else x
        lum = F.conv2d(F.pad(img[:, :1], (2, 2, 2, 2), mode="reflect"), kernels)
        chroma = F.conv2d(
            F.pad(img[:, 1:].reshape(-1, 1, *img.shape[2:]), (2, 2, 2, 2), mode="reflect"),
            kernels[:2],
        ).reshape(img.shape[0], 4, *img.shape[2:])
        maps = torch.cat([img, lum * 4, chroma * 4, lum[:, :3].abs() * 4], 1)
        groups[f"deriv_cov_{s}"] = _covariance(maps)
    return groups


def _random_filters() -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    gen = torch.Generator().manual_seed(RANDOM_SEED)
    c1, c2 = RANDOM_CHANNELS
    w1 = torch.randn(c1, 3, 5, 5, generator=gen)
    w1 = w1 - w1.mean((2, 3), keepdim=True) * 0.5
    w1 = w1 / w1.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    w2 = torch.randn(c2, c1, 3, 3, generator=gen)
    w2 = w2 / w2.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    return w1, w2


_FILTERS: tuple[torch.Tensor, torch.Tensor] | None = None


def random_gram(lab: torch.Tensor) -> Groups:
    import torch
    import torch.nn.functional as F

    global _FILTERS
    if _FILTERS is None:
        _FILTERS = _random_filters()
    w1, w2 = _FILTERS
    scale = torch.tensor([100.0, 50.0, 50.0]).view(1, 3, 1, 1)
    x = lab / scale
    groups: Groups = {}
    for s in (1, 2):
        img = F.avg_pool2d(x, s) if s > 1 else x
        img = img - img.mean((2, 3), keepdim=True)
        h1 = F.relu(F.conv2d(img, w1, padding=2))
        h2 = F.relu(F.conv2d(F.avg_pool2d(h1, 2), w2, padding=1))
        groups[f"rgram1_{s}"] = _gram(h1)
        groups[f"rgram2_{s}"] = _gram(h2)
    return groups


def chroma_2d(lab: torch.Tensor) -> Groups:
    import torch

    batch = lab.shape[0]
    n = 12
    ia = ((lab[:, 1] + 45) / 90 * n).clamp(0, n - 0.01).long()
    ib = ((lab[:, 2] + 40) / 100 * n).clamp(0, n - 0.01).long()
    il = (lab[:, 0] / 100 * 3).clamp(0, 2.99).long()
    codes = (il * n + ia) * n + ib
    flat = codes.reshape(batch, -1)
    hist = torch.zeros(batch, 3 * n * n).scatter_add_(1, flat, torch.ones(flat.shape))
    hist = hist / flat.shape[1]
    return {"chroma_2d": hist.view(batch, 3, n * n).sum(1), "chroma_2d_l": hist}
