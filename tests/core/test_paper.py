"""The paper model (``digitcore.paper``) seen through the ink map: light falling off across a
page, a shadow's sharp edge and the blotches of mottled paper or of a wiped blackboard are
paper, and the strokes on them stay ink; a digit cut to its ink is no picture turned on a
canvas."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from digitcore.mnistify import FAINT, ink_map
from digitcore.paper import fit_paper, turned_canvas


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


@pytest.mark.parametrize("depth", [0.15, 0.3])
def test_a_page_darker_towards_all_four_corners_is_paper_there(depth):
    """A lens' vignetting: the page 15 % darker at the middle of each side and 30 % in the
    corners. A plane cannot follow it, so the corners were patches of ink. Twice as deep
    (the corners 60 % darker), the smoothing that follows the closing, its window spilling
    over the frame's edge, lifted the corners again: patches of ink as dark as the stroke."""
    rng = np.random.default_rng(3)
    rows, cols = 300, 400
    ys, xs = np.mgrid[0:rows, 0:cols]
    distance = ((xs - cols / 2) / (cols / 2)) ** 2 + ((ys - rows / 2) / (rows / 2)) ** 2
    gray = 0.8 * (1 - depth * distance) + rng.normal(0, 0.005, (rows, cols))
    gray[60:80, 300:302] -= 0.5  # a small stroke off the middle
    ink = ink_map(gray.astype(np.float32))
    for corner in (ink[:40, :40], ink[:40, -40:], ink[-40:, :40], ink[-40:, -40:]):
        assert corner.max() < FAINT
    assert ink[62:78, 300:302].min() > 0.5


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


@pytest.mark.parametrize("side", ["left", "bottom"])
def test_a_deep_shadow_from_the_pictures_edge_is_paper(side):
    """A shadow 60 % darker than the lit page (darker than ``SURE_INK`` of it, so it was taken
    for a broad stroke of ink and the digit beside it was lost) is paper: broad, reaching in
    from the picture's edge and far lighter than the ink."""
    rng = np.random.default_rng(2)
    rows, cols = 300, 360
    ys, xs = np.mgrid[0:rows, 0:cols]
    beyond = xs < 120 if side == "left" else ys > 200
    gray = np.where(beyond, 0.36, 0.9) + rng.normal(0, 0.01, (rows, cols))
    gray[60:160, 200:206] = 0.08  # a stroke on the lit side
    gray[100:104, 180:260] = 0.08
    ink = ink_map(gray.astype(np.float32))
    edge = (np.abs(xs - 120) > 6) if side == "left" else (np.abs(ys - 200) > 6)
    assert ink[beyond & edge].max() < FAINT
    assert ink[70:150, 201:205].min() > 0.5


def test_a_broad_grey_blot_inside_the_picture_stays_ink():
    """As dark as that shadow and as broad, but clear of the picture's edges: a grey marker's
    blot, ink (a shadow is cast from outside the picture)."""
    rng = np.random.default_rng(3)
    gray = 0.9 + rng.normal(0, 0.01, (300, 300))
    gray[80:220, 110:190] = 0.36
    ink = ink_map(gray.astype(np.float32))
    assert ink[100:200, 130:170].min() > 0.5


@pytest.mark.parametrize("factor", [2, 4])
def test_a_digit_cut_to_its_ink_light_on_black_is_no_picture_turned_within_its_frame(
    mnist_test, factor
):
    """MNIST's own digits cut to their ink and enlarged (bilinear): a round digit's black
    corners are one colour and its outline is convex, as a picture turned within its frame
    leaves them, and the digit was read as such a picture, its strokes blurred into a blob
    (8 and 7 of these 1,000 before). Turned pictures leave long, thin triangles in the
    corners, the long sides taking turns round the frame; a digit's corners are as high as
    they are long."""
    images = mnist_test[0].numpy()[:1000]
    taken = 0
    for digit in images:
        rows, cols = np.nonzero(digit.any(axis=1))[0], np.nonzero(digit.any(axis=0))[0]
        crop = Image.fromarray(digit[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1])
        crop = crop.resize((crop.width * factor, crop.height * factor), Image.Resampling.BILINEAR)
        taken += turned_canvas(np.asarray(crop, dtype=np.float32) / 255) is not None
    assert taken == 0


def clouds(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Soft random blotches about ``sigma`` px wide, of unit standard deviation."""
    field = ndimage.gaussian_filter(rng.normal(size=shape), sigma)
    return field / field.std()


def test_blotches_of_mottled_paper_stay_paper_beside_a_dark_stroke():
    """Mottled paper rises above its noise floor in blotches that outnumber a small stroke's
    pixels: they are the floor, not ink at the stroke's strength."""
    rng = np.random.default_rng(3)
    rows, cols = 300, 400
    gray = 0.85 + 0.05 * clouds(rng, (rows, cols), 25) + rng.normal(0, 0.004, (rows, cols))
    gray[140:180, 198:202] = 0.15  # a small dark stroke
    ink = ink_map(gray.astype(np.float32))
    assert ink[145:175, 199:201].min() > 0.5
    away = np.ones((rows, cols), dtype=bool)
    away[130:190, 188:212] = False
    assert np.percentile(ink[away], 99.9) < FAINT


def test_chalk_on_a_board_clouded_where_it_was_wiped_is_light_ink():
    """A few light strokes on a board whose wiped clouds the brightness split runs through:
    the ink is light, and the clouds are paper."""
    rng = np.random.default_rng(4)
    rows, cols = 300, 400
    wiped = 0.08 * np.clip(clouds(rng, (rows, cols), 40), 0, None)
    gray = 0.18 + wiped + rng.normal(0, 0.01, (rows, cols))
    ys, xs = np.mgrid[0:rows, 0:cols]
    ring = np.abs(np.hypot(ys - 150, xs - 200) - 30) < 2.5  # a 0 in chalk
    gray[ring] = 0.9
    assert not fit_paper(gray.astype(np.float32)).dark_ink
    ink = ink_map(gray.astype(np.float32))
    assert np.median(ink[ring]) > 0.5
    assert np.percentile(ink[np.hypot(ys - 150, xs - 200) > 40], 99.9) < FAINT
