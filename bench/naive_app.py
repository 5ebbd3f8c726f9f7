"""The naive baseline for the load benchmark: the reference's steps in one async route.

    python -m bench.naive_app --model models/mnist_cnn.pth --port 8001

``POST /predict`` does exactly what the reference report does with "your own image", inline on
the event loop: ``Image.open(...).convert('L').resize((28, 28))``, torchvision's ``ToTensor``
and ``Normalize``, one forward pass per request with torch's default threads, no batching. It
answers with the service's JSON shape, so the benchmark compares like with like. Not a product:
it exists only to be measured against (``bench/load.py``).
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import torch
import uvicorn
from fastapi import FastAPI, File, UploadFile
from PIL import Image
from torchvision import transforms

from digitcore.checkpoint import load_model

TRANSFORM = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])


def create_app(model_path: Path) -> FastAPI:
    model, _ = load_model(model_path, "cpu")
    app = FastAPI(title="naive baseline")

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.post("/predict")
    async def predict(file: UploadFile = File(...)) -> dict:  # noqa: B008 (the reference's form)
        image = Image.open(io.BytesIO(await file.read())).convert("L").resize((28, 28))
        batch = TRANSFORM(image).unsqueeze(0)
        with torch.no_grad():
            probabilities = model(batch).exp()[0]
        confidence, digit = probabilities.max(0)
        return {
            "digit": int(digit),
            "confidence": float(confidence),
            "probabilities": probabilities.tolist(),
            "input_image": None,
        }

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The reference's naive serving, for benchmarks.")
    parser.add_argument("--model", type=Path, default=Path("models/mnist_cnn.pth"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args(argv)
    app = create_app(args.model)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
