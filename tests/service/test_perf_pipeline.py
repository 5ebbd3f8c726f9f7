"""The pipeline's shortcuts compute exactly what its general steps compute.

``_on_black`` (an MNIST-like upload) must give the very crop that ``select_digit(ink_map(...))``
gives, take most MNIST digits, and decline whatever the general steps treat differently;
``_percentiles`` must equal ``np.percentile``.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from digitcore.errors import NoDigitFoundError
from digitcore.mnistify import _on_black, _percentiles, ink_map, select_digit, to_luminance


def general(image: Image.Image) -> np.ndarray | None:
    try:
        return select_digit(ink_map(to_luminance(image)))
    except NoDigitFoundError:
        return None


def blobs(rng: np.random.Generator, size: tuple[int, int], count: int) -> np.ndarray:
    height, width = size
    yy, xx = np.mgrid[:height, :width]
    canvas = np.zeros(size)
    for _ in range(count):
        y, x, r = rng.uniform(2, height - 2), rng.uniform(2, width - 2), rng.uniform(1, 6)
        canvas += rng.uniform(0.1, 1.5) * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * r * r))
    canvas[[0, -1]] = 0
    canvas[:, [0, -1]] = 0
    return np.clip(canvas * 255, 0, 255).astype(np.uint8)


def test_mnist_digits_take_the_shortcut_to_the_same_crop(mnist_test):
    images, _ = mnist_test
    taken = 0
    for pixels in images[:500].numpy():
        image = Image.fromarray(pixels)
        quick = _on_black(image)
        if quick is not None:
            taken += 1
            assert np.array_equal(quick, general(image))
            assert quick.dtype == np.float32 and quick.flags.c_contiguous
    assert taken >= 475


def test_synthetic_small_images_agree_or_are_declined():
    rng = np.random.default_rng(3)
    taken = declined = 0
    for _ in range(400):
        size = (int(rng.integers(8, 96)), int(rng.integers(8, 96)))
        image = Image.fromarray(blobs(rng, size, int(rng.integers(1, 4))))
        quick = _on_black(image)
        if quick is None:
            declined += 1
        else:
            taken += 1
            assert np.array_equal(quick, general(image))
    assert taken > 50 and declined > 50  # both branches were exercised


@pytest.mark.parametrize(
    "case", ["rgb", "transparency", "border-ink", "two-digits", "too-big", "blank", "faint"]
)
def test_what_the_general_steps_treat_differently_is_declined(case):
    pixels = np.zeros((28, 28), dtype=np.uint8)
    pixels[6:22, 12:16] = 255
    image = Image.fromarray(pixels)
    if case == "rgb":
        image = image.convert("RGB")
    elif case == "transparency":
        image.info["transparency"] = 0
    elif case == "border-ink":
        pixels[0, 5] = 40
        image = Image.fromarray(pixels)
    elif case == "two-digits":
        pixels[6:22, 2:4] = 255
        image = Image.fromarray(pixels)
    elif case == "too-big":
        image = image.resize((96, 96))
    elif case == "blank":
        image = Image.fromarray(np.zeros((28, 28), dtype=np.uint8))
    elif case == "faint":
        image = Image.fromarray((pixels // 20).astype(np.uint8))
    assert _on_black(image) is None


def test_percentiles_equal_numpy():
    rng = np.random.default_rng(0)
    for size in [1, 2, 3, 7, 100, 784, 5000]:
        values = rng.random(size).astype(np.float32)
        if size > 3:
            values[: size // 3] = 0.25  # ties
        for qs in [(90,), (0.5, 99.5), (50,), (0, 100)]:
            expected = [float(np.percentile(values, q)) for q in qs]
            assert _percentiles(values, *qs) == expected
