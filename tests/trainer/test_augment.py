"""Geometric, elastic and photometric augmentation on real MNIST batches."""

import pytest
import torch

from trainer.augment import (
    AugmentConfig,
    _smoothing_matrix,
    augment,
    elastic_field,
    random_stroke_width,
)
from trainer.photometric import CORRUPTIONS, random_photometric, smooth
from trainer.train import Split


@pytest.fixture(scope="module")
def batch(mnist_test) -> torch.Tensor:
    images, labels = mnist_test
    return Split(images[:64], labels[:64]).batch(torch.arange(64), torch.device("cpu"))[0]


def test_the_elastic_blur_by_matrices_equals_the_convolution():
    planes = torch.rand(3, 2, 28, 28, generator=torch.Generator().manual_seed(0))
    matrix = _smoothing_matrix(28, 4.0)
    assert torch.allclose(matrix @ planes @ matrix.T, smooth(planes, 4.0), atol=1e-5)


def test_elastic_fields_are_smooth_and_only_on_the_chosen_share():
    config = AugmentConfig(elastic_prob=0.5)
    field = elastic_field(400, 28, config, torch.Generator().manual_seed(1))
    moved = field.abs().amax(dim=(1, 2, 3)) > 0
    assert 0.35 < moved.float().mean() < 0.65
    # neighbouring displacements differ far less than the displacements themselves
    step = (field[:, 1:] - field[:, :-1]).abs().mean()
    assert step < 0.2 * field[moved].abs().mean()
    none = elastic_field(10, 28, AugmentConfig(elastic_prob=0.0), torch.Generator())
    assert torch.count_nonzero(none) == 0


@pytest.mark.parametrize("corruption", CORRUPTIONS, ids=lambda c: c.__name__)
def test_each_photometric_corruption_changes_the_digits_within_range(batch, corruption):
    out = corruption(batch, torch.Generator().manual_seed(2)).clamp(0, 1)
    assert out.shape == batch.shape
    changed = (out != batch).flatten(1).any(dim=1).float().mean()
    assert changed >= 0.9  # (a short line can fall on ink that is already white)
    assert (out - batch).abs().mean() > 0.003


def test_photometric_share_and_determinism(batch):
    first = random_photometric(batch, 0.5, torch.Generator().manual_seed(3))
    again = random_photometric(batch, 0.5, torch.Generator().manual_seed(3))
    assert torch.equal(first, again)
    changed = (first != batch).flatten(1).any(dim=1).float().mean()
    assert 0.3 < changed < 0.7
    assert torch.equal(random_photometric(batch, 0.0, torch.Generator()), batch)


def test_augmented_digits_stay_digits_in_range(batch):
    out = augment(batch, AugmentConfig(), torch.Generator().manual_seed(4))
    assert out.shape == batch.shape and out.min() >= 0 and out.max() <= 1
    assert not torch.equal(out, batch)
    assert torch.equal(augment(batch, AugmentConfig.off()), batch)


def test_stroke_fill_closes_small_loops_and_keeps_the_strokes(batch):
    """The 3x3 closing fills a loop a felt marker would close and never removes ink."""
    ring = torch.zeros(1, 1, 28, 28)
    ring[0, 0, 10:16, 10:16] = 1.0
    ring[0, 0, 12:14, 12:14] = 0.0  # a 2x2 hole: a marker's filled loop
    filled = random_stroke_width(ring, 0.0, torch.Generator().manual_seed(5), fill=1.0)
    assert filled[0, 0, 12:14, 12:14].min() == 1.0
    assert torch.equal(filled[0, 0, 10:16, 10:16], torch.ones(6, 6))
    assert filled.sum() == 36  # nothing grows outside the ring
    out = random_stroke_width(batch, 0.0, torch.Generator().manual_seed(6), fill=0.5)
    changed = (out != batch).flatten(1).any(dim=1)
    assert 0.25 < changed.float().mean() < 0.75
    assert (out >= batch).all()  # a closing only adds ink
