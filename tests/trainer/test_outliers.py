"""The outlier-exposure images: pipeline-shaped, fixed by the seed, every kind, training fonts."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import ImageFont

from trainer import outliers
from trainer.outliers import (
    FONT_FOLDER,
    LETTERS,
    LOOKALIKE_LETTERS,
    SYMBOLS,
    TRAINING_FONTS,
    WORDS,
    build_outliers,
    cache_path,
    is_safe_text,
    load_outliers,
    outlier_images,
    outlier_kinds,
    random_word,
)

PER_KIND = 20
COUNT = PER_KIND * len(outlier_kinds())
SEED = 3


@pytest.fixture(scope="module")
def train_digits(mnist_root) -> torch.Tensor:
    from trainer.data import load_tensors

    return load_tensors(mnist_root, train=True)[0][:2000]


@pytest.fixture(scope="module")
def built(train_digits) -> tuple[outliers.Outliers, set[str]]:
    """A set built while every font file opened is recorded."""
    opened: set[str] = set()
    truetype = ImageFont.truetype

    def recording(font, *args, **kwargs):
        opened.add(Path(font).name)
        return truetype(font, *args, **kwargs)

    outliers.load_font.cache_clear()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ImageFont, "truetype", recording)
        result = build_outliers(COUNT, SEED, train_digits)
    outliers.load_font.cache_clear()
    return result, opened


def test_images_are_uint8_28x28_one_kind_each(built):
    result, _ = built
    assert result.images.shape == (COUNT, 28, 28)
    assert result.images.dtype == torch.uint8
    assert len(result.kinds) == COUNT


def test_every_kind_is_present_and_balanced(built):
    result, _ = built
    kinds, counts = np.unique(result.kinds, return_counts=True)
    assert set(kinds) == set(outlier_kinds())
    assert set(counts) == {PER_KIND}


def test_without_digits_there_are_no_digit_rows():
    assert "digits" not in outlier_kinds(with_digits=False)
    result = build_outliers(len(outlier_kinds(False)), SEED)
    assert set(result.kinds) == set(outlier_kinds(False))


def test_the_seed_fixes_the_images_and_a_smaller_set_is_a_prefix(built, train_digits):
    result, _ = built
    again = outlier_images(24, SEED, train_digits)
    assert torch.equal(again, result.images[:24])
    assert not torch.equal(outlier_images(24, SEED + 1, train_digits), again)


def test_images_look_like_the_pipeline_output(built):
    """White ink on an exact-0 background, the ink's box at most MNIST's 20 px (the pipeline
    thins filled shapes, so some are smaller), the centre of mass at the middle."""
    images = built[0].images.numpy().astype(np.float64)
    for image in images:
        assert image.max() >= 200, "blank or faint"
        rows, cols = np.flatnonzero(image.any(axis=1)), np.flatnonzero(image.any(axis=0))
        side = max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1)
        assert 12 <= side <= 20
        assert np.count_nonzero(image == 0) >= 28 * 28 - 20 * 20
        total = image.sum()
        centre = (
            image.sum(axis=1) @ np.arange(28) / total,
            image.sum(axis=0) @ np.arange(28) / total,
        )
        assert np.all(np.abs(np.array(centre) - 14) <= 1.5)


def test_only_the_training_fonts_are_used(built):
    _, opened = built
    assert opened and opened <= set(TRAINING_FONTS)
    for name in TRAINING_FONTS:
        assert (FONT_FOLDER / name).is_file()
        assert name.startswith("DejaVu")


def test_no_lookalike_letter_is_drawn_alone_nor_dominates_a_word():
    assert not set(LETTERS) & set(LOOKALIKE_LETTERS)
    assert not set(SYMBOLS) & set("!|/\\©®0123456789")
    assert all(is_safe_text(w) for word in WORDS for w in (word, word.upper(), word.title()))
    assert not is_safe_text("lol") and not is_safe_text("So")
    rng = np.random.default_rng(0)
    for _ in range(300):
        word = random_word(rng)
        assert 2 <= len(word) <= 8 and is_safe_text(word)


def test_uploads_the_pipeline_refuses_are_drawn_again(monkeypatch):
    real = outliers.preprocess
    calls = []

    def refuse_the_first(uploads):
        calls.append(len(uploads))
        return [ValueError("refused")] if len(calls) == 1 else real(uploads)

    monkeypatch.setattr(outliers, "preprocess", refuse_the_first)
    result = build_outliers(2, SEED)
    assert result.refused == 1 and len(calls) == 3
    assert result.images.amax(dim=(1, 2)).min() > 0


def test_the_cache_is_written_once_and_rebuilt_for_other_digits(
    tmp_path, monkeypatch, train_digits
):
    first = load_outliers(tmp_path, 16, SEED)
    assert cache_path(tmp_path, 16, SEED) == tmp_path / f"outliers-{SEED}-16.pt"
    assert cache_path(tmp_path, 16, SEED).is_file()

    def no_building(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    with monkeypatch.context() as patch:
        patch.setattr(outliers, "build_outliers", no_building)
        cached = load_outliers(tmp_path, 16, SEED)
    assert torch.equal(cached.images, first.images) and cached.kinds == first.kinds

    with_digits = load_outliers(tmp_path, 16, SEED, train_digits)
    assert "digits" in with_digits.kinds
    assert list(tmp_path.iterdir()) == [cache_path(tmp_path, 16, SEED)]  # no temp files left
