"""Realistic uploads made from MNIST *test* digits, with a fixed seed: the evidence sets.

Each set imitates one way people really send digits (SPEC §4): ink on paper photographed,
transparent and white web canvases, thick marker, thin pencil, non-square frames and a
phone-sized photo with an EXIF rotation. Every image is encoded as the file a client would
upload (PNG or JPEG bytes). Used by the tests (through the real HTTP API) and by
``bench/wild.py`` (naive pipeline vs ours).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

SEED = 2024


@dataclass(frozen=True)
class Sample:
    data: bytes
    label: int
    name: str


def _upscale(digit: np.ndarray, size: int) -> np.ndarray:
    """A 28x28 uint8 MNIST digit as a crisp, smooth ink mask of ``size`` x ``size`` in [0, 1]."""
    big = Image.fromarray(digit).resize((size, size), Image.Resampling.BICUBIC)
    values = np.asarray(big, dtype=np.float32) / 255
    return np.clip((values - 0.3) * 3.0, 0.0, 1.0)


def _encode(pixels: np.ndarray, fmt: str, mode: str | None = None, **options) -> bytes:
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode=mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _paste(
    canvas: np.ndarray, patch: np.ndarray, rng: np.random.Generator, margin: int = 0
) -> None:
    """Put ``patch`` at a random place of ``canvas``, at least ``margin`` px from its edges."""
    h, w = patch.shape
    top = int(rng.integers(margin, canvas.shape[0] - h - margin + 1))
    left = int(rng.integers(margin, canvas.shape[1] - w - margin + 1))
    region = canvas[top : top + h, left : left + w]
    np.maximum(region, patch, out=region)


def _paper(rng: np.random.Generator, shape: tuple[int, int], ink: np.ndarray) -> np.ndarray:
    """Dark ink on lit paper: lighting gradient, texture, sensor noise; float RGB 0-255."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    angle = rng.uniform(0, 2 * np.pi)
    light = 0.72 + 0.22 * (np.cos(angle) * xx + np.sin(angle) * yy) / 1.4
    texture = ndimage.gaussian_filter(rng.normal(0, 0.04, shape), 1.5)
    paper = light + texture
    ink_level = rng.uniform(0.08, 0.3)
    gray = paper * (1 - ink) + ink_level * ink + rng.normal(0, 0.02, shape)
    tint = np.array([1.0, rng.uniform(0.95, 1.0), rng.uniform(0.85, 0.97)])
    return gray[..., None] * tint * 255


def photo(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """Ink on paper, photographed: off-centre, small tilt, uneven light, noise, JPEG."""
    size = int(rng.integers(120, 260))
    ink = ndimage.rotate(_upscale(digit, size), rng.uniform(-6, 6), reshape=True, order=1)
    h, w = 480, 640
    canvas = np.zeros((h, w), dtype=np.float32)
    _paste(canvas, ink, rng)
    return _encode(_paper(rng, (h, w), canvas), "JPEG", quality=int(rng.integers(60, 90)))


def canvas_transparent(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A web canvas export: transparent background, black strokes, the ink in alpha."""
    ink = _upscale(digit, 280)
    rgba = np.zeros((280, 280, 4), dtype=np.float32)
    rgba[..., 3] = ink * 255
    return _encode(rgba, "PNG", mode="RGBA")


def canvas_white(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A white canvas with a smallish digit drawn off-centre."""
    size = int(rng.integers(90, 200))
    canvas = np.zeros((400, 400), dtype=np.float32)
    _paste(canvas, _upscale(digit, size), rng)
    gray = 255 * (1 - canvas)
    return _encode(np.repeat(gray[..., None], 3, axis=2), "PNG", mode="RGB")


def marker(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """Thick felt marker on white paper."""
    ink = ndimage.grey_dilation(_upscale(digit, 280), size=(int(rng.integers(14, 22)),) * 2)
    canvas = np.zeros((360, 360), dtype=np.float32)
    _paste(canvas, ink, rng, margin=20)
    gray = 250 * (1 - canvas) + 15 * canvas
    return _encode(gray, "PNG", mode="L")


def pencil(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """Thin grey pencil on textured paper, scanned (JPEG)."""
    ink = ndimage.grey_erosion(_upscale(digit, 300), size=(int(rng.integers(7, 11)),) * 2)
    ink = 0.6 * ink
    canvas = np.zeros((380, 380), dtype=np.float32)
    _paste(canvas, ink, rng, margin=20)
    return _encode(_paper(rng, canvas.shape, canvas), "JPEG", quality=85)


def non_square(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A wide or tall frame (a strip of a form) with the digit somewhere in it."""
    h, w = (200, 700) if rng.random() < 0.5 else (640, 220)
    size = int(rng.integers(110, 180))
    canvas = np.zeros((h, w), dtype=np.float32)
    _paste(canvas, _upscale(digit, size), rng)
    return _encode(_paper(rng, (h, w), canvas), "PNG", mode="RGB")


def phone(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A 3000x4000 phone photo, stored rotated with an EXIF orientation tag."""
    size = int(rng.integers(900, 1500))
    ink = _upscale(digit, size)
    h, w = 4000, 3000
    canvas = np.zeros((h, w), dtype=np.float32)
    _paste(canvas, ink, rng, margin=200)
    rgb = _paper(rng, (h, w), canvas)
    stored = np.rot90(rgb, k=1)  # the sensor's orientation; EXIF 6 turns it back upright
    exif = Image.Exif()
    exif[0x0112] = 6
    return _encode(np.ascontiguousarray(stored), "JPEG", quality=85, exif=exif.tobytes())


SETS: dict[str, tuple[Callable[[np.ndarray, np.random.Generator], bytes], int]] = {
    "photo": (photo, 300),
    "canvas_transparent": (canvas_transparent, 300),
    "canvas_white": (canvas_white, 300),
    "marker": (marker, 300),
    "pencil": (pencil, 300),
    "non_square": (non_square, 300),
    "phone": (phone, 60),
}


def generate(
    name: str, images: np.ndarray, labels: np.ndarray, count: int | None = None
) -> Iterator[Sample]:
    """The ``name`` set: ``count`` samples from the MNIST test images, same every run."""
    make, default_count = SETS[name]
    rng = np.random.default_rng([SEED, list(SETS).index(name)])
    picks = rng.choice(len(labels), size=count or default_count, replace=False)
    for index in picks:
        yield Sample(make(images[index], rng), int(labels[index]), f"{name}-{index}")
