"""The number reader's runs for training: labelled by whose ink they hold, fixed by the seed."""

import numpy as np
import pytest
import torch

from digitcore.segment import candidates
from trainer import number_pieces
from trainer.number_lines import glyph_layers, handwritten, lay_out
from trainer.number_pieces import build_pieces, load_pieces

COUNT = 80
SEED = 4


@pytest.fixture(scope="module")
def train_digits(mnist_root) -> tuple[torch.Tensor, torch.Tensor]:
    from trainer.data import load_tensors

    images, labels = load_tensors(mnist_root, train=True)
    return images[:3000], labels[:3000]


@pytest.fixture(scope="module")
def built(train_digits) -> number_pieces.NumberPieces:
    images, labels = train_digits
    return build_pieces(COUNT, SEED, images.numpy(), labels.numpy())


def test_sizes_and_form(built):
    assert built.digits.shape == built.pieces.shape == (COUNT, 28, 28)
    assert built.digits.dtype == built.pieces.dtype == torch.uint8
    assert built.labels.shape == (COUNT,) and built.labels.dtype == torch.long
    assert set(built.labels.tolist()) <= set(range(10)) and len(set(built.labels.tolist())) >= 8
    assert built.digits.float().mean() > 10 and built.pieces.float().mean() > 5  # ink, not blanks


def test_the_same_seed_gives_the_same_runs(built, train_digits):
    images, labels = train_digits
    again = build_pieces(COUNT, SEED, images.numpy(), labels.numpy())
    assert torch.equal(again.digits, built.digits) and torch.equal(again.pieces, built.pieces)
    assert torch.equal(again.labels, built.labels)
    other = build_pieces(COUNT, SEED + 1, images.numpy(), labels.numpy())
    assert not torch.equal(other.pieces, built.pieces)


def test_digit_runs_are_read_as_their_digit_and_pieces_are_not(built, default_model_path):
    from digitcore.checkpoint import load_model
    from digitcore.model import predict_probabilities
    from digitcore.preprocess import normalize

    model = load_model(default_model_path, torch.device("cpu"))[0]

    def read(images: torch.Tensor) -> torch.Tensor:
        return predict_probabilities(model, normalize(images.unsqueeze(1).float() / 255))

    digits, pieces = read(built.digits), read(built.pieces)
    assert (digits.argmax(1) == built.labels).float().mean() >= 0.9  # the labels are right
    assert digits.max(1).values.median() > 2 * pieces.max(1).values.median()


def test_runs_are_labelled_by_their_owner():
    """A bar and a ring apart: among the runs, each glyph whole and the two together."""
    bar = np.zeros((30, 6), dtype=np.float32)
    bar[:, 1:5] = 1.0
    ring = np.zeros((30, 20), dtype=np.float32)
    ring[:4, :] = ring[-4:, :] = ring[:, :4] = ring[:, -4:] = 1.0
    layers = glyph_layers([bar, ring], [6], margins=(8, 8, 8, 8))
    assert np.array_equal(layers.max(axis=0), lay_out([bar, ring], [6], margins=(8,) * 4)[0])
    owners = set()
    for run in candidates(layers.max(axis=0)):
        own = layers[:, run.ys, run.xs].sum(axis=1) / layers.sum(axis=(1, 2))
        owners.add(tuple(np.round(own, 2)))
        assert run.mnist.shape == (28, 28) and run.mnist.max() > 0.5
    assert {(1.0, 0.0), (0.0, 1.0), (1.0, 1.0)} <= owners


def test_the_cache_is_reused_and_rebuilt_for_other_digits(tmp_path, train_digits, monkeypatch):
    images, labels = train_digits
    first = load_pieces(tmp_path, 20, SEED, images, labels)
    assert (tmp_path / f"pieces-{SEED}-20.pt").is_file()
    calls = []
    real = number_pieces.build_pieces
    monkeypatch.setattr(number_pieces, "build_pieces", lambda *a: calls.append(a) or real(*a))
    again = load_pieces(tmp_path, 20, SEED, images, labels)
    assert not calls and torch.equal(again.digits, first.digits)
    load_pieces(tmp_path, 20, SEED, images, (labels + 1) % 10)
    assert len(calls) == 1
    (tmp_path / f"pieces-{SEED}-20.pt").write_bytes(b"damaged")
    assert torch.equal(load_pieces(tmp_path, 20, SEED, images, labels).pieces, first.pieces)
    assert len(calls) == 2
    assert [p.name for p in tmp_path.iterdir()] == [f"pieces-{SEED}-20.pt"]  # no partial files


def test_handwritten_glyphs_are_cropped_to_their_ink(train_digits):
    images, _ = train_digits
    glyph = handwritten(images[0].numpy(), 40)
    assert glyph[0].max() > 0 and glyph[-1].max() > 0 and glyph[:, 0].max() > 0
    assert 36 <= glyph.shape[0] <= 60
