"""Pictures of whole numbers made from MNIST *test* digits and fonts, with a fixed seed.

People photograph numbers (a meter reading, an amount, a year), so the number reader needs
its own evidence: 2 to 8 digits in a row, handwritten (MNIST test digits, each with its own
height, baseline and slant) or printed (DejaVu and STIX fonts shipped with matplotlib), on a
white canvas, a transparent canvas or a paper photo (JPEG), as :mod:`testkit.realistic` makes
single digits. Four families: ``apart`` (clear gaps between neighbours), ``touching`` (every
neighbour touches the next or overlaps it by 1-3 px), ``tilted`` (apart, in a picture taken
4-15 degrees off level, either way) and ``spaced`` (gaps of 0.6-1.5 digit heights). Each
sample carries the true number and the true box of each digit in the upload's pixels. Used by
``tests/core/test_segment.py`` and ``bench/numbers.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from digitcore.preprocess import to_tensor
from trainer.number_lines import handwritten, jitter, lay_out, printed, shear
from trainer.sheets import on_sheet

SEED = 2031
FAMILIES = ("apart", "touching", "tilted", "spaced")
SHEETS = ("canvas_white", "canvas_transparent", "photo")
FONTS = (  # fonts the model reads every digit of (checked one by one)
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSansMono.ttf",
    "DejaVuSerif.ttf", "STIXGeneral.ttf", "STIXGeneralBol.ttf",
)  # fmt: skip
PRINTED_SHARE = 0.25


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
    gaps = {"touching": _touching_gap, "spaced": _spaced_gap}.get(family, _apart_gap)
    rng = np.random.default_rng([SEED, FAMILIES.index(family)])
    for index in range(count):
        data, number, boxes = _sample(rng, images, labels, gaps, family == "tilted")
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


def _spaced_gap(rng: np.random.Generator, height: int) -> int:
    return round(height * rng.uniform(0.6, 1.5))


def _sample(rng, images, labels, gap: Callable[[np.random.Generator, int], int], tilted=False):
    """One number: its glyphs laid out left to right (``tilted``: the row then turned), then
    put on a sheet and encoded."""
    length = int(rng.integers(2, 9))
    height = int(rng.integers(36, 110))
    slant = np.tan(np.radians(rng.uniform(-10, 20)))
    if rng.random() < PRINTED_SHARE:
        font = FONTS[int(rng.integers(len(FONTS)))]
        number = "".join(str(d) for d in rng.integers(0, 10, length))
        glyphs = [shear(printed(font, height, d), slant) for d in number]
        drops = [int(rng.integers(-1, 2)) for _ in number]
    else:
        picks = rng.choice(len(labels), size=length, replace=False)
        number = "".join(str(int(labels[i])) for i in picks)
        glyphs = [
            shear(handwritten(images[i], height * rng.uniform(0.85, 1.15)), slant + jitter(rng))
            for i in picks
        ]
        drops = [round(height * rng.uniform(-0.08, 0.08)) for _ in picks]
    gaps = [gap(rng, height) for _ in glyphs[1:]]
    margins = tuple(int(rng.integers(height // 3, 3 * height // 2)) for _ in range(4))
    angle = rng.uniform(4, 15) * rng.choice([-1, 1]) if tilted else 0.0
    ink, boxes = lay_out(glyphs, gaps, drops, margins, angle)
    data = on_sheet(ink, rng, SHEETS[int(rng.integers(len(SHEETS)))])
    return data, number, boxes
