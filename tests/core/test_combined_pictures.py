"""Pictures drawn by a generator of their own, combining at random the ways pictures differ.

The realistic sets (:mod:`testkit.realistic`) each vary a few things; someone else's sets of
the same kinds of pictures combine them otherwise. Here every MNIST test digit gets its own
draw of: size (24-320 px high), stroke weight, margin (none to four times its size), paper
(white, cream, grey, yellow, blue, dark grey, navy) and a pen that shows on it, light falling
off across it, sensor noise, blur, a turn of up to 12 degrees on a canvas of the paper's
colour, grey or colour, PNG or JPEG (quality 30-95). In process, the default model.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter
from scipy import ndimage

from digitcore.checkpoint import load_model
from digitcore.preprocess import preprocess

PAPERS = [(255, 255, 255), (245, 240, 225), (220, 220, 215), (255, 250, 200), (200, 225, 255)]
DARK_PAPERS = [(60, 60, 60), (20, 30, 60)]
PENS = [(20, 20, 20), (30, 40, 140), (160, 20, 20), (90, 90, 90), (0, 100, 0)]
LIGHT_PENS = [(250, 250, 250), (240, 230, 120), (120, 220, 255)]
MARGINS = {"tight": (0, 0.08), "small": (0.08, 0.3), "medium": (0.3, 1.0), "large": (1.0, 4.0)}


def combined(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """One MNIST ``digit`` (uint8, white on black) as a picture of a random combination."""
    ink = digit.astype(np.float32) / 255
    rows, cols = np.nonzero(ink > 0.05)
    ink = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    height = int(rng.choice([24, 40, 80, 160, 320]))
    width = max(2, int(ink.shape[1] * height / ink.shape[0]))
    strokes = Image.fromarray((ink * 255).astype(np.uint8)).resize((width, height), Image.BICUBIC)
    ink = np.asarray(strokes, dtype=np.float32) / 255
    if rng.random() < 0.3:
        weight = max(1, int(height / 40 * rng.uniform(0.5, 2)))
        ink = ndimage.grey_dilation(ink, size=(weight, weight))
    low, high = MARGINS[str(rng.choice(list(MARGINS)))]
    top, bottom, left, right = (rng.uniform(0.3, 1.7, 4) * rng.uniform(low, high) * height).astype(
        int
    )
    alpha = np.pad(np.clip(ink * rng.uniform(1, 1.6), 0, 1), ((top, bottom), (left, right)))
    dark = rng.random() < 2 / 7
    paper = np.array((DARK_PAPERS if dark else PAPERS)[rng.integers(2 if dark else 5)], float)
    pen = np.array((LIGHT_PENS if dark else PENS)[rng.integers(3 if dark else 5)], float)
    pixels = paper * (1 - alpha[..., None]) + pen * alpha[..., None]
    if rng.random() < 0.5:  # the light falls off across the sheet
        across = np.linspace(rng.uniform(0.6, 1), rng.uniform(0.8, 1.1), pixels.shape[1])
        down = np.linspace(rng.uniform(0.7, 1), 1, pixels.shape[0])
        pixels = pixels * (down[:, None] * across[None, :])[..., None]
    if rng.random() < 0.5:
        pixels = pixels + rng.normal(0, rng.uniform(2, 15), pixels.shape)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    if rng.random() < 0.3:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2) * height / 80))
    if rng.random() < 0.3:
        colour = tuple(int(v) for v in paper)
        image = image.rotate(rng.uniform(-12, 12), Image.BICUBIC, expand=True, fillcolor=colour)
    if rng.random() < 0.3:
        image = image.convert("L")
    buffer = io.BytesIO()
    if rng.random() < 0.5:
        image.save(buffer, "PNG")
    else:
        image.save(buffer, "JPEG", quality=int(rng.integers(30, 95)))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def model(default_model_path):
    torch.set_num_threads(1)
    loaded, _ = load_model(default_model_path)
    return loaded


def test_random_combinations_of_the_ways_pictures_differ_are_read(model, mnist_test):
    """Light pens on dark paper cropped close (taken for a shadow's lit paper) and pictures
    turned on their paper's colour (its grain joining the canvas) were most of the misses:
    of these 400, 384 read right before, 394 then, 395 once mottled paper's blotches were no
    longer taken for ink."""
    images, labels = (t.numpy() for t in mnist_test)
    rng = np.random.default_rng(2026)
    picks = rng.choice(len(labels), 400, replace=False)
    outcomes = preprocess([combined(images[i], rng) for i in picks])
    assert sum(isinstance(o, Exception) for o in outcomes) <= 2
    pairs = zip(outcomes, picks, strict=True)
    read = [(o, int(labels[i])) for o, i in pairs if not isinstance(o, Exception)]
    with torch.inference_mode():
        digits = model(torch.stack([o.tensor for o, _ in read])).argmax(1).tolist()
    assert sum(d == label for d, (_, label) in zip(digits, read, strict=True)) >= 390
