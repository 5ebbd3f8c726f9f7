"""The MNIST-form pass-through: MNIST's own digits reach the model as they are, nothing else."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from digitcore.checkpoint import load_model
from digitcore.mnistify import mnistify
from digitcore.model import predict_probabilities
from digitcore.preprocess import mnist_form, preprocess, to_tensor
from tests.conftest import png_bytes


def test_every_mnist_test_digit_passes_through_unchanged(mnist_test):
    images = mnist_test[0].numpy()
    for pixels in images:
        passed = mnist_form(Image.fromarray(pixels))
        assert passed is not None
        np.testing.assert_array_equal(passed, pixels.astype(np.float32) / 255)


def near_misses(pixels: np.ndarray) -> dict[str, Image.Image]:
    """The same digit, each time one step away from MNIST form."""
    grey_floor = pixels.copy()
    grey_floor[grey_floor == 0] = 1
    big = np.zeros((28, 28), np.uint8)
    big[1:27, 1:27] = np.asarray(Image.fromarray(pixels[4:24, 4:24]).resize((26, 26)))
    return {
        "shifted 3 px": Image.fromarray(np.roll(pixels, 3, axis=1)),
        "dark on light": Image.fromarray(255 - pixels),
        "background one grey level up": Image.fromarray(grey_floor),
        "box of 26 px": Image.fromarray(big),
        "29 px wide": Image.fromarray(np.pad(pixels, ((0, 0), (0, 1)))),
        "RGB": Image.fromarray(pixels).convert("RGB"),
        "with alpha": Image.fromarray(pixels).convert("LA"),
    }


def test_anything_else_goes_through_the_general_path(mnist_test):
    pixels = mnist_test[0][0].numpy()
    for name, image in near_misses(pixels).items():
        assert mnist_form(image) is None, name
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        ((_, seen),) = preprocess([buffer.getvalue()])
        np.testing.assert_array_equal(seen, mnistify(image), err_msg=name)


def test_preprocess_takes_the_pass_through_for_mnist_pngs(mnist_test):
    images = mnist_test[0][:50].numpy()
    for pixels, (tensor, seen) in zip(
        images, preprocess([png_bytes(p) for p in images]), strict=True
    ):
        np.testing.assert_array_equal(seen, pixels.astype(np.float32) / 255)
        torch.testing.assert_close(tensor, to_tensor(seen))


@pytest.mark.slow
def test_pass_through_and_general_path_agree_on_mnist(mnist_test, default_model_path):
    """On the 10,000 MNIST test digits the two paths give the same digit (or the right one)."""
    images, labels = mnist_test
    model, _ = load_model(default_model_path, "cpu")
    passed = torch.stack([to_tensor(mnist_form(Image.fromarray(p))) for p in images.numpy()])
    general = torch.stack([to_tensor(mnistify(Image.fromarray(p))) for p in images.numpy()])
    by_pass = predict_probabilities(model, passed).argmax(1)
    by_general = predict_probabilities(model, general).argmax(1)
    agree = (by_pass == by_general).float().mean().item()
    assert agree >= 0.997, f"the paths agree on {agree:.2%} of MNIST test"
    assert (by_pass == labels).sum() >= (by_general == labels).sum()
