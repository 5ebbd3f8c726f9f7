"""``python -m trainer.lines``: train the line reader that counts and reads whole numbers.

The number reader cuts a line of ink into digits; where neighbours touch, the right cuts are
often missing and the count goes wrong. The line reader (:mod:`digitcore.line_reader`) reads
the whole line without cuts, and its count steers the cuts. It learns from rows of MNIST
*training* digits (never the validation or test digits) and of the training fonts, drawn
like the number sets (:func:`~trainer.number_lines.random_row`), put on the sheets people
send (:mod:`trainer.sheets`) and seen through the service's own decoding and ink pipeline.
The rows are drawn once, on every core, and cached in ``data/lines-<seed>-<count>.pt``.
Validation rows from the held-out digits measure it; the figure goes in its metadata.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from digitcore.errors import ImageInputError
from digitcore.line_reader import (
    BLANK,
    HEIGHT,
    LineReader,
    batch_lines,
    best_path,
    line_tensor,
    save_line_reader,
)
from digitcore.mnistify import picture_ink, to_luminance
from digitcore.preprocess import decode_image
from digitcore.segment import line_raster
from trainer.cache import cached
from trainer.data import fetch, load_tensors
from trainer.number_lines import lay_out, random_row
from trainer.outliers import TRAINING_FONTS, fingerprint
from trainer.sheets import SHEETS, on_sheet
from trainer.train import TrainConfig, validation_split

log = logging.getLogger("trainer.lines")

CACHE_VERSION = 5  # bump when a change here or in the pipeline changes the rows
DIGITS = (2, 8)  # digits in a row: at least, at most
ROW_HEIGHT = (30, 100)  # a row's digit height in pixels: at least, below
TOUCHING_SHARE = 0.5  # rows whose neighbours touch or overlap
PRINTED_SHARE = 0.25  # rows printed in a training font
STRETCH = (0.8, 1.25)  # each line's width is scaled by a random factor in this range


@dataclass(frozen=True)
class LinesConfig:
    rows: int = 30000
    validation_rows: int = 1000
    epochs: int = 8
    batch_size: int = 64
    max_lr: float = 3e-3
    seed: int = 1
    data_root: Path = Path("data")
    out: Path = Path("models/mnist_lines.pth")


@dataclass(frozen=True)
class Lines:
    """Lines as the reader sees them (1 x HEIGHT x W, uint8) and the digits on each."""

    lines: list[torch.Tensor]
    numbers: list[str]


def draw_lines(
    seed: int, first: int, count: int, images: np.ndarray, labels: np.ndarray
) -> tuple[list[np.ndarray], list[str]]:
    """Rows ``first`` .. ``first + count - 1`` (row ``i`` from its own random stream), each
    drawn, put on a sheet, decoded and turned into ink as the service does."""
    lines, numbers = [], []
    for index in range(first, first + count):
        rng = np.random.default_rng([seed, index])
        glyphs, gaps, drops, number = random_row(
            rng, images, labels, TRAINING_FONTS, DIGITS, ROW_HEIGHT, TOUCHING_SHARE, PRINTED_SHARE
        )
        height = glyphs[0].shape[0]
        margins = tuple(int(rng.integers(height // 3, 3 * height // 2)) for _ in range(4))
        ink, _ = lay_out(glyphs, gaps, drops, margins)
        data = on_sheet(ink, rng, SHEETS[int(rng.integers(len(SHEETS)))])
        try:
            raster = line_raster(picture_ink(to_luminance(decode_image(data, gray=True)))[0])
        except ImageInputError:  # a sheet that lost the ink: nothing to learn from
            continue
        lines.append(np.rint(line_tensor(raster).numpy() * 255).astype(np.uint8))
        numbers.append("".join(map(str, number)))
    return lines, numbers


def load_lines(
    root: Path, count: int, seed: int, images: torch.Tensor, labels: torch.Tensor
) -> Lines:
    """:func:`draw_lines` for ``count`` rows, split over every core, cached in
    ``root/lines-<seed>-<count>.pt`` (rebuilt when the code or the digits change)."""
    path = Path(root) / f"lines-{seed}-{count}.pt"
    key = {"version": CACHE_VERSION, "from": f"{fingerprint(images)} {fingerprint(labels)}"}

    def build() -> dict:
        workers = max(1, min(os.cpu_count() or 1, 8))
        chunk = -(-count // workers)
        jobs = [(seed, start, min(chunk, count - start)) for start in range(0, count, chunk)]
        started = time.perf_counter()
        with multiprocessing.get_context("spawn").Pool(
            workers, _share_digits, (images.numpy(), labels.numpy())
        ) as pool:
            parts = pool.starmap(_draw_part, jobs)
        lines = [torch.from_numpy(line) for part in parts for line in part[0]]
        numbers = [number for part in parts for number in part[1]]
        log.info("%d lines drawn in %.0f s", len(lines), time.perf_counter() - started)
        return {"lines": lines, "numbers": numbers}

    content = cached(path, key, build)
    return Lines(content["lines"], content["numbers"])


_DIGITS: tuple[np.ndarray, np.ndarray] | None = None  # a drawing worker's digits


def _share_digits(images: np.ndarray, labels: np.ndarray) -> None:
    global _DIGITS
    torch.set_num_threads(1)
    _DIGITS = (images, labels)


def _draw_part(seed: int, first: int, count: int) -> tuple[list[np.ndarray], list[str]]:
    assert _DIGITS is not None
    return draw_lines(seed, first, count, *_DIGITS)


def _stretched(line: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """A uint8 line as [0, 1] floats, its width scaled by a random factor in :data:`STRETCH`."""
    ink = line.float().div(255)
    width = max(8, round(ink.shape[-1] * rng.uniform(*STRETCH)))
    return F.interpolate(ink[None], size=(HEIGHT, width), mode="bilinear", align_corners=False)[0]


def exact_share(model: LineReader, lines: Lines, batch_size: int = 128) -> float:
    """The share of lines whose digits the model reads exactly."""
    model.eval()
    right = 0
    with torch.inference_mode():
        for start in range(0, len(lines.numbers), batch_size):
            batch, steps = batch_lines(
                [line.float().div(255) for line in lines.lines[start : start + batch_size]]
            )
            readings = model(batch)
            for reading, count, number in zip(
                readings, steps.tolist(), lines.numbers[start : start + batch_size], strict=True
            ):
                right += best_path(reading, count) == number
    model.train()
    return right / max(1, len(lines.numbers))


def train_lines(config: LinesConfig, train: Lines, validation: Lines) -> tuple[LineReader, dict]:
    """The line reader trained with CTC on ``train``: one-cycle AdamW, lines of similar widths
    batched together, each line stretched at random."""
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = LineReader()
    by_width = np.argsort([line.shape[-1] for line in train.lines], kind="stable")
    batches = [
        by_width[i : i + config.batch_size] for i in range(0, len(by_width), config.batch_size)
    ]
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.max_lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, config.max_lr, total_steps=config.epochs * len(batches), pct_start=0.15
    )
    ctc = nn.CTCLoss(blank=BLANK, zero_infinity=True)
    started = time.perf_counter()
    losses = []
    for epoch in range(1, config.epochs + 1):
        total = 0.0
        for index in rng.permutation(len(batches)):
            picked = batches[index]
            batch, steps = batch_lines([_stretched(train.lines[i], rng) for i in picked])
            numbers = [train.numbers[i] for i in picked]
            targets = torch.tensor([int(d) for number in numbers for d in number])
            loss = ctc(
                model(batch).transpose(0, 1),
                targets,
                steps,
                torch.tensor([len(number) for number in numbers]),
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item()
        losses.append(total / len(batches))
        log.info("epoch %d/%d: CTC loss %.4f", epoch, config.epochs, losses[-1])
    metadata = {
        "rows": len(train.numbers),
        "epochs": config.epochs,
        "seed": config.seed,
        "losses": [round(loss, 4) for loss in losses],
        "validation_exact": exact_share(model, validation),
        "validation_rows": len(validation.numbers),
        "training_seconds": round(time.perf_counter() - started, 1),
    }
    return model.eval(), metadata


def run(config: LinesConfig) -> dict:
    """Draw (or reuse) the rows, train, measure on validation rows, save atomically."""
    fetch(config.data_root)
    images, labels = load_tensors(config.data_root, train=True)
    held, kept = validation_split(len(labels), TrainConfig().validation_size)
    train = load_lines(config.data_root, config.rows, config.seed, images[kept], labels[kept])
    validation = load_lines(
        config.data_root, config.validation_rows, config.seed + 10**6, images[held], labels[held]
    )
    model, metadata = train_lines(config, train, validation)
    save_line_reader(config.out, model, metadata)
    log.info("saved %s: validation lines read exactly %.2f %%", config.out,
             100 * metadata["validation_exact"])  # fmt: skip
    return metadata


def main(argv: list[str] | None = None) -> int:
    defaults = LinesConfig()
    parser = argparse.ArgumentParser(
        prog="python -m trainer.lines", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--rows", type=int, default=defaults.rows, help=f"training rows (default {defaults.rows})"
    )
    parser.add_argument("--validation-rows", type=int, default=defaults.validation_rows)
    parser.add_argument(
        "--epochs", type=int, default=defaults.epochs, help=f"default {defaults.epochs}"
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument(
        "--data", type=Path, default=defaults.data_root, help="MNIST root (default data)"
    )
    parser.add_argument("--out", type=Path, default=defaults.out, help=f"default {defaults.out}")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config = LinesConfig(
        rows=args.rows,
        validation_rows=args.validation_rows,
        epochs=args.epochs,
        seed=args.seed,
        data_root=args.data,
        out=args.out,
    )
    run(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
