"""Digits laid out in a row as ink: the drawing shared by the trainer and the test sets.

The number reader (:mod:`digitcore.segment`) learns what the pieces of a written number look
like from rows of *training* digits (:mod:`trainer.number_pieces`); the number sets that
judge it (:mod:`testkit.numbers`) lay out *test* digits the same way. Both need the same
strokes: an MNIST digit enlarged to a smooth ink mask, a printed glyph from a font matplotlib
ships, a lean, and a row whose neighbours stand a given gap apart, measured row by row (0:
the inks touch; negative: they overlap), with each glyph kept on its own layer so that every
pixel's digit is known.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

INK = 0.5  # where a glyph counts as ink when measuring gaps
FONT_FOLDER = Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def digit_ink(digit: np.ndarray, size: int) -> np.ndarray:
    """A 28x28 uint8 MNIST digit as a crisp, smooth ink mask of ``size`` x ``size`` in [0, 1]."""
    big = Image.fromarray(digit).resize((size, size), Image.Resampling.BICUBIC)
    values = np.asarray(big, dtype=np.float32) / 255
    return np.clip((values - 0.3) * 3.0, 0.0, 1.0)


def ink_box(ink: np.ndarray, level: float = 0.15) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of where ``ink`` exceeds ``level``, bottom/right exclusive."""
    rows, cols = np.nonzero(ink > level)
    return int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1


def handwritten(digit: np.ndarray, height: float) -> np.ndarray:
    """An MNIST digit as ink whose 20 px box becomes ``height`` px, cropped to the ink."""
    return crop_to_ink(digit_ink(digit, max(28, round(28 * height / 20))))


@cache
def _font(name: str, height: int) -> ImageFont.FreeTypeFont:
    """``name`` at the size whose digits are ``height`` px tall."""
    path = FONT_FOLDER / name
    probe = ImageFont.truetype(str(path), 100)
    top, bottom = probe.getbbox("0")[1], probe.getbbox("0")[3]
    return ImageFont.truetype(str(path), max(8, round(100 * height / (bottom - top))))


def printed(font: str, height: int, digit: str) -> np.ndarray:
    """One printed digit as ink in [0, 1], cropped to the ink."""
    face = _font(font, height)
    right, bottom = face.getbbox(digit)[2:]
    image = Image.new("L", (right + 4, bottom + 4), 0)
    ImageDraw.Draw(image).text((2, 2), digit, font=face, fill=255)
    return crop_to_ink(np.asarray(image, dtype=np.float32) / 255)


def crop_to_ink(ink: np.ndarray) -> np.ndarray:
    top, bottom, left, right = ink_box(ink, 0.0)
    return ink[top:bottom, left:right]


def shear(ink: np.ndarray, slant: float) -> np.ndarray:
    """Lean the ink: the top moves ``slant`` px right per px of height (left when negative)."""
    height, width = ink.shape
    spread = int(np.ceil(abs(slant) * (height - 1))) + 1
    offset = -max(slant, 0.0) * (height - 1)  # input column = output column + slant*row + offset
    matrix = np.array([[1.0, 0.0], [slant, 1.0]])
    leaned = ndimage.affine_transform(
        ink, matrix, offset=(0.0, offset), output_shape=(height, width + spread), order=1
    )
    return crop_to_ink(np.clip(leaned, 0.0, 1.0))


def jitter(rng: np.random.Generator) -> float:
    """A handwritten digit's own lean on top of its row's: up to 4 degrees either way."""
    return float(np.tan(np.radians(rng.uniform(-4, 4))))


