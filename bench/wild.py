"""Accuracy in the wild: the reference's naive preprocessing against ours, per realistic set.

    python -m bench.wild [--model models/mnist_cnn.pth] [--count N] [--out bench/results/wild.json]

For every set of :mod:`testkit.realistic` it prints the accuracy of the default model when the
upload goes through the reference's steps (``convert('L').resize((28, 28))``, ToTensor,
Normalize) and through :func:`digitcore.preprocess.preprocess`, side by side. Then the cost:
time per image of our pipeline for a 28x28 PNG and for a 3000x4000 phone JPEG, next to the
model's forward pass at batch 1 (one torch thread, as a serving worker runs it).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

from digitcore.atomic import atomic_write
from digitcore.checkpoint import load_model
from digitcore.errors import ImageInputError
from digitcore.model import predict_probabilities
from digitcore.preprocess import preprocess
from testkit.realistic import BELOW_GOAL, SETS, generate, phone
from trainer.data import fetch, load_tensors

NAIVE = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])


def naive_tensor(data: bytes) -> torch.Tensor:
    """Exactly the reference report's steps for "your own image"."""
    return NAIVE(Image.open(io.BytesIO(data)).convert("L").resize((28, 28)))


def our_tensor(data: bytes) -> torch.Tensor:
    (outcome,) = preprocess([data])
    if isinstance(outcome, Exception):
        raise outcome
    return outcome[0]


def accuracy(model: torch.nn.Module, samples: list, to_tensor) -> float:
    right = 0
    for sample in samples:
        try:
            tensor = to_tensor(sample.data)
        except ImageInputError:
            continue  # counted as wrong: the pipeline found no digit
        probs = predict_probabilities(model, tensor.unsqueeze(0))
        right += int(probs.argmax(1).item() == sample.label)
    return right / len(samples)


def per_call_ms(function, *args, repeat: int = 50) -> float:
    """Median wall time of one call, in milliseconds."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function(*args)
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def costs(model: torch.nn.Module, images: np.ndarray) -> dict[str, float]:
    buffer = io.BytesIO()
    Image.fromarray(images[0]).save(buffer, format="PNG")
    small = buffer.getvalue()
    large, _ = phone(images[1], np.random.default_rng(0))
    batch = our_tensor(small).unsqueeze(0)
    return {
        "pipeline_28x28_png_ms": per_call_ms(our_tensor, small, repeat=500),
        "pipeline_3000x4000_jpeg_ms": per_call_ms(our_tensor, large, repeat=10),
        "naive_28x28_png_ms": per_call_ms(naive_tensor, small, repeat=500),
        "naive_3000x4000_jpeg_ms": per_call_ms(naive_tensor, large, repeat=10),
        "forward_batch1_ms": per_call_ms(predict_probabilities, model, batch, repeat=500),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Naive vs our preprocessing on realistic sets.")
    parser.add_argument("--model", type=Path, default=Path("models/mnist_cnn.pth"))
    parser.add_argument("--data", type=Path, default=Path("data"), help="MNIST root")
    parser.add_argument("--count", type=int, help="images per set (default: each set's size)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/wild.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    model, _ = load_model(args.model)
    fetch(args.data)
    images, labels = (t.numpy() for t in load_tensors(args.data, train=False))
    rows = []
    print(f"{'set':20s} {'images':>6s} {'naive':>8s} {'ours':>8s}")
    for name in [*SETS, *BELOW_GOAL]:
        samples = list(generate(name, images, labels, args.count))
        row = {
            "set": name,
            "images": len(samples),
            "naive": accuracy(model, samples, naive_tensor),
            "ours": accuracy(model, samples, our_tensor),
        }
        rows.append(row)
        print(f"{name:20s} {len(samples):6d} {row['naive']:8.1%} {row['ours']:8.1%}")
    cost = costs(model, images)
    for key, value in cost.items():
        print(f"{key:28s} {value:8.2f}")
    with atomic_write(args.out, "w") as handle:
        json.dump({"accuracy": rows, "cost_ms": cost}, handle, indent=2)
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
