"""With the trained default model, /predict is right on at least 99% of real MNIST test PNGs."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import png_bytes
from tests.service.conftest import make_settings, running

pytestmark = pytest.mark.anyio

SAMPLES = 600


async def test_default_model_is_right_on_99_percent_of_mnist_test_pngs(
    default_model_path, mnist_test
):
    images, labels = mnist_test
    step = len(images) // SAMPLES  # spread over the whole test set
    samples = [
        (png_bytes(images[i].numpy()), int(labels[i])) for i in range(0, step * SAMPLES, step)
    ]
    async with running(make_settings(model_path=default_model_path)) as (_, client):
        limit = asyncio.Semaphore(16)

        async def predict(data: bytes) -> int:
            async with limit:
                files = {"file": ("digit.png", data, "image/png")}
                response = await client.post("/predict", files=files)
            assert response.status_code == 200, response.text
            return response.json()["digit"]

        digits = await asyncio.gather(*(predict(data) for data, _ in samples))
    right = sum(digit == label for digit, (_, label) in zip(digits, samples, strict=True))
    assert len(samples) == SAMPLES
    assert right / SAMPLES >= 0.99, f"{right}/{SAMPLES} right"
