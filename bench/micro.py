"""Micro-benchmark of the parts of a ``/predict`` request, each alone, as a worker runs them.

    python -m bench.micro [--model models/mnist_cnn.pth] [--out bench/results/micro.json]

One torch thread and one BLAS thread (a serving worker's settings). For the 28x28 PNG and the
640x480 JPEG photo of :mod:`bench.inputs`: reading the multipart body, decoding, the MNIST-form
pass-through check and the MNIST-style pipeline, tensor conversion and the whole preprocessing
(with and without the pass-through); then the forward pass at batch 1, 16 and 64, the whole
pipeline (:class:`service.pipeline.DigitModel`) on 1 and 64 uploads, and the JSON response.
The reference's naive steps are timed beside ours. Each figure is the fastest of 7 rounds of
timed calls (about 40 ms each), in microseconds per call.
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path

import httpx
import torch
from PIL import Image
from threadpoolctl import threadpool_limits

from bench.inputs import digit_inputs
from digitcore.atomic import atomic_write
from digitcore.mnistify import mnistify
from digitcore.model import predict_probabilities
from digitcore.preprocess import decode_image, mnist_form, preprocess, to_tensor
from service.pipeline import DigitModel, Upload
from service.routes.predict import encoded
from service.uploads import form_parts


def per_call_us(function, budget_s: float = 0.3, rounds: int = 7) -> float:
    """The fastest of ``rounds`` rounds (least disturbed by other processes), per call."""
    started = time.perf_counter()
    function()
    once = max(time.perf_counter() - started, 1e-7)
    calls = max(1, int(budget_s / rounds / once))
    results = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(calls):
            function()
        results.append((time.perf_counter() - started) / calls)
    return 1e6 * min(results)


def naive(data: bytes) -> torch.Tensor:
    """The reference's steps (torchvision imported here only, as the naive app does)."""
    from torchvision.transforms.functional import normalize, to_tensor

    image = Image.open(io.BytesIO(data)).convert("L").resize((28, 28))
    return normalize(to_tensor(image), [0.1307], [0.3081])


def measure_input(key: str, name: str, data: bytes, add) -> None:
    request = httpx.Request("POST", "http://x/predict", files={"file": (name, data)})
    body, content_type = request.read(), request.headers["content-type"]
    add("multipart body -> files", key, per_call_us(lambda: form_parts(body, content_type, "file")))
    add("decode", key, per_call_us(lambda: decode_image(data)))
    image = decode_image(data)
    add("MNIST-form check (pass-through)", key, per_call_us(lambda: mnist_form(image)))
    add("MNIST-style pipeline (mnistify)", key, per_call_us(lambda: mnistify(image)))
    mnist = mnistify(image)
    add("tensor conversion", key, per_call_us(lambda: to_tensor(mnist)))
    taken = "pass-through" if mnist_form(image) is not None else "mnistify"
    add(
        "preprocess = decode + pipeline + tensor",
        key,
        per_call_us(lambda: preprocess([data])),
        taken,
    )
    add(
        "decode + mnistify + tensor (no pass-through)",
        key,
        per_call_us(lambda: to_tensor(mnistify(decode_image(data)))),
    )
    add("naive: convert/resize/ToTensor", key, per_call_us(lambda: naive(data)), "reference")


def measure(pipeline: DigitModel, uploads: dict[str, tuple[str, bytes]]) -> list[dict]:
    rows = []

    def add(part: str, input_: str, us: float, note: str = "") -> None:
        rows.append({"part": part, "input": input_, "us": us, "note": note})
        print(f"{part:44s} {input_:6s} {us:10.1f} us  {note}", flush=True)

    for key, (name, data) in uploads.items():
        measure_input(key, name, data, add)
    tensor = preprocess([uploads["png"][1]])[0][0]
    for size in (1, 16, 64):
        batch = tensor.expand(size, -1, -1, -1).contiguous()
        us = per_call_us(lambda b=batch: pipeline.predict(b))
        add(f"forward batch {size}", "-", us, f"{us / size:.1f} us per image")
        reference = per_call_us(lambda b=batch: predict_probabilities(pipeline.model, b))
        note = f"{reference / size:.1f} us per image: the reference Digit, max_pool2d"
        add(f"forward batch {size}, reference", "-", reference, note)
    for size in (1, 64):
        uploads_ = [Upload(uploads["png"][1])] * size
        us = per_call_us(lambda u=uploads_: pipeline(u))
        add(f"whole pipeline, {size} PNG uploads", "png", us, f"{us / size:.1f} us per upload")
    (prediction,) = pipeline([Upload(uploads["png"][1])])
    add("response: encoded(Prediction)", "-", per_call_us(lambda: encoded(prediction)))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Micro-benchmark of the parts of a request.")
    parser.add_argument("--model", type=Path, default=Path("models/mnist_cnn.pth"))
    parser.add_argument("--data", type=Path, default=Path("data"), help="MNIST root")
    parser.add_argument("--out", type=Path, default=Path("bench/results/micro.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    with threadpool_limits(limits=1, user_api="blas"):
        rows = measure(DigitModel.load(args.model, "cpu"), digit_inputs(args.data))
    with atomic_write(args.out, "w") as handle:
        json.dump(
            {"command": "python -m bench.micro", "unit": "us per call", "rows": rows},
            handle,
            indent=2,
        )
    print()
    print("| part | input | µs per call | note |")
    print("|---|---|---:|---|")
    for row in rows:
        print(f"| {row['part']} | {row['input']} | {row['us']:,.1f} | {row['note']} |")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
