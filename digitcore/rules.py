"""Ruled lines that cross the writing, taken out of the ink.

People write on ruled and squared paper. A rule that misses the digit is a component of its
own and the frame filter drops it (:meth:`digitcore.mnistify._Component.frame_like`); one that
runs through the digit joins it, and without this step the crop held the whole width of the
rule. Here a rule is a thin straight band of ink (level or upright, or tilted up to 3
degrees) that runs from one edge of the picture to the other, away from the edges along it
(a frame is the frame filter's), and past the ink it touches on both sides (or on one, when
it is clearly thinner than the strokes and the writing runs out of the picture on the
other). Its pixels are cleared, except where the digit's ink goes on right above and right
below (a stroke that crosses the rule, a bar lying on it). A long stroke of a tightly cropped
digit (a 7's bar) ends in the rest of the digit, so it is no rule; the sides of a box drawn
round the digit do not reach the edges, so they are left to the guides
(:func:`digitcore.mnistify.without_guides`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

RULE_SPAN = 0.9  # a rule has ink in this share of the columns its line has in the picture,
RULE_REACH = 0.5  # (which are at least this share of the width: a tilted line runs out)
WINDOW = 3  # inked within this many rows along its tilt,
EDGE_GAP = 0.01  # its ends this close to the picture's edges (share of the width), or closer
EDGE = 2  # rows beside its most inked ones that are the rule's too (its blurred edges)
RULE_ROW = 0.5  # its rows: inked this much as its most inked row (the rest: strokes on it)
RULE_THIN = 0.05  # at most this share of the picture thick (as the frame filter's lines)
RULE_PAST = 0.05  # it reaches past the ink it touches by this share of the picture, each side
TILTS = np.linspace(-3.0, 3.0, 13)  # degrees: rules in photos are seldom level
INK = 0.0  # any ink counts: a faint rule fades further next to dark strokes
ADJACENT = 2  # px: a stroke crossing a rule has ink this close to both of its edges
THINNER = 0.6  # a rule this thin against the strokes may end in writing cut by the frame
PIECE, STRONG = 0.1, 0.5  # the ink levels of a component, and of some of its ink
MIN_SIDE = 32  # px: smaller pictures (MNIST's 28) have no room for rules; there a JPEG's
# ringing carries a stroke that ends a few pixels short of the edges on to them
EIGHT_NEIGHBOURS = np.ones((3, 3))


def without_rules(ink: np.ndarray) -> np.ndarray:
    """``ink`` with the ruled lines that cross the picture cleared (level and upright ones),
    the digit's own strokes kept."""
    height, width = ink.shape
    if min(height, width) < MIN_SIDE:
        return ink
    marked = ink > INK
    level = _rules(marked, max(2, round(RULE_THIN * height)))
    upright = [band.T for band in _rules(marked.T, max(2, round(RULE_THIN * width)))]
    if not level and not upright:
        return ink
    rest = marked & ~np.logical_or.reduce(level + upright)
    pieces = _pieces(ink, rest)
    if not pieces.any():
        return ink  # nothing but rules: that is what was sent
    cleared = ink.copy()
    for bands, flip in ((level, False), (upright, True)):
        turn = (lambda array: array.T) if flip else (lambda array: array)
        for band in bands:
            if _reaches_past(turn(band), turn(pieces), turn(ink)):
                cleared[band & ~turn(_crossed(turn(band), turn(rest)))] = 0.0
    return cleared


def _rules(marked: np.ndarray, thin: int) -> list[np.ndarray]:
    """The level rules of ``marked`` (rows of the array), each as a mask of its ink."""
    if not _may_cross(marked, thin):
        return []
    found = sorted(
        (found for tilt in TILTS for found in _bands(marked, tilt, thin)),
        key=lambda found: -found[0],
    )  # a rule seen at neighbouring tilts: the tilt that lines it up best
    rules, taken = [], np.zeros_like(marked)
    for _, band in found:
        if not (band & taken).any():
            rules.append(band)
            taken |= band
    return [band for band in rules if _edge_to_edge(band)]


def _pieces(ink: np.ndarray, rest: np.ndarray) -> np.ndarray:
    """The ink besides the rules as labelled components, as the digit's are taken (at
    ``PIECE`` and holding some ``STRONG`` ink): specks of paper noise are none."""
    pieces, count = ndimage.label(rest & (ink > PIECE), structure=EIGHT_NEIGHBOURS)
    strong = np.bincount(pieces[ink >= STRONG], minlength=count + 1) > 0
    strong[0] = False
    return np.where(strong[pieces], pieces, 0)


def _may_cross(marked: np.ndarray, thin: int) -> bool:
    """Whether some band of rows as deep as a rule at the steepest tilt has ink in nearly
    every column (cheap: most pictures have no rules, and this spares them the search)."""
    height, width = marked.shape
    deep = min(height, thin + WINDOW + int(np.ceil(width * np.tan(np.radians(TILTS.max())))))
    inked = ndimage.maximum_filter1d(marked.view(np.uint8), deep, axis=0)
    return bool((np.count_nonzero(inked, axis=1) >= RULE_SPAN * width).any())


