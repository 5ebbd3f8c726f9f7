"""Robustness to corruption: the MNIST-C-style suite on the raw model and through the service.

    python -m bench.corruptions [--model models/mnist_cnn.pth] [--limit N] [--http-limit N]
                                [--no-http] [--seed 0] [--out bench/results/corruptions.json]

For the clean test set and each corruption of :mod:`trainer.corruptions` it prints the
accuracy of the raw model (the 28x28 corrupted images straight into the network) with its
expected calibration error (15 bins, with the checkpoint's temperature, as the service
answers), and, unless ``--no-http``, the accuracy of the real service: each corrupted image
as a PNG (mode L) POSTed to ``/predict`` of ``python -m service`` on a loopback port, so the
service's own preprocessing sees it first, with the calibration error of its confidences and
the share it answered ``is_digit: true``. An upload the service refuses (no digit found)
counts as wrong. The mean row is over the corruptions, not the clean set.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
from contextlib import nullcontext
from pathlib import Path

import httpx
import numpy as np
import torch
from PIL import Image

from digitcore.atomic import atomic_write
from digitcore.checkpoint import load_model
from digitcore.model import resolve_device
from testkit.servers import Server, serve
from trainer.calibration import ECE_BINS, calibrated, expected_calibration_error
from trainer.corruptions import CORRUPTIONS, IDENTITY, corrupt, model_probabilities
from trainer.data import fetch, load_tensors

SERVICE_SETTINGS = {"log_level": "warning", "access_log": "false"}


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def service_accuracy(client: httpx.Client, images: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy of ``POST /predict`` on ``images``, the calibration error of its answers, the
    share answered as digits, and how many uploads it refused (422)."""
    refused, answered, answered_labels = 0, [], []
    for pixels, label in zip(images, labels, strict=True):
        response = client.post("/predict", files={"file": ("digit.png", png(pixels), "image/png")})
        if response.status_code == 422:
            refused += 1
            continue
        response.raise_for_status()
        answered.append(response.json())
        answered_labels.append(int(label))
    right = sum(a["digit"] == label for a, label in zip(answered, answered_labels, strict=True))
    probabilities = torch.tensor([a["probabilities"] for a in answered]).reshape(-1, 10)
    return {
        "service_accuracy": right / len(images),
        "service_ece": expected_calibration_error(probabilities, torch.tensor(answered_labels)),
        "service_is_digit": sum(a.get("is_digit", True) for a in answered) / len(images),
        "service_refused": refused,
    }


def score(
    model: torch.nn.Module,
    device: torch.device,
    images: np.ndarray,
    labels: np.ndarray,
    name: str,
    seed: int,
    http_limit: int,
    server: Server | None,
    temperature: float,
) -> dict:
    corrupted = corrupt(images, name, seed)
    probabilities = calibrated(model_probabilities(model, corrupted, device).log(), temperature)
    truth = torch.from_numpy(labels)
    row = {
        "corruption": name,
        "raw_accuracy": (probabilities.argmax(1) == truth).float().mean().item(),
        "raw_ece": expected_calibration_error(probabilities, truth),
    }
    if server is not None:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            row |= service_accuracy(client, corrupted[:http_limit], labels[:http_limit])
    return row


def mean_row(rows: list[dict]) -> dict:
    corrupted = [row for row in rows if row["corruption"] != IDENTITY]
    keys = [key for key in corrupted[0] if key not in ("corruption", "service_refused")]
    mean = {key: float(np.mean([row[key] for row in corrupted])) for key in keys}
    return {"corruption": f"mean of {len(corrupted)} corruptions", **mean}


def markdown(rows: list[dict]) -> str:
    http = "service_accuracy" in rows[0]
    lines = [
        "| corruption | raw % | raw ECE % |"
        + (" service % | service ECE % | service is_digit % |" if http else ""),
        "|---|---:|---:|" + ("---:|---:|---:|" if http else ""),
    ]
    service = ["service_accuracy", "service_ece", "service_is_digit"]
    columns = ["raw_accuracy", "raw_ece", *(service if http else [])]
    for row in rows:
        lines.append(
            f"| {row['corruption']} | "
            + " | ".join(f"{100 * row[column]:.2f}" for column in columns)
            + " |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Accuracy on MNIST-C-style corrupted test sets.")
    parser.add_argument("--model", type=Path, default=Path("models/mnist_cnn.pth"))
    parser.add_argument("--data", type=Path, default=Path("data"), help="MNIST root")
    parser.add_argument("--limit", type=int, help="test images for the raw model (default: all)")
    parser.add_argument(
        "--http-limit", type=int, default=1000, help="of those, images sent to the service"
    )
    parser.add_argument(
        "--http",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also score through the real service over HTTP",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the corruptions")
    parser.add_argument("--device", default="auto", help="for the raw model: auto, cpu, cuda")
    parser.add_argument("--out", type=Path, default=Path("bench/results/corruptions.json"))
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    model, checkpoint = load_model(args.model, device)
    fetch(args.data)
    images, labels = (t.numpy() for t in load_tensors(args.data, train=False))
    images, labels = images[: args.limit], labels[: args.limit]
    http_limit = min(args.http_limit, len(images)) if args.http else 0
    print(f"raw model: {len(images)} images per set; service: {http_limit}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-corruptions-") as tmp:
        settings = {**SERVICE_SETTINGS, "model_path": str(args.model.resolve())}
        with serve(Path(tmp), **settings) if args.http else nullcontext() as server:
            for name in [IDENTITY, *CORRUPTIONS]:
                rows.append(
                    score(
                        model,
                        device,
                        images,
                        labels,
                        name,
                        args.seed,
                        http_limit,
                        server,
                        checkpoint.temperature,
                    )
                )
                print(f"scored {name}", file=sys.stderr, flush=True)
    rows.append(mean_row(rows))
    report = {
        "command": "python -m bench.corruptions "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "model": str(args.model),
        "seed": args.seed,
        "temperature": checkpoint.temperature,
        "raw_images": len(images),
        "service_images": http_limit,
        "calibration_bins": ECE_BINS,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(args.out, "w") as handle:
        json.dump(report, handle, indent=2)
    print()
    print(markdown(rows))
    print()
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
