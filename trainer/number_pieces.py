"""Pieces of written numbers: what the number reader asks the classifier about.

To read a number, :mod:`digitcore.segment` cuts the ink at candidate places and asks the
classifier about every run between two cuts; the tiling read best wins. Those runs are whole
digits, but also halves of digits, a digit with a slice of its neighbour, and two touching
digits as one, and a classifier that has only seen whole digits reads many of these with
confidence (a merged "71" as a 7, half a 4 as a 1).

So training sees them. Rows of *training* digits (handwritten, and printed in the training
fonts), touching or apart, go through the reader's own candidate search
(:func:`digitcore.segment.candidates`); each run is labelled by whose ink it holds. Mostly
one digit's ink (:data:`SHARE` of the run and :data:`COVER` of the digit) is that digit, read
in context: it joins the training digits. A piece or a mix (below :data:`PIECE` of either)
is not a digit: it joins the non-digits of outlier exposure. Runs in between are left out.
:func:`load_pieces` caches a set in ``data/pieces-<seed>-<count>.pt``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from digitcore.errors import ImageInputError
from digitcore.segment import candidates
from trainer.cache import cached
from trainer.number_lines import glyph_layers, random_row
from trainer.outliers import TRAINING_FONTS, fingerprint

log = logging.getLogger("trainer.number_pieces")

CACHE_VERSION = 4  # bump whenever a change here or in the reader's cuts changes the pieces
DIGITS = (2, 6)  # digits in a row: at least, at most
HEIGHT = (28, 64)  # a row's digit height in pixels: at least, below
TOUCHING_SHARE = 0.6  # rows whose neighbours touch or overlap (the rest stand apart)
PRINTED_SHARE = 0.25  # rows printed in a training font (the rest handwritten)
PIECES_PER_ROW = 20  # non-digit runs kept from each row, at random
SHARE = 0.8  # a run is a digit when that digit's ink is at least this share of its ink
COVER = 0.85  # and it holds at least this share of the digit's ink
PIECE = 0.6  # a run is not a digit when it holds less than this of both


@dataclass(frozen=True)
class NumberPieces:
    """Runs the reader weighs, in MNIST form (uint8 x 28 x 28, white ink on black)."""

    digits: torch.Tensor  # runs that hold one digit
    labels: torch.Tensor  # and which (int64)
    pieces: torch.Tensor  # runs that are pieces of digits, or several: not a digit


def build_pieces(count: int, seed: int, images: np.ndarray, labels: np.ndarray) -> NumberPieces:
    """``count`` digit runs and ``count`` non-digit runs from rows of ``images`` (uint8
    MNIST digits) and the training fonts; row ``i`` uses its own random stream."""
    digits: list[np.ndarray] = []
    digit_labels: list[int] = []
    pieces: list[np.ndarray] = []
    row = 0
    while len(digits) < count or len(pieces) < count:
        rng = np.random.default_rng([seed, row])
        row += 1
        glyphs, gaps, drops, number = random_row(
            rng, images, labels, TRAINING_FONTS, DIGITS, HEIGHT, TOUCHING_SHARE, PRINTED_SHARE
        )
        layers = glyph_layers(glyphs, gaps, drops, (8, 8, 8, 8))
        try:
            found = candidates(layers.max(axis=0))
        except ImageInputError:  # nothing the reader would read: no pieces
            continue
        masses = layers.sum(axis=(1, 2))
        kept_pieces = []
        for run in found:
            own = layers[:, run.ys, run.xs].sum(axis=1)
            share = own / max(float(own.sum()), 1e-6)
            cover = own / masses
            owner = int(np.argmax(share))
            form = np.rint(np.clip(run.mnist, 0, 1) * 255).astype(np.uint8)
            if share[owner] >= SHARE and cover[owner] >= COVER:
                digits.append(form)
                digit_labels.append(number[owner])
            elif share[owner] < PIECE or cover[owner] < PIECE:
                kept_pieces.append(form)
        picked = rng.permutation(len(kept_pieces))[:PIECES_PER_ROW]
        pieces += [kept_pieces[i] for i in picked]
    log.info("%d rows gave %d digit runs and %d pieces", row, len(digits), len(pieces))
    return NumberPieces(
        torch.from_numpy(np.stack(digits[:count])),
        torch.tensor(digit_labels[:count], dtype=torch.long),
        torch.from_numpy(np.stack(pieces[:count])),
    )


def load_pieces(
    root: Path, count: int, seed: int, images: torch.Tensor, labels: torch.Tensor
) -> NumberPieces:
    """:func:`build_pieces`, cached in ``root/pieces-<seed>-<count>.pt``: used only if this
    version of the code built it from the same digits; otherwise rebuilt atomically."""
    path = Path(root) / f"pieces-{seed}-{count}.pt"
    key = {"version": CACHE_VERSION, "from": f"{fingerprint(images)} {fingerprint(labels)}"}

    def build() -> dict[str, torch.Tensor]:
        built = build_pieces(count, seed, images.numpy(), labels.numpy())
        return {"digits": built.digits, "labels": built.labels, "pieces": built.pieces}

    content = cached(path, key, build)
    return NumberPieces(content["digits"], content["labels"], content["pieces"])
