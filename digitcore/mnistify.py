"""Turn a real picture of one handwritten digit into what an MNIST digit looks like.

Placeholder: grayscale, resize to 28x28, invert dark-on-light. Replaced by the full
procedure (polarity, background, crop, 20px box, centre of mass).
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def mnistify(image: Image.Image) -> np.ndarray:
    gray = np.asarray(image.convert("L").resize((28, 28), Image.Resampling.BOX), dtype=np.float32) / 255
    if np.median(gray) > 0.5:
        gray = 1 - gray
    return gray
