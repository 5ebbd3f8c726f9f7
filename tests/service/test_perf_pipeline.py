"""The pipeline's shortcuts compute exactly what its general steps compute.

``_on_black`` (an MNIST-like upload) must give the very crop that ``select_digit(ink_map(...))``
gives, take most MNIST digits, and decline whatever the general steps treat differently;
``_percentiles`` must equal ``np.percentile``, small arrays and large; uploads preprocessed
together (``mnistify_many``, ``preprocess_many``) must come out as they do one at a time.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from digitcore.errors import NoDigitFoundError
from digitcore.mnistify import (
    _on_black,
    _percentiles,
    ink_map,
    mnistify,
    mnistify_many,
    select_digit,
    to_luminance,
)
from digitcore.preprocess import preprocess, preprocess_many


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


@pytest.mark.parametrize("size", [1, 2, 3, 7, 100, 784, 5000, 70_000, 196_608])
@pytest.mark.parametrize("shape", ["uniform", "ties", "sorted", "flat-top"])
def test_percentiles_equal_numpy(size, shape):
    """Small arrays take one partition; large ones read their tails (see _order_statistics)."""
    rng = np.random.default_rng(size)
    values = rng.normal(size=size).astype(np.float32)
    if shape == "ties":
        values = np.round(values * 4) / 4
    elif shape == "sorted":
        values = np.sort(values)
    elif shape == "flat-top":
        values[::3] = values.max()
    for qs in [(90,), (0.5, 99.5), (50,), (0, 100), (12.5, 87.5)]:
        expected = [float(np.percentile(values, q)) for q in qs]
        assert _percentiles(values, *qs) == expected


def outcome(function, *args):
    try:
        return function(*args)
    except Exception as exc:
        return exc


def assert_same(together, alone):
    if isinstance(alone, Exception):
        assert type(together) is type(alone) and str(together) == str(alone)
    elif isinstance(alone, tuple):
        assert all(np.array_equal(a, b) for a, b in zip(together, alone, strict=True))
    else:
        assert np.array_equal(together, alone)


def mixed_images(mnist_test) -> list[Image.Image]:
    """MNIST digits among every kind the shortcut declines, in several sizes and modes."""
    rng = np.random.default_rng(11)
    digits = [Image.fromarray(p) for p in mnist_test[0][:40].numpy()]
    bordered = np.array(digits[0])
    bordered[0, 3] = 90
    two = np.zeros((28, 28), dtype=np.uint8)
    two[5:20, 4:7], two[5:20, 18:21] = 255, 255
    others = [
        Image.fromarray(bordered),
        Image.fromarray(two),
        Image.new("L", (28, 28), 0),
        digits[1].convert("RGB"),
        digits[2].resize((120, 120)),
        *(Image.fromarray(blobs(rng, (30, 44), 2)) for _ in range(6)),
    ]
    images = digits + others
    return [images[i] for i in rng.permutation(len(images))]


def test_many_images_come_out_as_one_at_a_time(mnist_test):
    images = mixed_images(mnist_test)
    together = mnistify_many(images)
    assert len(together) == len(images)
    for image, result in zip(images, together, strict=True):
        assert_same(result, outcome(mnistify, image))
    assert any(isinstance(r, NoDigitFoundError) for r in together)


def test_many_uploads_come_out_as_one_at_a_time(mnist_test):
    uploads = []
    for image in mixed_images(mnist_test)[:20]:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        uploads.append(buffer.getvalue())
    uploads += [b"", b"not an image", uploads[0][:60]]
    together = preprocess_many(uploads)
    for data, result in zip(uploads, together, strict=True):
        assert_same(result, outcome(preprocess, data))
    assert sum(isinstance(r, Exception) for r in together) >= 3
