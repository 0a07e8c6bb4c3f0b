"""GramEmbedder (the built-in style embedder) and ArtistGallery."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
from PIL import Image, ImageDraw

from detectors.errors import InputError
from detectors.style.artists import ArtistGallery
from detectors.style.base import StyleEmbedder
from detectors.style.gram import GramEmbedder

SIZE_PX = 96


@pytest.fixture(scope="module")
def embedder() -> GramEmbedder:
    return GramEmbedder()


def outlined_warm(seed: int) -> Image.Image:
    """'Artist A': flat warm fills inside thick dark outlines."""
    rng = random.Random(seed)
    img = Image.new("RGB", (SIZE_PX, SIZE_PX), (rng.randint(200, 240), 190, 150))
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randint(3, 6)):
        x, y = rng.randint(-10, SIZE_PX - 20), rng.randint(-10, SIZE_PX - 20)
        box = (x, y, x + rng.randint(20, 60), y + rng.randint(20, 60))
        fill = (rng.randint(180, 255), rng.randint(60, 140), rng.randint(0, 60))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape(box, fill=fill, outline=(20, 10, 5), width=5)
    return img


def cool_pointillist(seed: int) -> Image.Image:
    """'Artist B': a light ground covered in small cool dots, shapes only hinted at."""
    rng = random.Random(seed)
    np_rng = np.random.default_rng(seed)
    img = Image.new("RGB", (SIZE_PX, SIZE_PX), (225, 235, 240))
    draw = ImageDraw.Draw(img)
    cx, cy, r = rng.randint(20, 76), rng.randint(20, 76), rng.randint(15, 40)
    for x, y in np_rng.integers(0, SIZE_PX, size=(900, 2)).tolist():
        inside = (x - cx) ** 2 + (y - cy) ** 2 < r * r
        base = (40, 90, 170) if inside else (90, 170, 160)
        colour = tuple(min(255, max(0, c + rng.randint(-40, 40))) for c in base)
        draw.ellipse((x - 1, y - 1, x + 1, y + 1), fill=colour)
    return img


def jpeg(img: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return decoded.convert("RGB")


def test_conforms_to_port(embedder):
    port: StyleEmbedder = embedder
    assert isinstance(port, StyleEmbedder)
    assert port.name == "gram-v1"


def test_shape_dtype_and_unit_rows(embedder):
    vectors = embedder.embed([outlined_warm(1), cool_pointillist(2), Image.new("L", (40, 70))])
    assert vectors.dtype == np.float32
    assert vectors.shape == (3, embedder.dim)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.isfinite(vectors).all()


def test_no_images_gives_empty_matrix(embedder):
    assert embedder.embed([]).shape == (0, embedder.dim)


def test_deterministic_bit_for_bit(embedder):
    images = [outlined_warm(3), cool_pointillist(4)]
    first = embedder.embed(images)
    assert np.array_equal(first, embedder.embed(images))
    assert np.array_equal(first, GramEmbedder().embed(images))


def test_vector_does_not_depend_on_batch_mates(embedder):
    alone = embedder.embed([outlined_warm(5)])
    together = embedder.embed([cool_pointillist(6), outlined_warm(5)])
    np.testing.assert_allclose(alone[0], together[1], atol=1e-6)


@pytest.mark.parametrize(
    "distort",
    [
        lambda img: jpeg(img, 70),
        lambda img: img.resize((int(SIZE_PX * 0.9),) * 2, Image.Resampling.BICUBIC),
    ],
    ids=["jpeg-q70", "rescale-0.9"],
)
def test_distorted_image_stays_nearest_to_itself(embedder, distort):
    originals = [outlined_warm(s) for s in range(10, 14)] + [
        cool_pointillist(s) for s in range(20, 24)
    ]
    base = embedder.embed(originals)
    distorted = embedder.embed([distort(img) for img in originals])
    assert ((distorted @ base.T).argmax(1) == np.arange(len(originals))).all()


def test_gallery_attributes_held_out_synthetic_styles(embedder):
    references = {
        "warm-outlines": embedder.embed([outlined_warm(s) for s in range(100, 106)]),
        "cool-dots": embedder.embed([cool_pointillist(s) for s in range(200, 206)]),
    }
    gallery = ArtistGallery.from_references(references)
    for artist, make in (("warm-outlines", outlined_warm), ("cool-dots", cool_pointillist)):
        for seed in range(300, 304):
            assert gallery.nearest(embedder.embed([make(seed)]))[0][0] == artist


def test_gallery_centroid_rule_on_toy_vectors():
    gallery = ArtistGallery.from_references(
        {"a": [[1.0, 0.0, 0.0], [0.8, 0.6, 0.0]], "b": [[0.0, 0.0, 1.0]]}
    )
    ranked = gallery.nearest([[1.0, 0.2, 0.0]], k=2)
    assert [artist for artist, _ in ranked] == ["a", "b"]
    centroid = np.array([0.9, 0.3, 0.0]) / np.linalg.norm([0.9, 0.3, 0.0])
    query = np.array([1.0, 0.2, 0.0]) / np.linalg.norm([1.0, 0.2, 0.0])
    assert ranked[0][1] == pytest.approx(float(centroid @ query))
    assert ranked[1][1] == pytest.approx(0.0)
    assert len(gallery.nearest([[0.0, 0.0, 1.0]], k=5)) == 2


def test_gallery_top_m_rule_and_query_sets():
    refs = {"a": [[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]], "b": [[0.6, 0.8]]}
    # top-1 of "a" is an exact match; its centroid is further away than "b".
    artist, similarity = ArtistGallery.from_references(refs, rule="top_m", m=1).nearest(
        [[1.0, 0.0]]
    )[0]
    assert artist == "a"
    assert similarity == pytest.approx(1.0)
    assert ArtistGallery.from_references(refs).nearest([[1.0, 0.0]])[0][0] == "b"
    scores = ArtistGallery.from_references(refs, rule="top_m", m=2).scores([[1, 0], [0, 1]])
    np.testing.assert_allclose(scores, [[0.5, 0.6], [1.0, 0.8]])
    # A set of queries is scored by its mean similarity.
    both = ArtistGallery.from_references(refs).nearest([[1.0, 0.0], [0.0, 1.0]], k=2)
    assert [artist for artist, _ in both] == ["b", "a"]


@pytest.mark.parametrize(
    "references",
    [{}, {"a": np.zeros((0, 3))}, {"a": [[1.0, 0.0]], "b": [[1.0, 0.0, 0.0]]}],
    ids=["no-artists", "no-vectors", "mixed-dims"],
)
def test_gallery_rejects_bad_references(references):
    with pytest.raises(InputError):
        ArtistGallery.from_references(references)
