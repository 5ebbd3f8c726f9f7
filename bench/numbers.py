"""Reading whole numbers: exact-string accuracy of the number reader per family of pictures.

    python -m bench.numbers [--model models/mnist_cnn.pth] [--count N] [--out PATH]

Every sample of :mod:`testkit.numbers` (``apart``: clear gaps between digits; ``touching``:
every neighbour touching or overlapping the next) is read as ``POST /read`` reads it: by the
service's pipeline (:meth:`service.pipeline.DigitModel.read`: decoding, the number reader
:func:`digitcore.segment.read_digits` with the served model's calibrated scores, the answer),
without the HTTP round trip.
A sample counts only if the whole string is right. Also reported: how often the count of
digits was right, and the time per picture (one torch thread, as a serving worker runs it).
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
from service.pipeline import DigitModel, InputRejected, NumberUpload
from testkit.numbers import FAMILIES, generate
from trainer.data import fetch, load_tensors

GOALS = {"apart": 0.97, "touching": 0.90}


def read_number(pipeline: DigitModel, data: bytes) -> str:
    """The number read from an upload; '' where the reader refuses it."""
    outcome = pipeline.read(NumberUpload(data))
    return "" if isinstance(outcome, InputRejected) else outcome.number


def measure(
    family: str, pipeline: DigitModel, images: np.ndarray, labels: np.ndarray, count: int
) -> dict:
    exact = same_length = 0
    misses = []
    started = time.perf_counter()
    for sample in generate(family, images, labels, count):
        read = read_number(pipeline, sample.data)
        exact += read == sample.number
        same_length += len(read) == len(sample.number)
        if read != sample.number and len(misses) < 20:
            misses.append({"sample": sample.name, "number": sample.number, "read": read})
    elapsed = time.perf_counter() - started
    return {
        "family": family,
        "samples": count,
        "exact": exact / count,
        "digit_count_right": same_length / count,
        "goal": GOALS[family],
        "ms_per_picture": 1000 * elapsed / count,
        "first_misses": misses,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Exact accuracy of the number reader.")
    parser.add_argument("--model", type=Path, default=Path("models/mnist_cnn.pth"))
    parser.add_argument("--data", type=Path, default=Path("data"), help="MNIST root")
    parser.add_argument("--count", type=int, default=500, help="pictures per family")
    parser.add_argument("--out", type=Path, default=Path("bench/results/numbers.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    pipeline = DigitModel.load(args.model, torch.device("cpu"))
    fetch(args.data)
    images, labels = (t.numpy() for t in load_tensors(args.data, train=False))
    rows = [measure(family, pipeline, images, labels, args.count) for family in FAMILIES]
    print("| family | pictures | exact | goal | digit count right | ms / picture |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['family']} | {row['samples']} | {row['exact']:.1%} | {row['goal']:.0%} "
            f"| {row['digit_count_right']:.1%} | {row['ms_per_picture']:.0f} |"
        )
    with atomic_write(args.out, "w") as handle:
        json.dump({"model": str(args.model), "families": rows}, handle, indent=2)
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
