"""Hand-designed style descriptors computed per image: palette, texture, frequency, layout.

Every function takes a batch of RGB images, a float tensor ``(B, 3, H, W)`` in [0, 1], and
returns named feature groups of shape ``(B, d)``. Nothing is learned and nothing depends on
the other images of the batch. Bin ranges are fixed in CIE Lab units, so a histogram means the
same thing for every image.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

Groups = dict[str, "torch.Tensor"]

# sRGB D65 to XYZ, and the D65 white point.
_RGB_TO_XYZ = ((0.4124, 0.3576, 0.1805), (0.2126, 0.7152, 0.0722), (0.0193, 0.1192, 0.9505))
_WHITE = (0.9505, 1.0, 1.089)
GIST_SIZE_PX = 112
GIST_FREQUENCIES = (0.25, 0.125, 0.0625, 0.03125)  # cycles per pixel at GIST_SIZE_PX
GIST_ORIENTATIONS = 8


def srgb_to_lab(x: torch.Tensor) -> torch.Tensor:
    """CIE Lab (L in 0..100, a and b roughly -100..100) of sRGB values in [0, 1]."""
    import torch

    linear = torch.where(x > 0.04045, ((x + 0.055) / 1.055) ** 2.4, x / 12.92)
    xyz = torch.einsum("ij,bjhw->bihw", torch.tensor(_RGB_TO_XYZ), linear)
    xyz = xyz / torch.tensor(_WHITE).view(1, 3, 1, 1)
    f = torch.where(xyz > 0.008856, xyz.clamp_min(1e-9) ** (1 / 3), 7.787 * xyz + 16 / 116)
    lightness = 116 * f[:, 1] - 16
    return torch.stack([lightness, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], 1)


def soft_histogram(values: torch.Tensor, lo: float, hi: float, bins: int) -> torch.Tensor:
    """Linearly interpolated histogram of each row of ``values`` (B, N), summing to 1."""
    import torch

    t = ((values - lo) / (hi - lo) * (bins - 1)).clamp(0, bins - 1)
    i0 = t.floor().long().clamp(max=bins - 2)
    w = t - i0
    hist = torch.zeros(values.shape[0], bins, dtype=values.dtype)
    hist.scatter_add_(1, i0, 1 - w)
    hist.scatter_add_(1, i0 + 1, w)
    return hist / values.shape[1]


def _count(codes: torch.Tensor, bins: int) -> torch.Tensor:
    import torch

    flat = codes.reshape(codes.shape[0], -1)
    hist = torch.zeros(flat.shape[0], bins)
    hist.scatter_add_(1, flat, torch.ones(flat.shape))
    return hist / flat.shape[1]


def torch_cat(parts: list[torch.Tensor]) -> torch.Tensor:
    import torch

    return torch.cat(parts, 1)


def palette(lab: torch.Tensor) -> Groups:
    """Lab histograms: global joint, per quadrant, marginal, and first two moments."""
    batch, _, height, width = lab.shape
    lightness, a, b = lab[:, 0], lab[:, 1], lab[:, 2]

    def codes(n_l: int, n_ab: int) -> torch.Tensor:
        il = (lightness / 100 * n_l).clamp(0, n_l - 0.01).long()
        ia = ((a + 40) / 80 * n_ab).clamp(0, n_ab - 0.01).long()
        ib = ((b + 40) / 100 * n_ab).clamp(0, n_ab - 0.01).long()
        return (il * n_ab + ia) * n_ab + ib

    coarse = codes(4, 6)
    h2, w2 = height // 2, width // 2
    quadrants = [_count(coarse[:, y : y + h2, x : x + w2], 144) for y in (0, h2) for x in (0, w2)]
    flat = lab.reshape(batch, 3, -1)
    return {
        "lab_joint": _count(codes(4, 8), 256),
        "lab_quadrants": torch_cat(quadrants),
        "lightness": soft_histogram(flat[:, 0], 0, 100, 16),
        "chroma_ab": torch_cat(
            [soft_histogram(flat[:, 1], -40, 40, 12), soft_histogram(flat[:, 2], -40, 60, 12)]
        ),
        "lab_moments": torch_cat([flat.mean(2) / 50, flat.std(2) / 30]),
    }


def hue_saturation(x: torch.Tensor, lab: torch.Tensor) -> Groups:
    """Chroma-weighted hue histogram and saturation and chroma histograms."""
    import torch

    batch = x.shape[0]
    top, bottom = torch.amax(x, 1), torch.amin(x, 1)
    saturation = ((top - bottom) / (top + 1e-6)).reshape(batch, -1)
    a, b = lab[:, 1].reshape(batch, -1), lab[:, 2].reshape(batch, -1)
    hue = torch.atan2(b, a)
    chroma = (a * a + b * b).sqrt()
    bins = 16
    t = (hue + math.pi) / (2 * math.pi) * bins
    i0 = t.floor().long() % bins
    w = t - t.floor()
    hist = torch.zeros(batch, bins)
    hist.scatter_add_(1, i0, chroma * (1 - w))
    hist.scatter_add_(1, (i0 + 1) % bins, chroma * w)
    return {
        "hue": hist / (hist.sum(1, keepdim=True) + 1e-9),
        "saturation": soft_histogram(saturation, 0, 1, 10),
        "chroma": soft_histogram(chroma, 0, 60, 10),
    }


def gradients(gray: torch.Tensor) -> Groups:
    """Magnitude-weighted orientation and log-magnitude histograms at three scales."""
    import torch
    import torch.nn.functional as F

    batch = gray.shape[0]
    sobel = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]).view(1, 1, 3, 3) / 8
    groups: Groups = {}
    for scale in range(3):
        g = F.avg_pool2d(gray, 2**scale) if scale else gray
        gx = F.conv2d(g, sobel, padding=1)
        gy = F.conv2d(g, sobel.transpose(2, 3), padding=1)
        magnitude = (gx**2 + gy**2).sqrt().reshape(batch, -1)
        angle = torch.atan2(gy, gx).reshape(batch, -1) % math.pi
        bins = 12
        t = angle / math.pi * bins
        i0 = t.floor().long() % bins
        w = t - t.floor()
        hist = torch.zeros(batch, bins)
        hist.scatter_add_(1, i0, magnitude * (1 - w))
        hist.scatter_add_(1, (i0 + 1) % bins, magnitude * w)
        groups[f"orientation_{scale}"] = hist / (hist.sum(1, keepdim=True) + 1e-9)
        log_magnitude = torch.log(magnitude + 1e-3)
        groups[f"edge_strength_{scale}"] = soft_histogram(log_magnitude, math.log(1e-3), 0, 12)
    return groups


def local_binary_patterns(gray: torch.Tensor) -> Groups:
    """8-neighbour LBP code histograms (256 bins) at full and half resolution."""
    import torch
    import torch.nn.functional as F

    offsets = ((0, 0), (0, 1), (0, 2), (1, 2), (2, 2), (2, 1), (2, 0), (1, 0))
    groups: Groups = {}
    for scale, g in enumerate((gray, F.avg_pool2d(gray, 2))):
        centre = g[:, :, 1:-1, 1:-1]
        code = torch.zeros_like(centre, dtype=torch.long)
        for bit, (dy, dx) in enumerate(offsets):
            neighbour = g[:, :, dy : dy + centre.shape[2], dx : dx + centre.shape[3]]
            code += ((neighbour - centre) >= 0.01).long() << bit
        groups[f"lbp_{scale}"] = _count(code, 256)
    return groups


def local_contrast(lab: torch.Tensor) -> Groups:
    """Histograms of the local standard deviation of L, a and b in 3 px and 9 px windows."""
    import torch
    import torch.nn.functional as F

    batch = lab.shape[0]
    groups: Groups = {}
    for size in (3, 9):
        mean = F.avg_pool2d(lab, size, 2, size // 2, count_include_pad=False)
        square = F.avg_pool2d(lab**2, size, 2, size // 2, count_include_pad=False)
        std = torch.log1p((square - mean**2).clamp_min(0).sqrt()).reshape(batch, 3, -1)
        hists = [soft_histogram(std[:, c], 0, math.log1p(30), 10) for c in range(3)]
        groups[f"local_contrast_{size}"] = torch.cat(hists, 1)
    return groups


def cooccurrence(lab: torch.Tensor) -> Groups:
    """Symmetric co-occurrence of 6 lightness levels at 1, 4 and 16 px offsets."""
    import torch

    batch = lab.shape[0]
    level = (lab[:, 0] / 100 * 6).clamp(0, 5.99).long()
    groups: Groups = {}
    for d in (1, 4, 16):
        horizontal = level[:, :, :-d] * 6 + level[:, :, d:]
        vertical = level[:, :-d, :] * 6 + level[:, d:, :]
        pairs = torch.cat([horizontal.reshape(batch, -1), vertical.reshape(batch, -1)], 1)
        hist = _count(pairs, 36).view(batch, 6, 6)
        groups[f"cooccurrence_{d}"] = ((hist + hist.transpose(1, 2)) / 2).reshape(batch, 36)
    return groups


def spectrum(gray: torch.Tensor) -> Groups:
    """Log power in 12 log-spaced radial by 6 angular bands, centred per image."""
    import torch

    g = gray[:, 0]
    n = g.shape[-1]
    window = torch.hann_window(n, periodic=False)
    g = (g - g.mean((1, 2), keepdim=True)) * window[:, None] * window[None, :]
    power = torch.fft.fftshift(torch.fft.fft2(g).abs() ** 2, dim=(-2, -1)).reshape(g.shape[0], -1)
    index = _spectrum_bands(n)
    total = torch.zeros(g.shape[0], 72).index_add_(1, index, power)
    count = torch.zeros(72).index_add_(0, index, torch.ones(index.numel()))
    logs = torch.log(total / count.clamp_min(1) + 1e-8)
    return {"spectrum": logs - logs.mean(1, keepdim=True)}


def _spectrum_bands(n: int) -> torch.Tensor:
    import torch

    yy, xx = torch.meshgrid(torch.arange(n) - n // 2, torch.arange(n) - n // 2, indexing="ij")
    radius = (yy**2 + xx**2).float().sqrt()
    theta = torch.atan2(yy.float(), xx.float()) % math.pi
    radial = (torch.log2(radius.clamp_min(1)) / math.log2(n / 2) * 12).clamp(0, 11).long()
    angular = (theta / math.pi * 6).long().clamp(0, 5)
    return (radial * 6 + angular).reshape(-1)


def gist(lab: torch.Tensor) -> Groups:
    """Gabor energy (4 frequencies x 8 orientations) over a 4x4 grid and over the image."""
    import torch
    import torch.nn.functional as F

    g = F.interpolate(lab[:, :1] / 100, size=GIST_SIZE_PX, mode="bilinear", antialias=True)
    g = g - F.avg_pool2d(g, 15, 1, 7, count_include_pad=False)
    response = torch.fft.ifft2(torch.fft.fft2(g[:, 0])[:, None] * _gabor_bank(GIST_SIZE_PX)).abs()
    return {
        "gist": F.adaptive_avg_pool2d(response, 4).flatten(1),
        "gabor_energy": response.mean((2, 3)),
    }


def _gabor_bank(n: int) -> torch.Tensor:
    """Log-Gabor transfer functions ``(filters, n, n)`` in FFT layout."""
    import torch

    fy = torch.fft.fftfreq(n).view(-1, 1)
    fx = torch.fft.fftfreq(n).view(1, -1)
    radius = (fx**2 + fy**2).sqrt()
    theta = torch.atan2(fy, fx)
    spread = math.pi / GIST_ORIENTATIONS * 0.6
    bank = []
    for f0 in GIST_FREQUENCIES:
        radial = torch.exp(-(torch.log((radius + 1e-9) / f0) ** 2) / (2 * 0.55**2))
        for o in range(GIST_ORIENTATIONS):
            delta = torch.remainder(theta - o * math.pi / GIST_ORIENTATIONS + math.pi, 2 * math.pi)
            bank.append(radial * torch.exp(-((delta - math.pi) ** 2) / (2 * spread**2)))
    return torch.stack(bank)


def layout(lab: torch.Tensor) -> Groups:
    """A 6x6 thumbnail in Lab: where light, dark and colour sit in the frame."""
    import torch
    import torch.nn.functional as F

    scale = torch.tensor([50.0, 30.0, 30.0]).view(1, 3, 1, 1)
    return {"layout": (F.adaptive_avg_pool2d(lab, 6) / scale).flatten(1)}
