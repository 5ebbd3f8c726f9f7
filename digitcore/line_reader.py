"""The line reader: a small recurrent network that reads a whole written number at once.

The number reader (:mod:`digitcore.segment`) cuts the ink into digits and asks the digit
classifier about each run. Where neighbours touch or overlap, the right cut is often not among
the candidates (a 7's bar over the next digit, a slanted overlap), and the reading goes wrong
however good the classifier is. The line reader needs no cuts: it reads the slant-corrected
line, scaled to :data:`HEIGHT` px, column by column (a CRNN: convolutions, then a
bidirectional GRU over the columns), trained with CTC (Graves et al. 2006) on rows of
training digits (:mod:`trainer.lines`). Its reading says how many digits the line holds; the
number reader then picks the best cuts for that many digits, and the classifier reads them.

Its checkpoint is its own file (``models/mnist_lines.pth`` by default): ``format``,
``version``, ``model_state_dict`` and ``metadata``, loaded with ``weights_only=True``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from digitcore.atomic import atomic_write

HEIGHT = 32  # a line's height as the reader sees it, in px
INNER = 28  # the ink's height in it: a margin of (HEIGHT - INNER) / 2 above and below
PAD = 4  # px of background left and right of the ink
STRIDE = 4  # columns of the line per step of the reading
BLANK = 10  # CTC's "no digit here" class, after the ten digits
DEFAULT_LINE_READER = Path("models/mnist_lines.pth")
FORMAT = "mnist-line-reader"
LINE_WEIGHT = 0.5  # the line reader's weight when pooled with the classifier (chosen on
# number sets drawn from the validation digits, bench/line_weight.py)
VERSION = 1


def _block(inputs: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, 3, padding=1, bias=False), nn.BatchNorm2d(outputs), nn.ReLU()
    )


class LineReader(nn.Module):
    """1 x 32 x W line -> W/4 steps x 11 log-probabilities (ten digits and the blank)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _block(1, 16), nn.MaxPool2d(2),  # 16 x W/2
            _block(16, 32), nn.MaxPool2d(2),  # 8 x W/4
            _block(32, 64), _block(64, 64), nn.MaxPool2d((2, 1)),  # 4 x W/4
            _block(64, 96), nn.MaxPool2d((4, 1)),  # 1 x W/4
        )  # fmt: skip
        self.sequence = nn.GRU(96, 96, bidirectional=True, batch_first=True)
        self.classes = nn.Linear(192, BLANK + 1)

    def forward(self, lines: torch.Tensor) -> torch.Tensor:
        steps = self.features(lines).squeeze(2).transpose(1, 2)  # N x T x 128
        steps, _ = self.sequence(steps)
        return self.classes(steps).log_softmax(-1)


def line_tensor(raster: np.ndarray) -> torch.Tensor:
    """A line's ink (rows x columns, [0, 1], slant removed) as the reader sees it: scaled to
    :data:`INNER` px tall, with margins; 1 x HEIGHT x W, W a multiple of :data:`STRIDE`."""
    ink = torch.as_tensor(np.ascontiguousarray(raster), dtype=torch.float32)
    width = max(1, round(ink.shape[1] * INNER / ink.shape[0]))
    small = F.interpolate(ink[None, None], size=(INNER, width), mode="area")[0, 0]
    total = -(-(width + 2 * PAD) // STRIDE) * STRIDE
    line = torch.zeros(1, HEIGHT, total)
    top = (HEIGHT - INNER) // 2
    line[0, top : top + INNER, PAD : PAD + width] = small
    return line


def batch_lines(lines: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Lines of different widths as one batch (padded with background on the right), and the
    number of steps of each."""
    widest = max(line.shape[-1] for line in lines)
    batch = torch.zeros(len(lines), 1, HEIGHT, widest)
    for index, line in enumerate(lines):
        batch[index, :, :, : line.shape[-1]] = line
    return batch, torch.tensor([line.shape[-1] // STRIDE for line in lines])


def best_path(log_probabilities: torch.Tensor, steps: int) -> str:
    """The digits along the most probable path of one reading (T x 11): repeats merged,
    blanks dropped."""
    return "".join(str(int(k)) for k in digit_probabilities(log_probabilities, steps).argmax(1))


def digit_probabilities(log_probabilities: torch.Tensor, steps: int) -> np.ndarray:
    """The digits along the most probable path of one reading (T x 11), one row each (N x 10):
    the reading's probabilities over the ten digits at the step where it is surest of it."""
    probabilities = log_probabilities[:steps].exp().numpy()
    rows: list[np.ndarray] = []
    before = BLANK
    for step in probabilities:
        best = int(step.argmax())
        if best != BLANK and best != before:
            rows.append(step[:BLANK])
        elif best != BLANK and step[best] > rows[-1][best]:
            rows[-1] = step[:BLANK]
        before = best
    found = np.array(rows, dtype=np.float64).reshape(-1, BLANK)
    return found / found.sum(axis=1, keepdims=True)


def pooled(classifier: np.ndarray, line: np.ndarray, weight: float = LINE_WEIGHT) -> np.ndarray:
    """One digit's probabilities from the classifier (on its cut-out ink) and the line reader
    (in the line's context): their normalized weighted geometric mean, ``weight`` on the line
    reader's. It is as sure as both where they agree, and where a bad cut leaves the
    classifier near uniform (it was trained to be, on pieces of digits), the line reader's
    reading carries the digit."""
    both = np.log(np.clip(np.asarray(classifier, dtype=np.float64), 1e-12, None)) * (1 - weight)
    both += np.log(np.clip(np.asarray(line, dtype=np.float64), 1e-12, None)) * weight
    both = np.exp(both - both.max(axis=-1, keepdims=True))
    return both / both.sum(axis=-1, keepdims=True)


class LineReading:
    """A loaded line reader: ``reader(raster)`` is the digits it reads along the line, one
    row of probabilities over the ten digits each (N x 10; N = 0 where it reads none)."""

    def __init__(self, model: LineReader, metadata: dict[str, Any] | None = None) -> None:
        self.model = model.eval()
        self.metadata = metadata or {}
        self.device = next(model.parameters()).device

    def __call__(self, raster: np.ndarray) -> np.ndarray:
        line = line_tensor(raster)
        with torch.inference_mode():
            reading = self.model(line[None].to(self.device))[0].cpu()
        return digit_probabilities(reading, line.shape[-1] // STRIDE)


class LineReaderError(RuntimeError):
    """A line reader checkpoint that cannot be used; the message names the file."""


def save_line_reader(
    path: str | os.PathLike[str], model: LineReader, metadata: dict[str, Any]
) -> None:
    """Write the reader's checkpoint atomically (a temp name, then rename)."""
    content = {
        "format": FORMAT,
        "version": VERSION,
        "model_state_dict": model.state_dict(),
        "metadata": metadata,
    }
    with atomic_write(path) as handle:
        torch.save(content, handle)


def load_line_reader(path: str | os.PathLike[str], device: torch.device) -> LineReading:
    """The reader saved at ``path``, on ``device``; :class:`LineReaderError` says what is wrong."""
    try:
        content = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:
        raise LineReaderError(f"line reader {os.fspath(path)}: cannot be read ({exc})") from exc
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise LineReaderError(f"line reader {os.fspath(path)}: not a {FORMAT} checkpoint")
    model = LineReader().to(device)
    try:
        model.load_state_dict(content["model_state_dict"])
    except (KeyError, RuntimeError) as exc:
        raise LineReaderError(f"line reader {os.fspath(path)}: weights do not fit ({exc})") from exc
    return LineReading(model, content.get("metadata", {}))
