"""Shared fixtures: real MNIST, a quickly trained small checkpoint, the default trained model.

MNIST is fetched once (``make data`` does it; the fixture does it too if needed). The default
model (``models/mnist_cnn.pth``) and the line reader (``models/mnist_lines.pth``) are trained
by ``make test`` before pytest runs; tests that need them use ``default_model_path`` and
``default_line_reader_path`` and fail loudly if one is missing.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DATA_ROOT = ROOT / "data"
DEFAULT_MODEL = Path(os.environ.get("MODEL_PATH", ROOT / "models" / "mnist_cnn.pth"))
DEFAULT_LINE_READER = Path(os.environ.get("LINE_READER_PATH", ROOT / "models" / "mnist_lines.pth"))


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    from trainer.data import fetch

    fetch(DATA_ROOT)
    return DATA_ROOT


@pytest.fixture(scope="session")
def mnist_test(mnist_root) -> tuple[torch.Tensor, torch.Tensor]:
    """The 10,000 MNIST test images (uint8 N x 28 x 28) and labels."""
    from trainer.data import load_tensors

    return load_tensors(mnist_root, train=False)


@pytest.fixture(scope="session")
def small_checkpoint(tmp_path_factory, mnist_root) -> Path:
    """A real Digit checkpoint trained for one epoch on 3,000 images (about 90% accurate):
    no augmentation and no non-digits, which a single short epoch cannot make use of."""
    from digitcore.model import resolve_device
    from trainer.augment import AugmentConfig
    from trainer.train import TrainConfig, run

    out = tmp_path_factory.mktemp("small-model") / "small.pth"
    config = TrainConfig(
        epochs=1,
        train_subset=3000,
        test_subset=500,
        out=out,
        data_root=mnist_root,
        progress=False,
        outliers=0,
        number_pieces=0,
        augment=AugmentConfig.off(),
    )
    run(config, resolve_device("cpu"))
    return out


@pytest.fixture(scope="session")
def default_model_path() -> Path:
    if not DEFAULT_MODEL.is_file():
        pytest.fail(f"{DEFAULT_MODEL} is missing: run `make train` (make test does it first)")
    return DEFAULT_MODEL


@pytest.fixture(scope="session")
def default_line_reader_path() -> Path:
    if not DEFAULT_LINE_READER.is_file():
        pytest.fail(
            f"{DEFAULT_LINE_READER} is missing: run `make train-lines` (make test does it first)"
        )
    return DEFAULT_LINE_READER


def png_bytes(pixels: np.ndarray) -> bytes:
    """A uint8 array as PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="session")
def mnist_png_samples(mnist_test) -> list[tuple[bytes, int]]:
    """The first 200 MNIST test digits as (PNG bytes, label)."""
    images, labels = mnist_test
    return [(png_bytes(images[i].numpy()), int(labels[i])) for i in range(200)]
