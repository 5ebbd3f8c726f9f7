"""Find the digits of a picture of a whole number, each put in MNIST form for the model.

People photograph numbers (a meter reading, an amount, a year), not one digit at a time. The
picture goes through the single-digit pipeline's decode, paper model and ink map
(:mod:`digitcore.mnistify`); then:

1. Connected components of the ink, without frames, page edges, specks, minus signs and
   hyphens (:func:`_a_dash`) and the boxes and lines drawn round or under the number (as
   mnistify); where a pen that skips left the digits in pieces, the gaps closed first
   (:func:`bridged`).
2. A long line that runs uphill or downhill (a photo taken at an angle) is levelled: each
   column shifted up or down by the tilt under which the ink's rows are most concentrated.
   The writing's slant (the median lean of its steep strokes); columns are taken along it,
   so slanted digits stand upright. The line's height ``H``: what most columns of a component
   span, or nearly the components' median height.
3. Candidate boundaries (:mod:`digitcore.split_cuts`): straight cuts, leaning a little
   either way, and bent ones, the cheapest paths through the ink from top to bottom, where
   they cross the fewest strokes. Between two components a cut crosses no ink (and runs
   as far from it as it can: faint rims stay with their digits); between touching digits it
   crosses their contact; through one digit it mostly crosses two strokes. Of cuts nearly
   the same, the cheapest stays.
4. A digit is the ink between two boundaries. Every plausible pair is put in MNIST form like
   mnistify does one digit (stroke width, 20-px box, centre of mass) and read by the
   classifier passed in, which has been trained on these very runs
   (:mod:`trainer.number_pieces`): sure of a run holding one digit, unsure of pieces of
   digits and of pairs. Readings are softened (a high temperature): the shape of the split
   should weigh as much as the last bit of confidence. Dynamic programming picks the
   boundaries with the best total: the log confidence and a reward per digit (else fewer,
   larger runs would win for having fewer terms), less the cost of each cut (strokes
   crossed; a gap so narrow it is a broken stroke), of gaps left inside a digit (a 5's flag,
   a broken stroke: cheap when small) and of digits too short, too narrow or too wide for the
   line. A cut across a component too wide for one digit costs less (it likely holds two).
5. Where neighbours touch, the right cuts are often missing and a wrong tiling can win. A
   line reader (:mod:`digitcore.line_reader`), when given, reads the whole line without cuts
   (gaps wider than it learned narrowed); the tiling then holds as many digits as it read,
   where the candidate cuts allow that many (else the best tiling of any count stands), the
   k-th run valued by how likely the classifier and the line reader's k-th digit agree on it;
   each digit carries what the line reader read there, to be weighed with the classifier's
   reading of its cut-out ink.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from digitcore.errors import NoDigitFoundError, TooManyDigitsError
from digitcore.mnistify import (
    EIGHT_NEIGHBOURS,
    FAINT,
    _Component,
    fit_box,
    normalize_stroke,
    picture_ink,
    place_by_mass,
    stroke_width,
    to_luminance,
    without_guides,
)
from digitcore.rules import without_rules
from digitcore.split_cuts import CROSSED, bent_cuts, straight_cuts

Scorer = Callable[[list[np.ndarray]], np.ndarray]  # N 28x28 [0, 1] arrays -> N x 10 probabilities
LineReader = Callable[[np.ndarray], np.ndarray]  # a line's ink, slant removed -> N x 10
# probabilities of the N digits read along it

MAX_SLANT = 0.8  # steepest lean measured: px sideways per px of height
LINE_SHARE = 85  # the line's height: this percentile of the ink's column heights,
TALL_SHARE = 0.85  # or at least this share of the components' (mass-weighted) median height
SPECK = 0.3  # a component smaller than this share of H on both sides, and light, is a speck
SAME = 0.01  # cuts that split the ink within this share of it are the same cut
MAX_WIDTH = 1.6  # widest digit, in H
MIN_WIDTH = 0.05  # narrowest digit (a 1), in H
CUT_FROM = 0.45  # only components at least this share of H wide are cut
CUT_EDGE = 0.12  # and not closer than this share of H to their sides
NEAR = 0.15  # cuts nowhere further apart than this share of H are one cut
CUT = (0.3, 0.6, 0.15)  # a cut's cost: its own, per stroke crossed after the first, and per
# stroke width it runs along strokes beyond two
CLOSE = (1.0, 0.15)  # cutting through a gap costs up to this, less as it nears this width in H
JOIN = 6.0  # leaving a gap inside a digit costs this per H of gap
SHORT = (0.8, 6.0)  # a digit shorter than this share of H costs this much per H missing
WIDTHS = ((0.55, 1.05), (0.15, 0.75))  # usual widths in H of digits other than 1, and of 1s
WIDTH_COST = 4.0  # a digit outside its usual widths costs this much per H beyond them
CROWDED = 1.3  # a component at least this many H wide likely holds two digits or more:
RELIEF = 0.6  # cutting it across ink costs this much less, if both sides are at least
HALF = 0.4  # this many H wide
SOFTEN = 3.0  # readings are weighed at this temperature: softmax(logits / SOFTEN)
REWARD = 0.5  # each digit read earns this: a reading is not better for having fewer terms
LONG = 3.0  # a line at least this many H long is levelled where its rows drop or climb by
MIN_TILT = 0.05  # at least this many px per px to the right (3 degrees; less is the hand's
MAX_TILT = 0.3  # own wobble); tilts up to this (17 degrees) either way are tried,
TILTS = 61  # this many of them (an odd number: 0 among them), and taken where the band of
BAND = 0.9  # rows that holds this share of the ink is at least
NARROWER = 0.15  # this much narrower than unsheared
WIDE_GAP = 0.45  # the widest gap the line reader is shown, in H (it learned up to 0.5)
BROKEN = 2  # this many pieces of strokes under half a digit's height: a pen that skips,
BRIDGE = 0.75  # bridged by a closing this many stroke widths in radius
DASH = (0.25, 2.0, 0.3, 0.6)  # a piece at most this share of H tall and this many times wider
# than tall, beside the digits, level with their middle (this share of their height away from
# their top and bottom at least) and at least this share as dark, is a minus sign or a hyphen
CROPPED = 1.25  # a line across a picture at most this many times as tall as the other ink
# is a digit of a number cropped to its ink (it spans the picture only because of the crop)


@dataclass(frozen=True)
class DigitBox:
    """One digit of the number: where it is in the input image and what the model reads."""

    box: tuple[int, int, int, int]  # (x0, y0, x1, y1) in the input image's pixels, exclusive
    mnist: np.ndarray  # 28x28 float32 in [0, 1], MNIST form
    line: np.ndarray | None = None  # what the line reader read here (10 probabilities), if used


@dataclass
class _Line:
    """The ink of the number: its pixels, their columns along the slant, and its raster."""

    ys: np.ndarray
    xs: np.ndarray
    values: np.ndarray
    rows: np.ndarray  # each pixel's row in the raster
    cols: np.ndarray  # each pixel's column along the slant
    raster: np.ndarray  # rows x columns along the slant
    height: float  # H, a digit's height in pixels
    extents: np.ndarray  # each component's first and last column + 1


@dataclass
class _Boundary:
    """Where one digit may end and the next begin: a cut through the line, top to bottom."""

    path: np.ndarray  # per raster row, the last column on its left
    strokes: int  # how many strokes it crosses (0: it runs through a gap)
    along: float  # how far it runs along strokes, in stroke widths beyond two per stroke
    gap: float  # through a gap: how wide the gap is, in H
    position: float  # where it lies: the ink on its left, in share of the line's ink
    room: float = 0.0  # across ink: the width in H of the component it splits (< 0: near a side)

    @property
    def cut(self) -> float:
        """What cutting here costs: through a gap, the less the wider it is (a broken stroke
        leaves a narrow one); across ink, more for each stroke crossed, less (down to a
        gain) inside a component wide enough for two digits."""
        if self.strokes == 0:
            return CLOSE[0] * max(0.0, 1.0 - self.gap / CLOSE[1])
        relief = RELIEF if self.room >= CROWDED else 0.0
        return CUT[0] + CUT[1] * (self.strokes - 1) + CUT[2] * self.along - relief

    @property
    def skip(self) -> float:
        """What leaving this gap inside a digit costs (a 5's flag, a broken stroke)."""
        return JOIN * self.gap


def read_digits(
    image: Image.Image,
    score: Scorer,
    max_digits: int = 12,
    read_line: LineReader | None = None,
) -> list[DigitBox]:
    """The digits of a picture of a number, left to right, each in MNIST form.

    ``score`` is the classifier (a :data:`Scorer`); it decides between ways of splitting
    touching or broken digits. ``read_line`` (a :data:`LineReader`), when given, reads the
    whole line first: the split then holds as many digits as it read, where the candidate
    cuts allow that many, and each digit's ``line`` is what it read there. Boxes are in
    ``image``'s pixels: where the upload was decoded reduced
    (:func:`~digitcore.preprocess.decode_image` drafts large JPEGs), scale them by the
    upload's size over ``image.size``. Raises :class:`~digitcore.errors.NoDigitFoundError` for
    a picture without digits and :class:`~digitcore.errors.TooManyDigitsError` for one that
    holds more than ``max_digits``.
    """
    gray = to_luminance(image)
    ink, (top, left) = picture_ink(gray)
    ink = bridged(ink)
    line = _line(ink, level=True)
    if line.raster.shape[1] > 2 * MAX_WIDTH * max_digits * line.height:
        raise TooManyDigitsError(f"the writing is too long for a number of {max_digits} digits")
    boundaries = _boundaries(line, mid_gap=True)
    sides = [line.cols > b.path[line.rows] for b in boundaries]
    scored = _scored(line, boundaries, sides, score)
    read = read_line(_reading_view(line)) if read_line is not None else np.empty((0, 10))
    groups = _choose(line, boundaries, sides, scored, read) if len(read) else None
    if groups is None:
        groups, read = _choose(line, boundaries, sides, scored), None
    if len(groups) > max_digits:
        raise TooManyDigitsError(f"more than {max_digits} digits found: send one number at a time")
    scale_y, scale_x = image.height / gray.shape[0], image.width / gray.shape[1]
    digits = []
    for index, pick in enumerate(groups):
        clear = pick[line.values[pick] >= CROSSED]  # not the faint rim of a neighbour's stroke
        ys, xs = line.ys[clear if clear.size else pick], line.xs[clear if clear.size else pick]
        box = (
            int(np.floor((left + xs.min()) * scale_x)),
            int(np.floor((top + ys.min()) * scale_y)),
            int(np.ceil((left + xs.max() + 1) * scale_x)),
            int(np.ceil((top + ys.max() + 1) * scale_y)),
        )
        digits.append(DigitBox(box, _mnist(line, pick), None if read is None else read[index]))
    return digits


def bridged(ink: np.ndarray) -> np.ndarray:
    """The ink with the gaps of a pen that skips closed, where it has them.

    A dry pen, chalk or a pencil on rough paper leaves a digit in pieces a stroke's width
    apart or less; cut at those gaps, one digit read as two or three. A grey closing by a
    disc one and a half strokes wide joins such pieces. It is kept only where the ink has
    ``BROKEN`` pieces or more under half the tallest one's height, and one for every two
    taller ones (a digit written whole has none, or a 5's flag, a dotted 0's dot), and the
    closing joins most of them to others: else digits written close together would be joined
    too, and their ink stays as it was.
    """
    width = stroke_width(ink)
    small, tall = _pieces(ink, width)
    if small < max(BROKEN, tall / 2):
        return ink
    radius = max(1, round(BRIDGE * width))
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    closed = ndimage.grey_closing(ink, footprint=yy**2 + xx**2 <= radius**2)
    return closed if 2 * _pieces(closed, width)[0] <= small else ink


def _pieces(ink: np.ndarray, width: float) -> tuple[int, int]:
    """How many pieces of ink holding a stroke's width squared of full-strength ink (strokes
    and their pieces, not specks) are under half the tallest one's height, and how many are
    not."""
    labels, count = ndimage.label(ink > FAINT, structure=EIGHT_NEIGHBOURS)
    if count == 0:
        return 0, 0
    strong = np.bincount(labels[ink >= 0.5], minlength=count + 1)[1:]
    heights = np.array([b[0].stop - b[0].start for b in ndimage.find_objects(labels)])
    pieces = strong >= width**2
    small = pieces & (heights < 0.5 * heights[pieces].max(initial=0))
    return int(np.count_nonzero(small)), int(np.count_nonzero(pieces & ~small))


def number_from(probabilities: np.ndarray) -> str:
    """The number the model read: the most probable class of each digit, left to right."""
    return "".join(str(int(k)) for k in np.asarray(probabilities).argmax(axis=1))


def _components(ink: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The components that may be digits, as (ys, xs, values): no frames, edges, guides or
    specks."""
    ink = without_rules(ink)
    labels, count = ndimage.label(ink > 0, structure=EIGHT_NEIGHBOURS)
    height, width = ink.shape
    strong = np.bincount(labels[ink >= 0.5], minlength=count + 1)  # specks of faint noise: none
    found = []
    for index, box in enumerate(ndimage.find_objects(labels)):
        if strong[index + 1] == 0:
            continue
        mask = labels[box] == index + 1
        values = ink[box][mask]
        touches = (
            box[0].start == 0 or box[1].start == 0 or box[0].stop == height or box[1].stop == width
        )
        found.append((_Component(index + 1, float(values.sum()), int(mask.sum()), box, touches),
                      mask, values))  # fmt: skip
    frames = {id(p) for p, _, _ in found if p.frame_like(labels)}
    kept = [f for f in found if id(f[0]) not in frames] or found
    if frames and kept is not found:  # a line across a picture cropped to the number: a digit?
        tallest = max(p.extent[0] for p, _, _ in kept)
        kept = [f for f in found if id(f[0]) not in frames or _cropped_digit(f[0], labels, tallest)]
    written = {id(part) for part in without_guides([p for p, _, _ in kept], labels)}
    kept = [f for f in kept if id(f[0]) in written]
    if not kept:
        raise NoDigitFoundError("no digit found: the image holds no clear strokes")
    sizes = np.array([[p.box[0].stop - p.box[0].start, p.box[1].stop - p.box[1].start]
                      for p, _, _ in kept], dtype=float)  # fmt: skip
    masses = np.array([p.mass for p, _, _ in kept])
    order = np.argsort(sizes[:, 0])
    middle = np.searchsorted(np.cumsum(masses[order]), masses.sum() / 2)
    tall = float(sizes[order][middle, 0])  # the mass-weighted median height
    if tall < max(3, 0.04 * max(height, width)):
        raise NoDigitFoundError("no digit found: only specks, nothing the size of a digit")
    typical = float(np.median(masses[sizes[:, 0] >= 0.6 * tall]))
    pieces = [p for p, _, _ in kept]
    parts = []
    for (part, mask, values), size in zip(kept, sizes, strict=True):
        if size.max() < SPECK * tall and part.mass < 0.15 * typical:
            continue
        if _a_dash(part, pieces, labels, tall):
            continue
        ys, xs = np.nonzero(mask)
        parts.append((ys + part.box[0].start, xs + part.box[1].start, values))
    return parts


def _a_dash(part: _Component, pieces: list[_Component], labels: np.ndarray, tall: float) -> bool:
    """Whether ``part`` is a minus sign or a hyphen (-42, 555-1234), which is no digit: flat
    (``DASH``), no longer than a digit is tall, with no other piece's ink in its own rows and
    columns (a 4's or a 7's bar drawn apart from its stem has the stem there), at most half
    of it over another piece's box (a 5's flag drawn apart lies over its bowl), before a
    digit, level with the middle of the writing after it and before it, if any: pieces taller
    than it (a 5's flag or a 7's bar drawn apart is level with its digit's top, even a small
    5's, and ends a number when it is the last), and as dark as that writing (not a faint
    digit's broken stroke). ``pieces`` are all the ink's pieces, ``tall`` a digit's height."""
    height, width = part.extent
    if height > DASH[0] * tall or width < DASH[1] * height or width > tall:
        return False
    others = [p for p in pieces if p is not part]
    rows, cols = part.box
    if np.isin(labels[rows, cols], [p.label for p in others]).any():
        return False
    if any(min(cols.stop, p.box[1].stop) - max(cols.start, p.box[1].start) > width / 2
           for p in others):  # fmt: skip
        return False
    writing = [p for p in others if p.extent[0] > height]
    before = [p for p in writing if p.box[1].start < cols.start]
    after = [p for p in writing if p.box[1].stop > cols.stop]
    if not after or not any(p.extent[0] >= 0.6 * tall for p in after):
        return False
    beside = [min(after, key=lambda p: p.box[1].start)]
    if before:
        beside.append(max(before, key=lambda p: p.box[1].stop))
    middle = (rows.start + rows.stop) / 2
    return all(
        p.box[0].start + DASH[2] * p.extent[0] <= middle <= p.box[0].stop - DASH[2] * p.extent[0]
        and part.mass / part.area >= DASH[3] * p.mass / p.area
        for p in beside
    )


def _cropped_digit(part: _Component, labels: np.ndarray, tallest: int) -> bool:
    """Whether a line across the picture is a digit of a number cropped close to its ink: no
    taller than the other digits (by ``CROPPED``), no wider than a digit, not along a side."""
    height, width = part.extent
    return (
        part.crosses(labels)
        and height <= CROPPED * tallest
        and width <= MAX_WIDTH * tallest
        and not part.along_side(labels)
    )


def _line(ink: np.ndarray, level: bool = False) -> _Line:
    """The kept ink as one line: slant found, columns along it, raster and height. With
    ``level``, a long line that runs uphill or downhill (a photo taken at an angle) is
    levelled first; the trainer's rows are drawn level, so it reads them as they are."""
    parts = _components(ink)
    ys, xs, values = (np.concatenate([part[k] for part in parts]) for k in range(3))
    line = _raster(parts, ys, xs, values, ys - ink.shape[0] / 2)
    if level and line.raster.shape[1] >= LONG * line.height:
        tilt = _tilt(ys, xs, values)
        if tilt:
            levelled = ys - np.round(tilt * (xs - xs.min())).astype(int)
            line = _raster(parts, ys, xs, values, levelled - ink.shape[0] / 2)
    return line


def _raster(
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    ys: np.ndarray,
    xs: np.ndarray,
    values: np.ndarray,
    heights: np.ndarray,
) -> _Line:
    """The line of the pixels at (``ys``, ``xs``) with each pixel's row in the raster taken
    from its ``heights`` (``ys`` less a constant, or levelled): slant, columns and height."""
    level = np.round(heights - heights.min()).astype(int)
    kept = np.zeros((level.max() + 1, xs.max() + 1 - xs.min()), dtype=np.float32)
    kept[level, xs - xs.min()] = values
    slant = _slant(kept)
    u = np.floor(xs + slant * heights).astype(int)
    rows, cols = level, u - u.min()
    raster = np.zeros((rows.max() + 1, cols.max() + 1), dtype=np.float32)
    raster[rows, cols] = values
    spans, extents, tall, start = [], [], [], 0
    for part in parts:  # column heights per component: touching digits do not stack up
        span = slice(start, start + part[0].size)
        start = span.stop
        top = np.full(raster.shape[1], np.inf)
        bottom = np.full(raster.shape[1], -np.inf)
        np.minimum.at(top, cols[span], rows[span])
        np.maximum.at(bottom, cols[span], rows[span])
        spans.append((bottom - top + 1)[np.isfinite(top)])
        extents.append((int(cols[span].min()), int(cols[span].max()) + 1))
        tall.append(int(rows[span].max()) + 1 - int(rows[span].min()))
    masses = np.array([part[2].sum() for part in parts])
    order = np.argsort(tall)
    middle = np.searchsorted(np.cumsum(masses[order]), masses.sum() / 2)
    height = max(
        float(np.percentile(np.concatenate(spans), LINE_SHARE)),
        TALL_SHARE * tall[order[min(middle, order.size - 1)]],
        3.0,
    )
    return _Line(ys, xs, values, rows, cols, raster, height, np.array(extents))


def _tilt(ys: np.ndarray, xs: np.ndarray, values: np.ndarray) -> float:
    """How far the line's rows drop per px to the right: of the vertical shears up to
    :data:`MAX_TILT` either way, the one under which the band of rows holding the middle
    :data:`BAND` of the ink is narrowest, if it is at least :data:`NARROWER` narrower than
    unsheared and the shear is at least :data:`MIN_TILT` (else 0: the line is level)."""
    across = xs - xs.mean()
    tilts = np.linspace(-MAX_TILT, MAX_TILT, TILTS)
    spans = []
    for tilt in tilts:
        rows = np.round(ys - tilt * across).astype(int)
        mass = np.cumsum(np.bincount(rows - rows.min(), weights=values))
        low, high = np.searchsorted(mass, [(1 - BAND) / 2 * mass[-1], (1 + BAND) / 2 * mass[-1]])
        spans.append(high - low + 1)
    best = int(np.argmin(spans))
    level = spans[TILTS // 2]
    if abs(tilts[best]) < MIN_TILT or spans[best] > (1 - NARROWER) * level:
        return 0.0
    return float(tilts[best])


def _slant(ink: np.ndarray) -> float:
    """How far the writing leans: px to the right per px up, along its steep strokes.

    Across a stroke leaning by ``s``, ink changes ``s`` times as fast downwards as sideways;
    the median of that ratio over the edges of steep strokes (weighted by their strength).
    """
    smooth = ndimage.gaussian_filter(ink, 1.0)
    across = ndimage.sobel(smooth, axis=1)
    down = ndimage.sobel(smooth, axis=0)
    steep = np.abs(across) > np.abs(down) / MAX_SLANT
    if not steep.any():
        return 0.0
    ratios = down[steep] / across[steep]
    weights = across[steep] ** 2 + down[steep] ** 2
    order = np.argsort(ratios)
    middle = np.searchsorted(np.cumsum(weights[order]), weights.sum() / 2)
    return float(ratios[order][min(middle, order.size - 1)])


def _boundaries(line: _Line, mid_gap: bool = False) -> list[_Boundary]:
    """The line's two ends and the distinct candidate cuts, left to right.

    Cuts through one gap all split the clear ink alike; with ``mid_gap`` the one kept runs
    furthest from it, so that each side's faint rim stays with its digit (a cut hugging one
    digit gives its rim to the next, whose run can then look too wide to be a digit). The
    trainer's runs (:func:`candidates`) are cut as the served model learned them: the first
    such cut found; retraining on mid-gap cuts is left to the next change of the recipe."""
    raster, height = line.raster, line.height
    rows, width = raster.shape
    total = float(raster.sum())
    stroke = max(stroke_width(raster), 1.0)
    nearest = _nearest_ink(raster)
    found = [  # the ends: no cost to cut there
        _Boundary(np.full(rows, -1), 0, 0.0, CLOSE[1], 0.0),
        _Boundary(np.full(rows, width - 1), 0, 0.0, CLOSE[1], 1.0),
    ]
    cuts = [
        (strokes, along, *(_gap(nearest, path) if strokes == 0 else (0.0, 0.0)), path)
        for strokes, along, path in straight_cuts(raster, stroke) + bent_cuts(raster, stroke)
    ]
    shares: list[float] = []
    paths = np.empty((0, rows), dtype=int)
    order = sorted(cuts, key=lambda c: (c[0], c[1], -c[2], -c[3] if mid_gap else 0.0))
    for strokes, along, gap, _, path in order:
        on_left = float(line.values[line.cols <= path[line.rows]].sum()) / total
        room = _room(line, path[rows // 2]) if strokes else 0.0
        if (strokes and abs(room) < CUT_FROM) or not 0.01 < on_left < 0.99:
            continue
        if shares and (
            min(abs(on_left - share) for share in shares) < SAME
            or np.abs(paths - path).max(axis=1).min() < NEAR * height
        ):
            continue  # (nearly) the same cut as a cheaper one
        shares.append(on_left)
        paths = np.vstack((paths, path))
        found.append(_Boundary(path, strokes, along, gap / height, on_left, room))
    return sorted(found, key=lambda b: b.position)


def _room(line: _Line, column: int) -> float:
    """The width, in H, of the widest component a cut across ink at ``column`` lies inside,
    away from its sides (0: none); negative where the cut is near a side, so that one side
    is too narrow for most digits."""
    low, high = line.extents[:, 0], line.extents[:, 1]
    edge = CUT_EDGE * line.height
    inside = (low + edge <= column) & (column <= high - edge)
    if not inside.any():
        return 0.0
    widest = int(np.argmax(np.where(inside, high - low, -1)))
    side = min(column - low[widest], high[widest] - column) / line.height
    width = float(high[widest] - low[widest]) / line.height
    return width if side >= HALF else -width


def _nearest_ink(raster: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row and column, the nearest column of clear ink (not the faint rim that blurring
    leaves) at or left of it, and at or right of it (-1e6 and 1e6 where there is none)."""
    far = 10**6
    columns = np.arange(raster.shape[1])[None, :]
    clear = raster > CROSSED
    lefts = np.maximum.accumulate(np.where(clear, columns, -far), axis=1)
    rights = np.minimum.accumulate(np.where(clear, columns, far)[:, ::-1], axis=1)[:, ::-1]
    return lefts, rights


def _gap(nearest: tuple[np.ndarray, np.ndarray], path: np.ndarray) -> tuple[float, float]:
    """The narrowest gap, in pixels, between the ink on either side of an ink-free path, and
    the path's clearance: how near it comes to that ink (the wider, the nearer the middle of
    the gap it runs, so that the faint rims on either side stay with their own digits)."""
    lefts, rights = nearest
    width = lefts.shape[1]
    rows = np.arange(path.size)
    left = np.where(path >= 0, lefts[rows, np.clip(path, 0, width - 1)], -(10**6))
    right = np.where(path + 1 < width, rights[rows, np.clip(path + 1, 0, width - 1)], 10**6)
    both = (left >= 0) & (right < width)
    if not both.any():
        return 0.0, 0.0
    clear = np.minimum(path - left, right - path - 1)
    return float((right - left - 1)[both].min()), float(clear[both].min())


@dataclass(frozen=True)
class Candidate:
    """Ink between two candidate cuts that may be one digit: what the classifier is asked."""

    ys: np.ndarray  # its pixels in the ink map
    xs: np.ndarray
    mnist: np.ndarray  # 28x28 float32 in [0, 1], MNIST form


def candidates(ink: np.ndarray) -> list[Candidate]:
    """Every run of an ink map (as :func:`~digitcore.mnistify.picture_ink` gives) between two
    candidate cuts that the reader weighs as a digit, in MNIST form. The trainer teaches the
    classifier what these look like: a digit, or a piece or pair of digits (not a digit)."""
    line = _line(ink)
    boundaries = _boundaries(line)
    sides = [line.cols > b.path[line.rows] for b in boundaries]
    return [
        Candidate(line.ys[pick], line.xs[pick], _mnist(line, pick))
        for _, pick in _runs(line, boundaries, sides)
    ]


def _runs(
    line: _Line, boundaries: list[_Boundary], sides: list[np.ndarray]
) -> list[tuple[tuple[int, int], np.ndarray]]:
    """Every run between two boundaries (that do not cross) as wide as a digit may be: the
    pair of boundaries and the indices of its pixels."""
    count = len(boundaries)
    runs = []
    for first in range(count - 1):
        for last in range(first + 1, count):
            if np.any(boundaries[last].path < boundaries[first].path):
                continue  # the cuts cross
            pick = np.nonzero(sides[first] & ~sides[last])[0]
            if pick.size == 0:
                continue
            cols = line.cols[pick]
            wide = (cols.max() + 1 - cols.min()) / line.height
            if wide > MAX_WIDTH:
                break
            if wide < MIN_WIDTH:
                continue
            runs.append(((first, last), pick))
    return runs


def _scored(
    line: _Line, boundaries: list[_Boundary], sides: list[np.ndarray], score: Scorer
) -> dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]:
    """Every run between two boundaries that may be a digit: its pixels and what the
    classifier reads there (softened by :data:`SOFTEN`)."""
    found = _runs(line, boundaries, sides)
    if not found:
        raise NoDigitFoundError("no digit found: nothing the size of a digit")
    runs = [run for run, _ in found]
    picks = [pick for _, pick in found]
    forms = [_mnist(line, pick) for pick in picks]
    probabilities = np.array(score(forms), dtype=np.float64)
    probabilities = probabilities ** (1 / SOFTEN)  # the scorer's softmax, at a temperature
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    return dict(zip(runs, zip(picks, probabilities, strict=True), strict=True))


def _choose(
    line: _Line,
    boundaries: list[_Boundary],
    sides: list[np.ndarray],
    scored: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]],
    reading: np.ndarray | None = None,
) -> list[np.ndarray] | None:
    """The runs that tile the line with the best total value (dynamic programming).

    Given the line reader's ``reading`` (N x 10), exactly N digits, the k-th valued by how
    likely the classifier and the line reader's k-th digit agree on it (None when no tiling
    has N digits); otherwise any number, each valued by the classifier's confidence."""
    count = len(boundaries)
    most = len(reading) if reading is not None else count
    best = np.full((count, most + 1), -np.inf)  # best[b, k]: the line up to b in k digits
    best[0, 0] = 0.0
    back: dict[tuple[int, int], tuple[int, int]] = {}
    for last in range(1, count):
        skipped = 0.0
        for first in range(last - 1, -1, -1):
            if first < last - 1:
                skipped += boundaries[first + 1].skip
            found = scored.get((first, last))
            if found is None:
                if np.any(sides[first] & ~sides[last]):
                    continue
                values, added = np.zeros(most + 1), 0  # no ink between them: no digit
            else:
                values, added = _values(line, found[0], found[1], reading, most), 1
            values = values - boundaries[last].cut - skipped
            totals = best[first, : most + 1 - added] + values[: most + 1 - added]
            better = totals > best[last, added:]
            for k in np.nonzero(better)[0]:
                best[last, k + added] = totals[k]
                back[(last, int(k) + added)] = (first, int(k))
    ends = best[count - 1]
    if reading is not None:
        if not np.isfinite(ends[most]):
            return None
        k = most
    elif np.isfinite(ends).any():
        k = int(np.argmax(ends))
    else:
        raise NoDigitFoundError("no digit found: nothing the size of a digit")
    groups = []
    last = count - 1
    while last > 0:
        first, before = back[(last, k)]
        if before < k:
            groups.append(scored[(first, last)][0])
        last, k = first, before
    return groups[::-1]


def _values(
    line: _Line, pick: np.ndarray, probabilities: np.ndarray, reading: np.ndarray | None, most: int
) -> np.ndarray:
    """What the pixels are worth as the (k+1)-th digit, for each k < ``most``: the reward, the
    log confidence (of the classifier's digit; with a ``reading``, that the classifier and
    the reading's (k+1)-th digit agree), less the shape penalties."""
    if reading is None:
        digits = np.full(most, int(np.argmax(probabilities)))
        sure = np.full(most, float(probabilities[digits[0]]))
    else:
        digits = reading.argmax(axis=1)
        sure = reading @ probabilities
    rows, cols = line.rows[pick], line.cols[pick]
    tall = (rows.max() + 1 - rows.min()) / line.height
    wide = (cols.max() + 1 - cols.min()) / line.height
    low = np.where(digits == 1, WIDTHS[1][0], WIDTHS[0][0])
    high = np.where(digits == 1, WIDTHS[1][1], WIDTHS[0][1])
    values = REWARD + np.log(np.maximum(sure, 1e-9))
    values -= SHORT[1] * max(0.0, SHORT[0] - tall)
    values -= WIDTH_COST * np.maximum(0.0, np.maximum(low - wide, wide - high))
    return np.append(values, 0.0)  # (no digit after the last)


def _mnist(line: _Line, pick: np.ndarray) -> np.ndarray:
    """The picked pixels' ink, unslanted as drawn, in MNIST form as mnistify does one digit."""
    ys, xs = line.ys[pick], line.xs[pick]
    top, left = int(ys.min()), int(xs.min())
    crop = np.zeros((int(ys.max()) + 1 - top, int(xs.max()) + 1 - left), dtype=np.float32)
    crop[ys - top, xs - left] = line.values[pick]
    return place_by_mass(fit_box(normalize_stroke(crop)))


def line_raster(ink: np.ndarray) -> np.ndarray:
    """The kept ink of an ink map as one line (rows x columns along the slant, so that slanted
    digits stand upright), cropped to the ink: what the line reader learns from (the trainer's
    rows are drawn level, with gaps it reads as they are)."""
    return _line(ink).raster


def _reading_view(line: _Line) -> np.ndarray:
    """The line's raster with every gap wider than :data:`WIDE_GAP` H narrowed to that: the
    line reader learned gaps up to half a digit's height, and it may read a wider one as a
    digit more."""
    gaps, _ = ndimage.label(line.raster.max(axis=0) == 0)
    widest = max(1, round(WIDE_GAP * line.height))
    keep = np.ones(gaps.size, dtype=bool)
    for (gap,) in ndimage.find_objects(gaps):
        keep[gap.start + widest : gap.stop] = False
    return line.raster[:, keep]
