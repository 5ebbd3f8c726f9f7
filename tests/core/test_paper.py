"""The paper model (``digitcore.paper``) seen through the ink map: light falling off across a
page, and a shadow's sharp edge, are paper, and the strokes on them stay ink."""

from __future__ import annotations

import numpy as np
import pytest

from digitcore.mnistify import FAINT, ink_map
from digitcore.paper import fit_paper


def test_a_page_darkening_towards_a_corner_is_paper_there():
    """Light falling off across a photographed page: the dark corner is paper, not a patch of
    ink (the closing's window at the edge saw only the lighter side of the slope)."""
    rng = np.random.default_rng(0)
    rows, cols = 300, 400
    ys, xs = np.mgrid[0:rows, 0:cols]
    gray = 0.9 - 0.3 * (xs / cols + ys / rows) / 2 + rng.normal(0, 0.005, (rows, cols))
    gray[140:170, 198:202] -= 0.5  # a small stroke in the middle
    ink = ink_map(gray.astype(np.float32))
    assert ink[-40:, -40:].max() < FAINT
    assert ink[145:165, 199:201].min() > 0.5


@pytest.mark.parametrize("angle", [0.0, 90.0])
def test_a_shadows_sharp_edge_is_paper_not_a_line_of_ink(angle):
    """A photo 40 % darker beyond a sharp edge: the paper's level follows the edge at full size
    (a smooth surface stretched from the small copy smeared it into a band of ink).

    Upright and level edges only: where a slanted edge leaves the shadow a narrow wedge in a
    corner of the picture, part of the wedge is still taken for ink (a known limit, README)."""
    rng = np.random.default_rng(1)
    rows, cols = 400, 400
    ys, xs = np.mgrid[0:rows, 0:cols]
    slope = np.tan(np.radians(angle)) if angle < 90 else None
    beyond = xs > 260 + slope * (ys - 200) if slope is not None else ys > 260
    gray = np.where(beyond, 0.5, 0.85) + rng.normal(0, 0.01, (rows, cols))
    gray[150:250, 150:156] = 0.1  # a stroke on the lit side, near the edge
    gray = gray.astype(np.float32)
    paper = fit_paper(gray)
    assert np.abs(paper.level - gray)[beyond & (np.abs(xs - 150) > 10)].max() < 0.08
    ink = ink_map(gray)
    assert ink[beyond].max() < FAINT  # nothing along the edge's dark side
    assert ink[160:240, 151:155].min() > 0.5
