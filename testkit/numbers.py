"""Pictures of whole numbers made from MNIST *test* digits and fonts, with a fixed seed.

People photograph numbers (a meter reading, an amount, a year), so the number reader needs
its own evidence: 2 to 8 digits in a row, handwritten (MNIST test digits, each with its own
height, baseline and slant) or printed (DejaVu and STIX fonts shipped with matplotlib), on a
white canvas, a transparent canvas or a paper photo (JPEG), as :mod:`testkit.realistic` makes
single digits. Two families: ``apart`` (clear gaps between neighbours) and ``touching`` (every
neighbour touches the next or overlaps it by 1-3 px). Each sample carries the true number and
the true box of each digit in the upload's pixels. Used by ``tests/core/test_segment.py`` and
``bench/numbers.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import matplotlib
import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from digitcore.preprocess import to_tensor
from testkit.realistic import _ink_box, _on_sheet, _upscale

SEED = 2031
FAMILIES = ("apart", "touching")
SHEETS = ("canvas_white", "canvas_transparent", "photo")
FONTS = (  # fonts the model reads every digit of (checked one by one)
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSansMono.ttf",
    "DejaVuSerif.ttf", "STIXGeneral.ttf", "STIXGeneralBol.ttf",
)  # fmt: skip
PRINTED_SHARE = 0.25
INK = 0.5  # where a glyph counts as ink when measuring gaps


@dataclass(frozen=True)
class NumberSample:
    data: bytes
    number: str
    boxes: tuple[tuple[int, int, int, int], ...]  # each digit's (x0, y0, x1, y1), upload pixels
    name: str


def generate(
    family: str, images: np.ndarray, labels: np.ndarray, count: int = 300
) -> Iterator[NumberSample]:
    """The ``family`` set: the same ``count`` samples every run (a prefix of any longer run)."""
    gaps = {"apart": _apart_gap, "touching": _touching_gap}[family]
    rng = np.random.default_rng([SEED, FAMILIES.index(family)])
    for index in range(count):
        data, number, boxes = _sample(rng, images, labels, gaps)
        yield NumberSample(data, number, boxes, f"{family}-{index}")


def model_scorer(model: torch.nn.Module) -> Callable[[list[np.ndarray]], np.ndarray]:
    """A :data:`digitcore.segment.Scorer` for a loaded model (one forward pass per call)."""

    def score(forms: list[np.ndarray]) -> np.ndarray:
        batch = torch.stack([to_tensor(form) for form in forms])
        with torch.inference_mode():
            return model(batch).exp().numpy()

    return score


def _apart_gap(rng: np.random.Generator, height: int) -> int:
    return round(height * rng.uniform(0.1, 0.5))


def _touching_gap(rng: np.random.Generator, height: int) -> int:
    return -int(rng.integers(0, 4))  # 0: the inks touch; -k: they overlap by k px


def _sample(rng, images, labels, gap: Callable[[np.random.Generator, int], int]):
    """One number: its glyphs laid out left to right, then put on a sheet and encoded."""
    length = int(rng.integers(2, 9))
    height = int(rng.integers(36, 110))
    slant = np.tan(np.radians(rng.uniform(-10, 20)))
    if rng.random() < PRINTED_SHARE:
        font = FONTS[int(rng.integers(len(FONTS)))]
        number = "".join(str(d) for d in rng.integers(0, 10, length))
        glyphs = [_shear(printed(font, height, d), slant) for d in number]
        drops = [int(rng.integers(-1, 2)) for _ in number]
    else:
        picks = rng.choice(len(labels), size=length, replace=False)
        number = "".join(str(int(labels[i])) for i in picks)
        glyphs = [
            _shear(handwritten(images[i], height * rng.uniform(0.85, 1.15)), slant + _jitter(rng))
            for i in picks
        ]
        drops = [round(height * rng.uniform(-0.08, 0.08)) for _ in picks]
    gaps = [gap(rng, height) for _ in glyphs[1:]]
    margins = tuple(int(rng.integers(height // 3, 3 * height // 2)) for _ in range(4))
    ink, boxes = lay_out(glyphs, gaps, drops, margins)
    data = _on_sheet(ink, rng, SHEETS[int(rng.integers(len(SHEETS)))])
    return data, number, boxes


def _jitter(rng: np.random.Generator) -> float:
    return float(np.tan(np.radians(rng.uniform(-4, 4))))


def handwritten(digit: np.ndarray, height: float) -> np.ndarray:
    """An MNIST digit as ink whose 20 px box becomes ``height`` px, cropped to the ink."""
    return _crop(_upscale(digit, max(28, round(28 * height / 20))))


@cache
def _font(name: str, height: int) -> ImageFont.FreeTypeFont:
    """``name`` at the size whose digits are ``height`` px tall."""
    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name
    probe = ImageFont.truetype(str(path), 100)
    top, bottom = probe.getbbox("0")[1], probe.getbbox("0")[3]
    return ImageFont.truetype(str(path), max(8, round(100 * height / (bottom - top))))


def printed(font: str, height: int, digit: str) -> np.ndarray:
    """One printed digit as ink in [0, 1], cropped to the ink."""
    face = _font(font, height)
    right, bottom = face.getbbox(digit)[2:]
    image = Image.new("L", (right + 4, bottom + 4), 0)
    ImageDraw.Draw(image).text((2, 2), digit, font=face, fill=255)
    return _crop(np.asarray(image, dtype=np.float32) / 255)


def _crop(ink: np.ndarray) -> np.ndarray:
    top, bottom, left, right = _ink_box(ink, 0.0)
    return ink[top:bottom, left:right]


def _shear(ink: np.ndarray, slant: float) -> np.ndarray:
    """Lean the ink: the top moves ``slant`` px right per px of height (left when negative)."""
    height, width = ink.shape
    spread = int(np.ceil(abs(slant) * (height - 1))) + 1
    offset = -max(slant, 0.0) * (height - 1)  # input column = output column + slant*row + offset
    matrix = np.array([[1.0, 0.0], [slant, 1.0]])
    leaned = ndimage.affine_transform(
        ink, matrix, offset=(0.0, offset), output_shape=(height, width + spread), order=1
    )
    return _crop(np.clip(leaned, 0.0, 1.0))


def lay_out(
    glyphs: list[np.ndarray],
    gaps: list[int],
    drops: list[int] | None = None,
    margins: tuple[int, int, int, int] = (20, 20, 20, 20),
) -> tuple[np.ndarray, tuple[tuple[int, int, int, int], ...]]:
    """Glyphs (ink in [0, 1]) in a row on one canvas, and the box of each.

    Each glyph's bottom sits on a baseline, lowered by its ``drops`` px; each is ``gaps`` px
    of ink gap after the one before, measured row by row (0: the inks touch; negative: they
    overlap by that much). ``margins`` (top, bottom, left, right) surround the ink.
    """
    layers = _layers(glyphs, gaps, drops or [0] * len(glyphs), margins)
    return layers.max(axis=0), tuple(_box(layer) for layer in layers)


def _layers(glyphs, gaps, drops, margins) -> np.ndarray:
    """Each glyph on its own layer of the canvas, laid out as :func:`lay_out` says."""
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


def _box(layer: np.ndarray) -> tuple[int, int, int, int]:
    top, bottom, left, right = _ink_box(layer)
    return left, top, right, bottom
