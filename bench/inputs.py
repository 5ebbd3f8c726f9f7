"""The uploads the performance benchmarks send, made from one MNIST *test* digit, same every run.

``png``: the 28x28 MNIST digit as a PNG (already MNIST-like). ``jpeg``: the same digit as ink on
paper photographed at 640x480 (:func:`testkit.realistic.photo`: off-centre, tilted, uneven light,
noise, JPEG).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from testkit.realistic import photo
from trainer.data import fetch, load_tensors

INDEX = 0  # MNIST test image 0, a 7
SEED = 6


def digit_inputs(root: Path = Path("data")) -> dict[str, tuple[str, bytes]]:
    """``{"png": ("digit.png", bytes), "jpeg": ("photo.jpg", bytes)}``."""
    fetch(root)
    images, _ = load_tensors(root, train=False)
    digit = images[INDEX].numpy()
    buffer = io.BytesIO()
    Image.fromarray(digit).save(buffer, format="PNG")
    jpeg, _ = photo(digit, np.random.default_rng(SEED))
    assert Image.open(io.BytesIO(jpeg)).size == (640, 480)
    return {"png": ("digit.png", buffer.getvalue()), "jpeg": ("photo.jpg", jpeg)}
