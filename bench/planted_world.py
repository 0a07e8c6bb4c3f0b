"""The planted benchmark's procedural world: captioned scenes and artists' styles, in latents.

A *scene* is a layout on the tiny model's 16x16 latent grid: sky and ground split by a
horizon, one subject (a shape per subject word) and the subject's outline. A *style* turns
a layout into a 4-channel latent field: a palette (one latent colour per region), a stroke
texture along an artist-specific latent direction (stripes, hatching, dithering or blotchy
noise), optional dark outlines, brush noise, and composition habits (subject size and
placement). The tiny VAE decoder (a colour map, see tests/probe_models.py) renders the field
as a 32x32 RGB image, so an artist's "works" are exactly what the tiny model could draw.

Everything is a pure function of its seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

LATENT_PX = 16
CHANNELS = 4
Field = npt.NDArray[np.float32]
Texture = Literal["flat", "stripes", "hatch", "dither", "blotch"]
TEXTURES: tuple[Texture, ...] = ("stripes", "hatch", "dither", "blotch", "flat")

# Subjects the base model is trained on, and new ones only benign LoRAs bring.
BASE_SUBJECTS = ("house", "tree", "mountain", "boat", "flowers", "river")
NEW_SUBJECTS = ("cat", "dog", "chair", "bowl", "fruit", "window")
SHAPES = {
    "house": "rect",
    "tree": "disc",
    "mountain": "triangle",
    "boat": "hull",
    "flowers": "dots",
    "river": "band",
    "cat": "ears",
    "dog": "ellipse",
    "chair": "bars",
    "bowl": "bowl",
    "fruit": "pair",
    "window": "grid",
}
SKY, GROUND, SUBJECT, OUTLINE = 0, 1, 2, 3


@dataclass(frozen=True, slots=True)
class Style:
    """How one artist (or the base world) paints a layout."""

    palette: tuple[tuple[float, ...], ...]  # latent colour per region (sky, ground, subject, line)
    texture: Texture
    direction: tuple[float, ...]  # latent direction the texture moves along
    amplitude: float
    frequency: float  # cycles per latent pixel, stripes and hatching
    angle: float
    outline: bool
    brush_noise: float
    subject_scale: float  # share of the grid the subject spans
    subject_x: float  # preferred horizontal centre, 0..1


def neutral_style() -> Style:
    """The base world's look: a soft natural palette, flat, no outlines, centred subjects."""
    return Style(
        palette=(
            (0.2, 0.9, -0.6, 0.4),
            (0.6, -0.5, 0.3, -0.4),
            (-0.5, 0.1, 0.6, 0.2),
            (0, 0, 0, 0),
        ),
        texture="flat",
        direction=(0.5, 0.5, 0.5, 0.5),
        amplitude=0.0,
        frequency=0.0,
        angle=0.0,
        outline=False,
        brush_noise=0.08,
        subject_scale=0.45,
        subject_x=0.5,
    )


