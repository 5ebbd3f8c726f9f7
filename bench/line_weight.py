"""The line reader's weight in ``POST /read``: exact-string accuracy per weight, on number
sets drawn from the *validation* digits (never the test digits the number bench reads).

    python -m bench.line_weight [--model models/mnist_cnn.pth] [--line-reader PATH] [--count N]

Each picture of :mod:`testkit.numbers`' two families, made here from the 5,000 MNIST training
digits held out for validation, is read once as ``POST /read`` reads it (the cuts for the
line reader's count); each digit's classifier and line reader probabilities are then pooled
(:func:`digitcore.line_reader.pooled`) with every weight in turn. The weight with the best
mean of the two families is the one to keep as ``LINE_WEIGHT``. Prints a markdown table and
writes ``bench/results/line_weight.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from digitcore.atomic import atomic_write
from digitcore.line_reader import DEFAULT_LINE_READER, LINE_WEIGHT, pooled
from digitcore.preprocess import decode_image
from digitcore.segment import number_from, read_digits
from service.pipeline import MAX_NUMBER_DIGITS, DigitModel
from testkit.numbers import generate
from trainer.data import fetch, load_tensors
from trainer.train import TrainConfig, validation_split

WEIGHTS = (0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
FAMILIES = ("apart", "touching")  # the weight was chosen on these two


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/mnist_cnn.pth"))
    parser.add_argument("--line-reader", type=Path, default=DEFAULT_LINE_READER)
    parser.add_argument("--data", type=Path, default=Path("data"), help="MNIST root")
    parser.add_argument("--count", type=int, default=300, help="pictures per family")
    parser.add_argument("--out", type=Path, default=Path("bench/results/line_weight.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    fetch(args.data)
    pipeline = DigitModel.load(args.model, torch.device("cpu"), line_reader=args.line_reader)
    images, labels = load_tensors(args.data, train=True)
    held, _ = validation_split(len(labels), TrainConfig().validation_size)
    images, labels = images[held].numpy(), labels[held].numpy()
    exact = {family: np.zeros(len(WEIGHTS)) for family in FAMILIES}
    for family in FAMILIES:
        for sample in generate(family, images, labels, args.count):
            image = decode_image(sample.data, gray=True)
            found = read_digits(image, pipeline.score, MAX_NUMBER_DIGITS, pipeline.line_reader)
            classified = pipeline.score([digit.mnist for digit in found])
            for index, weight in enumerate(WEIGHTS):
                rows = [
                    p if d.line is None else pooled(p, d.line, weight)
                    for d, p in zip(found, classified, strict=True)
                ]
                exact[family][index] += number_from(np.array(rows)) == sample.number
        exact[family] /= args.count
    print(f"| line reader weight | {' | '.join(FAMILIES)} | mean |")
    print(f"|---:|{'---:|' * (len(FAMILIES) + 1)}")
    for index, weight in enumerate(WEIGHTS):
        cells = [f"{exact[family][index]:.1%}" for family in FAMILIES]
        mean = np.mean([exact[family][index] for family in FAMILIES])
        print(f"| {weight:.1f} | {' | '.join(cells)} | {mean:.1%} |")
    best = WEIGHTS[int(np.argmax(np.mean([exact[f] for f in FAMILIES], axis=0)))]
    print(f"best weight {best} (LINE_WEIGHT today {LINE_WEIGHT})")
    with atomic_write(args.out, "w") as handle:
        json.dump(
            {
                "model": str(args.model),
                "line_reader": str(args.line_reader),
                "pictures_per_family": args.count,
                "digits": "validation",
                "weights": list(WEIGHTS),
                "exact": {family: exact[family].tolist() for family in FAMILIES},
                "best": best,
            },
            handle,
            indent=2,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