def random_row(
    rng: np.random.Generator,
    images: np.ndarray,
    labels: np.ndarray,
    fonts: tuple[str, ...],
    lengths: tuple[int, int],
    heights: tuple[int, int],
    touching_share: float,
    printed_share: float,
) -> tuple[list[np.ndarray], list[int], list[int], list[int]]:
    """A random row to lay out: glyphs, gaps, drops and the digits. ``lengths`` digits (at
    least, at most), ``heights`` px tall (at least, below), leaning alike; printed in one of
    ``fonts`` (``printed_share`` of the rows) or handwritten from ``images`` (uint8 MNIST
    digits) with their own size, lean and baseline; touching or overlapping by up to 3 px
    (``touching_share`` of the rows), else apart by 0.05-0.5 of the height."""
    length = int(rng.integers(lengths[0], lengths[1] + 1))
    height = int(rng.integers(*heights))
    slant = np.tan(np.radians(rng.uniform(-10, 20)))
    if rng.random() < printed_share:
        font = fonts[int(rng.integers(len(fonts)))]
        number = [int(d) for d in rng.integers(0, 10, length)]
        glyphs = [shear(printed(font, height, str(d)), slant) for d in number]
        drops = [int(rng.integers(-1, 2)) for _ in number]
    else:
        picks = rng.choice(len(labels), size=length, replace=False)
        number = [int(labels[i]) for i in picks]
        glyphs = [
            shear(handwritten(images[i], height * rng.uniform(0.85, 1.15)), slant + jitter(rng))
            for i in picks
        ]
        drops = [round(height * rng.uniform(-0.08, 0.08)) for _ in picks]
    if rng.random() < touching_share:  # 0: the inks touch; -k: they overlap by k px
        gaps = [-int(rng.integers(0, 4)) for _ in glyphs[1:]]
    else:
        gaps = [round(height * rng.uniform(0.05, 0.5)) for _ in glyphs[1:]]
    return glyphs, gaps, drops, number


def lay_out(
    glyphs: list[np.ndarray],
    gaps: list[int],
    drops: list[int] | None = None,
    margins: tuple[int, int, int, int] = (20, 20, 20, 20),
    angle: float = 0.0,
) -> tuple[np.ndarray, tuple[tuple[int, int, int, int], ...]]:
    """Glyphs (ink in [0, 1]) in a row on one canvas, and the box (x0, y0, x1, y1) of each.

    Each glyph's bottom sits on a baseline, lowered by its ``drops`` px; each is ``gaps`` px
    of ink gap after the one before, measured row by row (0: the inks touch; negative: they
    overlap by that much). ``margins`` (top, bottom, left, right) surround the ink. A nonzero
    ``angle`` turns the row that many degrees counter-clockwise (a photo taken askew), the
    canvas grown to hold it.
    """
    layers = glyph_layers(glyphs, gaps, drops, margins)
    if angle:
        layers = np.stack([ndimage.rotate(layer, angle, order=1) for layer in layers])
        layers = np.clip(layers, 0, 1)
    return layers.max(axis=0), tuple(glyph_box(layer) for layer in layers)


def glyph_layers(
    glyphs: list[np.ndarray],
    gaps: list[int],
    drops: list[int] | None = None,
    margins: tuple[int, int, int, int] = (20, 20, 20, 20),
) -> np.ndarray:
    """Each glyph on its own layer of the canvas (glyphs x rows x columns), laid out as
    :func:`lay_out` says: the row's ink is the layers' maximum."""
    drops = drops or [0] * len(glyphs)
    top_margin, bottom_margin, left_margin, right_margin = margins
    tallest = max(g.shape[0] + abs(d) for g, d in zip(glyphs, drops, strict=True))
    rows = top_margin + tallest + bottom_margin
    baseline = top_margin + tallest - max(0, max(drops))
    width = left_margin + sum(g.shape[1] for g in glyphs) + sum(max(0, g) for g in gaps)
    layers = np.zeros((len(glyphs), rows, width + right_margin), dtype=np.float32)
    reach = np.full(rows, -(10**6))  # the rightmost ink column so far, per row
    right = left_margin  # the rightmost column of the glyph before
    for index, (glyph, drop) in enumerate(zip(glyphs, drops, strict=True)):
        top = baseline + drop - glyph.shape[0]
        inked = glyph >= INK
        first = np.where(inked.any(axis=1), inked.argmax(axis=1), 10**6)
        left = left_margin
        if index:
            closest = int(np.max(reach[top : top + glyph.shape[0]] - first))
            left = max(closest if closest > -(10**5) else right, 0) + 1 + gaps[index - 1]
        layers[index, top : top + glyph.shape[0], left : left + glyph.shape[1]] = glyph
        right = left + glyph.shape[1] - 1
        last = np.where(inked.any(axis=1), glyph.shape[1] - 1 - inked[:, ::-1].argmax(axis=1), -1)
        ends = np.where(last >= 0, left + last, -(10**6))
        reach[top : top + glyph.shape[0]] = np.maximum(reach[top : top + glyph.shape[0]], ends)
    used = int(np.nonzero(layers.max(axis=(0, 1)) > 0)[0].max()) + 1 + right_margin
    return layers[:, :, :used]


def glyph_box(layer: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the ink on one glyph's layer, x1 and y1 exclusive."""
    top, bottom, left, right = ink_box(layer)
    return left, top, right, bottom
