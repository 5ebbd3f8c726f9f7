"""The line reader's training (:mod:`trainer.lines`): its rows, their cache, a short real run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from digitcore.line_reader import HEIGHT, STRIDE, load_line_reader
from trainer.data import load_tensors
from trainer.lines import DIGITS, Lines, LinesConfig, draw_lines, load_lines, run, train_lines


@pytest.fixture(scope="module")
def train_digits(mnist_root):
    images, labels = load_tensors(mnist_root, train=True)
    return images[:3000], labels[:3000]


def test_each_row_comes_from_its_own_stream(train_digits):
    images, labels = (t.numpy() for t in train_digits)
    lines, numbers = draw_lines(7, 0, 6, images, labels)
    later, later_numbers = draw_lines(7, 3, 3, images, labels)
    assert numbers[3:] == later_numbers  # the same rows, however the work is split
    assert all(np.array_equal(a, b) for a, b in zip(lines[3:], later, strict=True))
    assert all(DIGITS[0] <= len(n) <= DIGITS[1] and n.isdigit() for n in numbers)
    for line in lines:
        assert line.dtype == np.uint8 and line.shape[:2] == (1, HEIGHT)
        assert line.shape[2] % STRIDE == 0 and line.max() > 128


def test_rows_are_cached_and_rebuilt_for_other_digits(tmp_path, train_digits):
    images, labels = train_digits
    first = load_lines(tmp_path, 8, 3, images, labels)
    assert len(first.numbers) == 8 and (tmp_path / "lines-3-8.pt").is_file()
    again = load_lines(tmp_path, 8, 3, images, labels)
    assert again.numbers == first.numbers
    other = load_lines(tmp_path, 8, 3, images[1000:], labels[1000:])
    assert other.numbers != first.numbers


def test_a_short_run_learns_and_saves_a_loadable_reader(tmp_path, mnist_root, train_digits):
    """Real CTC training on a few hundred rows: the loss falls; the file loads and reads."""
    images, labels = (t.numpy() for t in train_digits)
    lines, numbers = draw_lines(1, 0, 256, images, labels)
    rows = Lines([torch.from_numpy(line) for line in lines], numbers)
    config = LinesConfig(epochs=3, batch_size=32, seed=2)
    model, metadata = train_lines(config, rows, Lines(rows.lines[:32], rows.numbers[:32]))
    assert metadata["losses"][-1] < 0.8 * metadata["losses"][0]
    assert not model.training
    assert metadata["rows"] == 256 and 0.0 <= metadata["validation_exact"] <= 1.0

    data = tmp_path / "data"  # MNIST as it is; the rows' caches here, not in the real data/
    data.mkdir()
    (data / "MNIST").symlink_to(mnist_root / "MNIST")
    out = tmp_path / "models" / "lines.pth"
    config = LinesConfig(rows=64, validation_rows=16, epochs=1, data_root=data, out=out)
    saved = run(config)
    assert sorted(p.name for p in data.glob("lines-*.pt")) == [
        "lines-1-64.pt",
        "lines-1000001-16.pt",
    ]
    reader = load_line_reader(out, torch.device("cpu"))
    assert reader.metadata == saved
    read = reader(np.ones((30, 90), dtype=np.float32))
    assert read.ndim == 2 and read.shape[1] == 10 and np.allclose(read.sum(axis=1), 1)
    assert sorted(p.name for p in out.parent.iterdir()) == ["lines.pth"]