def _bands(marked: np.ndarray, tilt: float, thin: int) -> list[tuple[float, np.ndarray]]:
    """The ink of each thin band at ``tilt`` degrees in which ``marked`` crosses the picture
    (sheared so that the band lies level, its columns nearly all inked within ``WINDOW``
    rows), with the share of the columns that its most inked row holds."""
    height, width = marked.shape
    drift = np.round(np.arange(width) * np.tan(np.radians(tilt))).astype(int)
    drift -= drift.min()
    ys, xs = np.nonzero(marked)
    sheared = np.zeros((height + drift.max() + WINDOW, width), dtype=bool)
    sheared[ys - drift[xs] + drift.max(), xs] = True
    lines = height + drift.max()
    windowed = np.logical_or.reduce([sheared[k : k + lines] for k in range(WINDOW)])
    edges = np.zeros(lines + WINDOW + 1, dtype=int)  # columns in the picture, per sheared row
    np.add.at(edges, drift.max() - drift, 1)
    np.add.at(edges, drift.max() - drift + height, -1)
    inside = np.maximum.reduce([np.cumsum(edges)[k : k + lines] for k in range(WINDOW)])
    crossing = (windowed.sum(axis=1) >= RULE_SPAN * inside) & (inside >= RULE_REACH * width)
    bands = []
    for (span,) in ndimage.find_objects(ndimage.label(crossing)[0]):
        across = sheared[span.start : span.stop + WINDOW - 1].sum(axis=1)
        runs, _ = ndimage.label(across >= RULE_ROW * across.max())
        core = np.nonzero(runs == runs[across.argmax()])[0] + span.start
        if core[-1] - core[0] >= thin:
            continue  # a broad dark band (a page edge, a shadow), not a rule
        level = ys - drift[xs] + drift.max()
        taken = (level >= core[0] - EDGE) & (level <= core[-1] + EDGE)
        band = np.zeros_like(marked)
        band[ys[taken], xs[taken]] = True
        bands.append((float(across.max()) / width, band))
    return bands


def _edge_to_edge(rule: np.ndarray) -> bool:
    """Whether the level ``rule`` runs from the picture's left edge to its right edge (a
    sheet's rule, cut by the frame), not within it (a side of a box round the digit), nor
    along its top or bottom edge (a frame: the frame filter's)."""
    height, width = rule.shape
    rows = np.nonzero(rule.any(axis=1))[0]
    cols = np.nonzero(rule.any(axis=0))[0]
    gap = max(2, round(EDGE_GAP * width))
    across = cols[0] <= gap and cols[-1] >= width - 1 - gap
    return across and gap < rows[0] and rows[-1] < height - 1 - gap


def _reaches_past(rule: np.ndarray, pieces: np.ndarray, ink: np.ndarray) -> bool:
    """Whether ``rule`` runs past the ink it touches on both sides (a rule under the writing),
    not into it (a long stroke of a digit cropped to its ink). Where the writing runs out of
    the picture on one side, a rule clearly thinner than its strokes needs to run past it on
    the other side only."""
    touching = np.unique(pieces[ndimage.binary_dilation(rule, EIGHT_NEIGHBOURS)])
    touching = touching[touching > 0]
    if touching.size == 0:
        return True
    cols = np.nonzero(rule.any(axis=0))[0]
    written = np.isin(pieces, touching)
    inked = np.nonzero(written.any(axis=0))[0]
    margin = max(3, RULE_PAST * rule.shape[1])
    before, after = inked[0] - cols[0] >= margin, cols[-1] - inked[-1] >= margin
    if before and after:
        return True
    if not (before or after) or _thickness(rule & (ink > PIECE)) > THINNER * _stroke(written):
        return False
    return inked[0] < margin if after else inked[-1] > rule.shape[1] - 1 - margin


def _thickness(rule: np.ndarray) -> float:
    """The level ``rule``'s typical thickness in px (the median over its columns)."""
    thickness = rule.sum(axis=0)
    return float(np.median(thickness[thickness > 0])) if thickness.any() else 0.0


def _stroke(mask: np.ndarray) -> float:
    """The typical width of the strokes of ``mask``: twice its area over its outline."""
    outline = mask & ~ndimage.binary_erosion(mask)
    return 2.0 * mask.sum() / max(1, outline.sum())


def _crossed(rule: np.ndarray, rest: np.ndarray) -> np.ndarray:
    """The columns of the level ``rule`` where the rest of the ink goes on right above and
    right below it (a stroke that crosses it or lies on it), as a mask of the rule's rows."""
    height = rule.shape[0]
    cols = np.nonzero(rule.any(axis=0))[0]
    top = rule[:, cols].argmax(axis=0)
    bottom = height - 1 - rule[::-1, cols].argmax(axis=0)
    above = np.zeros(cols.size, dtype=bool)
    below = np.zeros(cols.size, dtype=bool)
    for step in range(1, ADJACENT + 1):
        above |= rest[np.clip(top - step, 0, height - 1), cols] & (top - step >= 0)
        below |= rest[np.clip(bottom + step, 0, height - 1), cols] & (bottom + step < height)
    crossed = np.zeros_like(rule)
    crossed[:, cols[above & below]] = True
    return crossed
