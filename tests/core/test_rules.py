"""Ruled lines through the digit are taken out of the ink; the digit's own strokes are not.

Through ``preprocess`` and the default model: a digit written across the rules of ruled or
squared paper (grey rules, level, tilted or upright, as dark as a pencil's stroke) gives the
28x28 picture of the same digit without rules (all but a stroke that runs along a rule for a
while). On ink maps: a stroke that crosses a rule stays whole, a thin rule that runs into
writing the frame cuts goes, a long stroke of a tightly cropped digit is no rule, and rules
alone stay.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from digitcore.checkpoint import load_model
from digitcore.preprocess import preprocess
from digitcore.rules import without_rules
from testkit.realistic import _digit_ink, same_strokes
from trainer.sheets import encode, paper_photo


@pytest.fixture(scope="module")
def model(default_model_path):
    torch.set_num_threads(1)
    loaded, _ = load_model(default_model_path)
    return loaded


def ruled(ink: np.ndarray, level: float, tilt: float = 0.0, upright: bool = False) -> np.ndarray:
    """``ink`` padded onto a page whose 2 px rules (ink ``level``) run every 30 px across it,
    ``tilt`` degrees from level, or upright too (squared paper)."""
    page = np.pad(ink, ink.shape[0] // 3)
    height, width = page.shape
    ys, xs = np.mgrid[0:height, 0:width]
    across = (ys - xs * np.tan(np.radians(tilt))) % 30 < 2
    if upright:
        across |= xs % 30 < 2
    return np.maximum(page, np.where(across, level, 0.0)).astype(np.float32)


def on_paper(ink: np.ndarray, seed: int) -> bytes:
    return encode(paper_photo(np.random.default_rng(seed), ink.shape, ink), "PNG")


@pytest.mark.parametrize(
    ("level", "tilt", "upright"),
    [(0.45, 0.0, False), (0.25, 0.0, False), (0.45, 2.0, False), (0.3, 0.0, True)],
)
def test_rules_through_the_digit_are_taken_out(model, mnist_test, level, tilt, upright):
    images, labels = (t.numpy() for t in mnist_test)
    rng = np.random.default_rng(3)
    cases = [(_digit_ink(images[i], rng, 120, 240), int(labels[i])) for i in range(10)]
    plain = preprocess([on_paper(ruled(ink, 0.0), i) for i, (ink, _) in enumerate(cases)])
    lined = preprocess(
        [on_paper(ruled(ink, level, tilt, upright), i) for i, (ink, _) in enumerate(cases)]
    )
    unchanged = [
        same_strokes(with_rules, without)
        for (_, without, *_), (_, with_rules, *_) in zip(plain, lined, strict=True)
    ]
    assert sum(unchanged) >= 9  # the same strokes: the rules gone, the digit whole
    with torch.inference_mode():
        digits = model(torch.stack([o.tensor for o in lined])).argmax(1).tolist()
    assert sum(d == label for d, (_, label) in zip(digits, cases, strict=True)) >= 9


def test_a_stroke_crossing_a_rule_stays_whole():
    ink = np.zeros((120, 200), dtype=np.float32)
    ink[60:62, :] = 0.5  # the rule
    ink[20:100, 95:105] = 1.0  # a stroke across it
    cleared = without_rules(ink)
    assert cleared[60:62, :20].max() == 0 and cleared[60:62, 180:].max() == 0
    assert (cleared[20:100, 95:105] == 1.0).all()
    assert ndimage.label(cleared > 0)[1] == 1


def test_a_thin_rule_into_writing_that_the_frame_cuts_is_taken_out():
    ink = np.zeros((120, 200), dtype=np.float32)
    ink[60:62, :] = 0.5  # the rule, from the left edge into the digit
    ink[20:100, 180:200] = 1.0  # a thick stroke at the right edge, cut by the frame
    cleared = without_rules(ink)
    assert cleared[60:62, :170].max() == 0
    assert (cleared[20:100, 180:200] == 1.0).all()
    thick = ink.copy()
    thick[56:66, :] = 1.0  # as thick as the stroke: a bar of the digit, not a rule
    assert (without_rules(thick) == thick).all()


def test_a_long_stroke_of_a_tightly_cropped_digit_is_no_rule():
    seven = np.zeros((100, 80), dtype=np.float32)
    seven[0:4, :] = 1.0  # the bar, from side to side
    for y in range(4, 100):  # the stem, from the bar's right end down and to the left
        x = round(79 - 0.5 * y)
        seven[y, x - 3 : x + 1] = 1.0
    assert (without_rules(seven) == seven).all()
    assert (without_rules(seven.T) == seven.T).all()


def test_rules_alone_are_what_was_sent():
    page = ruled(np.zeros((150, 150), dtype=np.float32), 0.5, upright=True)
    assert (without_rules(page) == page).all()
