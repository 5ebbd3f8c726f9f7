"""The reference's picture of a prediction, for one file or a grid of many.

Each cell shows the original (a thumbnail) beside the 28x28 image the model saw, enlarged
with nearest-neighbour so its pixels stay visible, under a title with the predicted digit,
its confidence and the file name. Drawn with matplotlib's object API (Agg, no pyplot state).
"""

from __future__ import annotations

import io
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageShow

from digitcore.atomic import atomic_write
from predictor.engines import Prediction

FORMATS = ("png", "pdf", "svg")
DPI = 100
CELL_INCHES = (4.0, 2.4)  # one cell is 400 x 240 pixels at DPI
MAX_COLUMNS = 4
THUMBNAIL_PIXELS = 160
NAME_CHARS = 40
LAYOUT = {"top": 0.7, "bottom": 0.03, "left": 0.05, "right": 0.95, "wspace": 0.15}


@dataclass
class Cell:
    path: str
    original: np.ndarray | None  # RGB thumbnail, None if it could not be decoded for display
    model_view: np.ndarray  # 28x28 in [0, 1], white ink on black
    digit: int
    confidence: float
    is_digit: bool = True


def cell(path: str, data: bytes, prediction: Prediction) -> Cell:
    """A figure cell for one predicted file (``prediction.model_view`` must be present)."""
    assert prediction.model_view is not None
    return Cell(
        path,
        thumbnail(data),
        prediction.model_view,
        prediction.digit,
        prediction.confidence,
        prediction.is_digit,
    )


def thumbnail(data: bytes) -> np.ndarray | None:
    """The original picture, upright, transparency over white, at most THUMBNAIL_PIXELS."""
    from digitcore.preprocess import decode_image  # imports torch: only when a figure is made

    try:
        image = decode_image(data).convert("RGBA")
    except Exception:  # display only: the prediction row already says what was wrong
        return None
    white = Image.new("RGBA", image.size, (255, 255, 255, 255))
    picture = Image.alpha_composite(white, image).convert("RGB")
    picture.thumbnail((THUMBNAIL_PIXELS, THUMBNAIL_PIXELS))
    return np.asarray(picture)


def grid_shape(count: int) -> tuple[int, int]:
    """(rows, columns) of cells for ``count`` images."""
    columns = max(1, min(count, MAX_COLUMNS))
    return max(1, math.ceil(count / columns)), columns


def render(cells: list[Cell], fmt: str = "png") -> bytes:
    """The figure as ``fmt`` bytes; its size is (columns x 400) by (rows x 240) pixels."""
    from matplotlib.figure import Figure

    rows, columns = grid_shape(len(cells))
    figure = Figure(figsize=(columns * CELL_INCHES[0], rows * CELL_INCHES[1]), dpi=DPI)
    grid = figure.subfigures(rows, columns, squeeze=False)
    for index, sub in enumerate(grid.flat):
        if index >= len(cells):
            continue
        cell = cells[index]
        name = os.path.basename(cell.path)
        name = name if len(name) <= NAME_CHARS else "..." + name[-NAME_CHARS + 3 :]
        verdict = (
            f"predicted {cell.digit}  ({cell.confidence:.1%})"
            if cell.is_digit
            else f"not a digit?  ({cell.digit}: {cell.confidence:.1%})"
        )
        sub.suptitle(f"{verdict}\n{name}", fontsize=10)
        left, right = sub.subplots(1, 2, gridspec_kw=LAYOUT)
        if cell.original is not None:
            left.imshow(cell.original)
        left.set_title("original", fontsize=8)
        right.imshow(cell.model_view, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        right.set_title("as the model saw it", fontsize=8)
        for axes in (left, right):  # a frame, no ticks: white paper stays visible on white
            axes.set_xticks([])
            axes.set_yticks([])
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt, dpi=DPI)
    return buffer.getvalue()


def write(path: str | os.PathLike[str], cells: list[Cell]) -> bytes:
    """Render in the format of ``path``'s suffix and write it atomically; returns the bytes."""
    data = render(cells, Path(path).suffix.lower().lstrip("."))
    with atomic_write(path) as handle:
        handle.write(data)
    return data


def has_display() -> bool:
    return sys.platform in ("darwin", "win32") or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )


def show(png: bytes) -> str | None:
    """Open the figure in the system's image viewer; the reason when that is not possible."""
    if not has_display():
        return "no display available"
    if not ImageShow.show(Image.open(io.BytesIO(png)), title="mnist-predict"):
        return "no image viewer found"
    return None
