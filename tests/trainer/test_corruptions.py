"""The MNIST-C-style corruption suite: what each corruption does, and how the default model fares.

Every corruption must keep the 28x28 uint8 form, be repeatable for a seed, and really change
the digits; the default model (``models/mnist_cnn.pth``) is scored on 500 test images per
corruption, which stays well above chance and below its clean accuracy.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from digitcore.checkpoint import load_model
from trainer.corruptions import (
    CORRUPTIONS,
    IDENTITY,
    corrupt,
    corruption_accuracy,
    corruption_probabilities,
)

SCORED_IMAGES = 500
CHANCE = 0.1
SAMPLING_SLACK = 0.01  # five images in 500: a corruption may land that far above clean by luck


@pytest.fixture(scope="module")
def digits(mnist_test) -> tuple[np.ndarray, torch.Tensor]:
    images, labels = mnist_test
    return images[:SCORED_IMAGES].numpy(), labels[:SCORED_IMAGES]


@pytest.fixture(scope="module")
def accuracy(digits, default_model_path) -> dict[str, float]:
    images, labels = digits
    model, _ = load_model(default_model_path)
    names = [IDENTITY, *CORRUPTIONS]
    return corruption_accuracy(model, images, labels, torch.device("cpu"), names=names)


def test_the_suite_has_mnist_c_corruptions():
    assert list(CORRUPTIONS) == [
        "shot_noise",
        "impulse_noise",
        "glass_blur",
        "motion_blur",
        "shear",
        "scale",
        "rotate",
        "brightness",
        "translate",
        "stripe",
        "fog",
        "spatter",
        "dotted_line",
        "zigzag",
        "canny_edges",
    ]


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_each_corruption_keeps_the_form_and_changes_every_digit(digits, name):
    images, _ = digits
    sample = images[:100]
    original = sample.copy()
    corrupted = corrupt(sample, name, seed=3)
    assert corrupted.shape == sample.shape and corrupted.dtype == np.uint8
    np.testing.assert_array_equal(sample, original)
    changed = (corrupted != sample).any(axis=(1, 2))
    assert changed.all(), f"{name} left {np.count_nonzero(~changed)} of 100 digits as they were"


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_each_corruption_is_repeatable_for_a_seed_and_per_image(digits, name):
    images, _ = digits
    sample = images[:40]
    first = corrupt(sample, name, seed=7)
    np.testing.assert_array_equal(first, corrupt(torch.from_numpy(sample), name, seed=7))
    np.testing.assert_array_equal(first[:10], corrupt(sample[:10], name, seed=7))
    single = CORRUPTIONS[name](sample[0], np.random.default_rng(11))
    assert single.shape == (28, 28) and single.dtype == np.uint8


def test_random_corruptions_change_with_the_seed(digits):
    images, _ = digits
    sample = images[:20]
    for name in ("shot_noise", "impulse_noise", "glass_blur", "fog", "spatter", "zigzag"):
        assert not np.array_equal(corrupt(sample, name, seed=0), corrupt(sample, name, seed=1))


def test_identity_is_the_clean_set_and_unknown_names_are_refused(digits):
    images, _ = digits
    np.testing.assert_array_equal(corrupt(images[:5], IDENTITY), images[:5])
    with pytest.raises(ValueError, match="unknown corruption 'snow'"):
        corrupt(images[:5], "snow")
    with pytest.raises(ValueError, match="28 x 28 uint8"):
        corrupt(images[:5].astype(np.float32), "stripe")


def test_canny_edges_are_thin_outlines_of_the_strokes(digits):
    images, _ = digits
    edges = corrupt(images[:200], "canny_edges")
    assert set(np.unique(edges)) <= {0, 255}
    lit = edges > 0
    stroke_core = np.stack([ndimage.binary_erosion(image > 127) for image in images[:200]])
    assert np.count_nonzero(lit & stroke_core) < 0.05 * np.count_nonzero(stroke_core)
    assert np.count_nonzero(lit) > 0.5 * np.count_nonzero(images[:200] > 127)


def test_stripe_inverts_the_side_bands_only(digits):
    images, _ = digits
    striped = corrupt(images[:5], "stripe")
    np.testing.assert_array_equal(striped[:, :, :7], 255 - images[:5, :, :7])
    np.testing.assert_array_equal(striped[:, :, 7:21], images[:5, :, 7:21])
    np.testing.assert_array_equal(striped[:, :, 21:], 255 - images[:5, :, 21:])


def test_probabilities_are_distributions_that_agree_with_the_accuracy(
    digits, default_model_path, accuracy
):
    images, labels = digits
    model, _ = load_model(default_model_path)
    probabilities = corruption_probabilities(model, images, torch.device("cpu"), "rotate")
    assert probabilities.shape == (SCORED_IMAGES, 10)
    torch.testing.assert_close(probabilities.sum(1), torch.ones(SCORED_IMAGES))
    right = (probabilities.argmax(1) == labels).float().mean().item()
    assert right == pytest.approx(accuracy["rotate"])


def test_default_model_beats_chance_on_every_corruption_and_is_best_on_clean(accuracy):
    clean = accuracy[IDENTITY]
    corrupted = {name: score for name, score in accuracy.items() if name != IDENTITY}
    assert clean >= 0.98
    for name, score in corrupted.items():
        assert score >= 2 * CHANCE, f"{name}: {score:.1%} on {SCORED_IMAGES} digits"
        assert score <= clean + SAMPLING_SLACK, f"{name}: {score:.1%} above clean {clean:.1%}"
    assert np.mean(list(corrupted.values())) < clean  # corruptions cost something on average