def random_style(seed: int) -> Style:
    """A distinctive artist: a vivid palette and a texture drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    palette = rng.normal(0.0, 1.6, (4, CHANNELS))
    direction = rng.normal(size=CHANNELS)
    direction /= np.linalg.norm(direction)
    return Style(
        palette=tuple(tuple(float(v) for v in row) for row in palette),
        texture=TEXTURES[int(rng.integers(len(TEXTURES)))],
        direction=tuple(float(v) for v in direction),
        amplitude=float(rng.uniform(0.8, 1.6)),
        frequency=float(rng.uniform(0.15, 0.45)),
        angle=float(rng.uniform(0, np.pi)),
        outline=bool(rng.random() < 0.5),
        brush_noise=float(rng.uniform(0.05, 0.4)),
        subject_scale=float(rng.uniform(0.3, 0.7)),
        subject_x=float(rng.uniform(0.25, 0.75)),
    )


def layout(subject: str, rng: np.random.Generator, style: Style) -> npt.NDArray[np.intp]:
    """Region index per latent pixel for one scene of ``subject``."""
    n = LATENT_PX
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64)
    horizon = rng.integers(5, 11)
    regions = np.where(yy < horizon, SKY, GROUND).astype(np.intp)
    size = n * style.subject_scale * rng.uniform(0.8, 1.2)
    cx = n * np.clip(style.subject_x + rng.normal(0, 0.08), 0.15, 0.85)
    cy = horizon + rng.uniform(-2, 1)
    mask = _shape(SHAPES[subject], xx - cx, yy - cy, size / 2)
    regions[mask] = SUBJECT
    edge = mask & ~(_shifted_all(mask))
    if style.outline:
        regions[edge] = OUTLINE
    return regions


def _shape(
    kind: str, dx: npt.NDArray[np.float64], dy: npt.NDArray[np.float64], r: float
) -> npt.NDArray[np.bool_]:
    r = max(r, 1.5)
    if kind == "rect":
        return (abs(dx) < r * 0.8) & (dy > -r) & (dy < r * 0.6)
    if kind == "disc":
        return (dx**2 + (dy + r * 0.3) ** 2 < r**2) | ((abs(dx) < 0.8) & (dy >= 0) & (dy < r))
    if kind == "triangle":
        return (dy < r * 0.5) & (abs(dx) < (dy + r * 1.2) * 0.7)
    if kind == "hull":
        return (dy > -r * 0.1) & (dy < r * 0.5) & (abs(dx) < r * (1 - 0.5 * (dy / r)))
    if kind == "dots":
        return (np.sin(dx * 1.3) * np.sin(dy * 1.3) > 0.5) & (dx**2 + dy**2 < (1.5 * r) ** 2)
    if kind == "band":
        return abs(dy - dx * 0.3) < r * 0.35
    if kind == "ears":
        body = dx**2 / 1.4 + dy**2 < r**2
        return body | ((abs(abs(dx) - r * 0.5) < 1.0) & (dy < -r * 0.7) & (dy > -r * 1.4))
    if kind == "ellipse":
        return dx**2 / 2.2 + dy**2 < r**2
    if kind == "bars":
        return ((abs(dx) < r * 0.6) & (abs(dy) < 1)) | (
            (abs(abs(dx) - r * 0.5) < 0.7) & (abs(dy) < r)
        )
    if kind == "bowl":
        return (dx**2 + dy**2 < r**2) & (dy > 0)
    if kind == "pair":
        return ((dx - r * 0.5) ** 2 + dy**2 < (r * 0.5) ** 2) | (
            (dx + r * 0.5) ** 2 + dy**2 < (r * 0.5) ** 2
        )
    # grid
    inside = (abs(dx) < r) & (abs(dy) < r)
    return inside & ((abs(dx) < 0.6) | (abs(dy) < 0.6) | (abs(dx) > r - 1) | (abs(dy) > r - 1))


def _shifted_all(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """Pixels whose four neighbours are all inside ``mask`` (the interior)."""
    padded = np.pad(mask, 1)
    return padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]


def paint(regions: npt.NDArray[np.intp], style: Style, rng: np.random.Generator) -> Field:
    """The latent field ``(CHANNELS, n, n)`` of a layout painted in ``style``."""
    n = regions.shape[0]
    palette = np.asarray(style.palette, dtype=np.float64)
    field: npt.NDArray[np.float64] = palette[regions].transpose(2, 0, 1)
    pattern = _texture(style, n, rng)
    field = field + style.amplitude * pattern[None] * np.asarray(style.direction)[:, None, None]
    field = field + style.brush_noise * rng.normal(size=field.shape)
    return field.astype(np.float32)


def _texture(style: Style, n: int, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    grid: npt.NDArray[np.float64] = np.mgrid[0:n, 0:n].astype(np.float64)
    yy, xx = grid[0], grid[1]
    phase = rng.uniform(0, 2 * np.pi)
    along = xx * np.cos(style.angle) + yy * np.sin(style.angle)
    if style.texture == "stripes":
        stripes: npt.NDArray[np.float64] = np.sign(
            np.sin(2 * np.pi * style.frequency * along + phase)
        )
        return stripes
    if style.texture == "hatch":
        across = -xx * np.sin(style.angle) + yy * np.cos(style.angle)
        waves = np.sin(2 * np.pi * style.frequency * along + phase)
        waves = waves + np.sin(2 * np.pi * style.frequency * across + phase)
        clipped: npt.NDArray[np.float64] = np.clip(waves, -1, 1)
        return clipped
    if style.texture == "dither":
        checker: npt.NDArray[np.float64] = np.where((xx + yy) % 2 == 0, 1.0, -1.0)
        return checker
    if style.texture == "blotch":
        coarse = rng.normal(size=(4, 4))
        blotches: npt.NDArray[np.float64] = np.sign(np.kron(coarse, np.ones((n // 4, n // 4))))
        return blotches
    return np.zeros((n, n))


def scenes(
    style: Style, subjects: tuple[str, ...], count: int, seed: int
) -> tuple[list[str], Field]:
    """``count`` (subject, latent field) pairs in ``style``; subjects cycle in order."""
    rng = np.random.default_rng(seed)
    names = [subjects[i % len(subjects)] for i in range(count)]
    fields = [paint(layout(s, rng, style), style, rng) for s in names]
    return names, np.stack(fields)
