"""Ink put on the backgrounds people send (paper photos, scans, web canvases, pencil,
coloured paper) and encoded as they send it (JPEG or PNG bytes).

The realistic test sets (:mod:`testkit.realistic`, :mod:`testkit.numbers`) put *test* digits
on these sheets; the line reader's training rows (:mod:`trainer.lines`) put *training*
digits on the same ones, so that it learns the ink the service really sees.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from scipy import ndimage


def encode(pixels: np.ndarray, fmt: str, mode: str | None = None, **options) -> bytes:
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode=mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def paper_photo(rng: np.random.Generator, shape: tuple[int, int], ink: np.ndarray) -> np.ndarray:
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


def on_sheet(ink: np.ndarray, rng: np.random.Generator, kind: str) -> bytes:
    """``ink`` (in [0, 1]) on one of the backgrounds people send, encoded as they send it."""
    if kind == "photo":
        return encode(paper_photo(rng, ink.shape, ink), "JPEG", quality=int(rng.integers(60, 92)))
    if kind == "scan":
        level = rng.uniform(228, 250)
        gray = level * (1 - ink) + rng.uniform(10, 50) * ink + rng.normal(0, 2.5, ink.shape)
        return (
            encode(gray, "JPEG", quality=90, mode="L")
            if rng.random() < 0.5
            else encode(gray, "PNG", mode="L")
        )
    if kind == "canvas_white":
        return encode(np.repeat((255 * (1 - ink))[..., None], 3, axis=2), "PNG", mode="RGB")
    if kind == "canvas_transparent":
        rgba = np.zeros((*ink.shape, 4), dtype=np.float32)
        rgba[..., 3] = ink * 255
        return encode(rgba, "PNG", mode="RGBA")
    if kind == "pencil":
        thin = ndimage.grey_erosion(ink, size=(max(2, ink.shape[0] // 45),) * 2)
        return encode(paper_photo(rng, ink.shape, 0.6 * thin), "JPEG", quality=85)
    if kind == "coloured":
        return encode(coloured(rng, ink), "JPEG", quality=int(rng.integers(70, 95)))
    raise ValueError(kind)


SHEETS = ("photo", "scan", "canvas_white", "canvas_transparent", "pencil", "coloured")
PAPERS = {  # paper colours people write on: white, cream, yellow, pink, blue, green, kraft
    "cream": (245, 238, 215), "yellow": (250, 238, 140), "pink": (250, 205, 215),
    "blue": (190, 215, 245), "green": (200, 235, 195), "kraft": (200, 165, 120),
}  # fmt: skip
PENS = {"black": (25, 25, 30), "blue": (25, 45, 150), "red": (170, 30, 35), "green": (20, 90, 40)}


def coloured(rng: np.random.Generator, ink: np.ndarray) -> np.ndarray:
    """Coloured or off-white paper, a coloured pen, light and noise: float RGB 0-255."""
    paper = np.array(PAPERS[rng.choice(list(PAPERS))], dtype=np.float32)
    pen = np.array(PENS[rng.choice(list(PENS))], dtype=np.float32)
    h, w = ink.shape
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    light = 0.85 + 0.15 * (xx * rng.uniform(-1, 1) + yy * rng.uniform(-1, 1))
    rgb = (paper * (1 - ink[..., None]) + pen * ink[..., None]) * light[..., None]
    return rgb + rng.normal(0, 3, (h, w, 1))
