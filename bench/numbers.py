"""Reading whole numbers: exact-string accuracy of the number reader per family of pictures.

    python -m bench.numbers [--model models/mnist_cnn.pth] [--line-reader PATH|none]
                            [--count N] [--out PATH]

Every sample of :mod:`testkit.numbers` (``apart``: clear gaps between digits; ``touching``:
every neighbour touching or overlapping the next) is read as ``POST /read`` reads it: by the
service's pipeline (:meth:`service.pipeline.DigitModel.read`: decoding, the number reader
:func:`digitcore.segment.read_digits` with the served model's calibrated scores and the line
reader, the answer), without the HTTP round trip; ``--line-reader none`` measures the cuts
alone. A sample counts only if the whole string is right; "and boxes right" if also every
digit's box overlaps the true one (intersection over union at least 0.5). Also: how often
the count of digits was right; over the digits of those readings, how many are right and the
expected calibration error of their confidence (15 bins); and the time per picture (one
torch thread, as a serving worker runs it).
Prints a markdown table and writes the figures as JSON. No server is needed.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from digitcore.atomic import atomic_write
from digitcore.line_reader import DEFAULT_LINE_READER
from service.pipeline import DigitModel, InputRejected, NumberUpload
from testkit.numbers import FAMILIES, generate
from trainer.calibration import expected_calibration_error
from trainer.data import fetch, load_tensors

GOALS = {"apart": 0.97, "touching": 0.90, "tilted": 0.95, "spaced": 0.97}
BOX_OVERLAP = 0.5  # a digit's box is right when its intersection over union with the truth is


def read_number(pipeline: DigitModel, data: bytes) -> tuple[str, list[float], list[list[int]]]:
    """The number read from an upload, each digit's confidence and box; '' where refused."""
    outcome = pipeline.read(NumberUpload(data))
    if isinstance(outcome, InputRejected):
        return "", [], []
    digits = outcome.digits
    return outcome.number, [d.confidence for d in digits], [d.box for d in digits]


def overlap(a, b) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    width = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def measure(
    family: str, pipeline: DigitModel, images: np.ndarray, labels: np.ndarray, count: int
) -> dict:
    exact = same_length = boxed = 0
    misses = []
    rows, truths = [], []  # each digit of the readings with the right count
    started = time.perf_counter()
    for sample in generate(family, images, labels, count):
        read, sure, boxes = read_number(pipeline, sample.data)
        exact += read == sample.number
        boxed += read == sample.number and all(
            overlap(box, truth) >= BOX_OVERLAP
            for box, truth in zip(boxes, sample.boxes, strict=True)
        )
        same_length += len(read) == len(sample.number)
        if len(read) == len(sample.number):
            for digit, confidence, truth in zip(read, sure, sample.number, strict=True):
                row = np.full(10, (1 - confidence) / 9)  # the answer's confidence, the rest
                row[int(digit)] = confidence  # spread (only the top one is answered)
                rows.append(row)
                truths.append(int(truth))
        if read != sample.number and len(misses) < 20:
            misses.append({"sample": sample.name, "number": sample.number, "read": read})
    elapsed = time.perf_counter() - started
    return {
        "family": family,
        "samples": count,
        "exact": exact / count,
        "digit_count_right": same_length / count,
        "exact_with_boxes": boxed / count,
        "digit_accuracy": float(np.mean(np.argmax(rows, axis=1) == truths)),
        "digit_ece": expected_calibration_error(torch.tensor(np.array(rows)), torch.tensor(truths)),
        "goal": GOALS[family],
        "ms_per_picture": 1000 * elapsed / count,
        "first_misses": misses,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Exact accuracy of the number reader.")
    parser.add_argument("--model", type=Path, default=Path("models/mnist_cnn.pth"))
    parser.add_argument(
        "--line-reader",
        default=str(DEFAULT_LINE_READER),
        help=f"the line reader that counts the digits (default {DEFAULT_LINE_READER}); "
        "'none' to cut by the digit model alone",
    )
    parser.add_argument("--data", type=Path, default=Path("data"), help="MNIST root")
    parser.add_argument("--count", type=int, default=500, help="pictures per family")
    parser.add_argument("--out", type=Path, default=Path("bench/results/numbers.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    line_reader = None if args.line_reader == "none" else args.line_reader
    pipeline = DigitModel.load(args.model, torch.device("cpu"), line_reader=line_reader)
    fetch(args.data)
    images, labels = (t.numpy() for t in load_tensors(args.data, train=False))
    results = [measure(family, pipeline, images, labels, args.count) for family in FAMILIES]
    print(
        "| family | pictures | exact | goal | and boxes right | count right | digits right "
        "| ECE | ms / picture |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in results:
        print(
            f"| {row['family']} | {row['samples']} | {row['exact']:.1%} | {row['goal']:.0%} "
            f"| {row['exact_with_boxes']:.1%} | {row['digit_count_right']:.1%} "
            f"| {row['digit_accuracy']:.1%} "
            f"| {row['digit_ece']:.1%} | {row['ms_per_picture']:.0f} |"
        )
    with atomic_write(args.out, "w") as handle:
        json.dump(
            {"model": str(args.model), "line_reader": line_reader, "families": results},
            handle,
            indent=2,
        )
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
