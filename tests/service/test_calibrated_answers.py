"""The checkpoint's temperature and digit threshold reach every answer: /predict, the batch
items, /model; a checkpoint without them answers with T = 1 and ``is_digit: true``."""

from __future__ import annotations

import pytest
import torch

from digitcore.checkpoint import load_checkpoint, load_model, save_checkpoint
from digitcore.preprocess import preprocess
from tests.service.conftest import make_settings, running

pytestmark = pytest.mark.anyio

TEMPERATURE = 2.5


def with_calibration(source, target, **entries):
    checkpoint = load_checkpoint(source)
    checkpoint.metadata |= entries
    save_checkpoint(target, checkpoint)
    return target


async def test_answers_are_softmax_of_logits_over_t_and_flag_low_confidence(
    small_checkpoint, tmp_path, mnist_png_samples
):
    model, _ = load_model(small_checkpoint)
    samples = [data for data, _ in mnist_png_samples[:30]]
    tensors = torch.stack([prepared.tensor for prepared in preprocess(samples)])
    with torch.no_grad():
        expected = torch.softmax(model(tensors) / TEMPERATURE, dim=1)
    threshold = float(expected.max(dim=1).values.median())  # half of them fall below it
    path = with_calibration(
        small_checkpoint, tmp_path / "calibrated.pth", temperature=TEMPERATURE,
        digit_threshold=threshold,
    )  # fmt: skip
    async with running(make_settings(model_path=path)) as (_, client):
        flags = []
        for data, row in zip(samples, expected, strict=True):
            body = (await client.post("/predict", files={"file": ("d.png", data)})).json()
            assert body["probabilities"] == pytest.approx(row.tolist(), abs=1e-5)
            assert body["is_digit"] == (body["confidence"] >= threshold)
            flags.append(body["is_digit"])
        assert 0 < sum(flags) < len(flags)
        files = [("files", (f"{i}.png", data)) for i, data in enumerate(samples)]
        results = (await client.post("/predict/batch", files=files)).json()["results"]
        assert [r["prediction"]["is_digit"] for r in results] == flags
        info = (await client.get("/model")).json()
        assert info["temperature"] == TEMPERATURE and info["digit_threshold"] == threshold
        metrics = (await client.get("/metrics")).text
        counted = next(
            line for line in metrics.splitlines() if line.startswith("not_a_digit_total")
        )
        assert float(counted.split()[-1]) == 2 * flags.count(False)  # /predict and the batch


async def test_a_checkpoint_without_calibration_answers_t_1_and_always_a_digit(
    small_checkpoint, mnist_png_samples
):
    model, checkpoint = load_model(small_checkpoint)
    assert "temperature" not in checkpoint.metadata and checkpoint.digit_threshold is None
    data = mnist_png_samples[0][0]
    tensor = preprocess([data])[0][0]
    with torch.no_grad():
        expected = model(tensor.unsqueeze(0)).exp()[0]
    async with running(make_settings(model_path=small_checkpoint)) as (_, client):
        body = (await client.post("/predict", files={"file": ("d.png", data)})).json()
        assert body["is_digit"] is True
        assert body["probabilities"] == pytest.approx(expected.tolist(), abs=1e-5)
        info = (await client.get("/model")).json()
        assert info["temperature"] == 1.0 and info["digit_threshold"] is None
