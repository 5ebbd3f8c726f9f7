"""Candidate cuts between touching digits, for :mod:`digitcore.segment`.

A cut is a path through the line from its top row to its bottom one, one column per row (the
last column on its left). Two kinds are tried: straight lines, leaning a little either way
from the writing's slant, and bent paths: the cheapest ways from top to bottom through given
points, where ink costs its strength and a step sideways costs a little plus the contact it
separates from the row above. A bent path crosses touching digits at their thinnest contact,
then winds around their bowls, or runs along where one digit's bar lies on the next. Either
way the candidates are where the cut is cheapest (local minima along the line).
"""

from __future__ import annotations

import numpy as np

LEANS = (-0.3, -0.15, 0.0, 0.15, 0.3)  # straight cuts lean this much more than the writing
CROSSED = 0.3  # ink at least this strong on a path is a stroke it crosses
MAX_STROKES = 2  # cuts crossing more strokes than this are not tried
THROUGH = (0.35, 0.5, 0.65)  # bent paths pass through points on these rows (share of height)
JUMP = 3  # the most columns a bent path moves sideways from one row to the next
SIDEWAYS = 0.25  # a bent path's cost of a step sideways, against 1 for a pixel of full ink


def straight_cuts(raster: np.ndarray, stroke: float) -> list[tuple[int, float, np.ndarray]]:
    """Straight cuts as (strokes crossed, run along them, path), leaning a little either way
    from the slant, where they cross the fewest strokes (local minima along the line)."""
    rows, width = raster.shape
    found = []
    for lean in LEANS:
        shift = np.round(lean * (np.arange(rows) - rows / 2)).astype(int)
        starts = np.arange(-shift.max() - 1, width - shift.min() + 1)
        paths = starts[:, None] + shift[None, :]
        on = ink_under(raster, paths)
        strokes, along = crossings(on, stroke)
        rank = strokes + 0.02 * on.sum(axis=1) / stroke
        found += [(int(strokes[i]), float(along[i]), paths[i]) for i in _minima(rank)]
    return [cut for cut in found if cut[0] <= MAX_STROKES]


def bent_cuts(raster: np.ndarray, stroke: float) -> list[tuple[int, float, np.ndarray]]:
    """Bent cuts as (strokes crossed, run along them, path): of the cheapest top-to-bottom
    paths through each point of a few rows (ink costs its strength, a step sideways
    :data:`SIDEWAYS`), those cheaper than the paths through the points beside them."""
    rows = raster.shape[0]
    down, from_top = _cheapest(raster)
    up, from_bottom = _cheapest(raster[::-1])
    up, from_bottom = up[::-1], from_bottom[::-1]
    found = []
    for share in THROUGH:
        row = min(rows - 1, int(share * rows))
        total = down[row] + up[row] - raster[row]
        paths = _trace(from_top, from_bottom, row, np.array(_minima(np.pad(total, 1, "edge"))) - 1)
        if not paths.size:
            continue
        strokes, along = crossings(ink_under(raster, paths), stroke)
        found += [(int(s), float(a), p) for s, a, p in zip(strokes, along, paths, strict=True)]
    return [cut for cut in found if cut[0] <= MAX_STROKES]


def _cheapest(raster: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel, the cost of the cheapest path from the top row down to it, and the step
    sideways it came from on the row above. A step of ``d`` columns costs :data:`SIDEWAYS`
    per column and the ink it separates from the ink above it (the contact it cuts)."""
    rows, width = raster.shape
    cost = np.empty_like(raster)
    came = np.zeros(raster.shape, dtype=np.int8)
    cost[0] = raster[0]
    columns = np.arange(width)
    for row in range(1, rows):
        above = cost[row - 1]
        contact = np.concatenate(([0.0], np.cumsum(np.minimum(raster[row - 1], raster[row]))))
        best, step = above.copy(), np.zeros(width, dtype=np.int8)
        for shift in range(1, JUMP + 1):
            for sign in (-1, 1):
                start = columns + sign * shift  # the column on the row above
                inside = (start >= 0) & (start < width)
                start = np.clip(start, 0, width - 1)
                separated = np.abs(contact[columns + 1] - contact[start + 1])
                option = above[start] + SIDEWAYS * shift + separated
                better = inside & (option < best)
                best[better], step[better] = option[better], sign * shift
        cost[row] = raster[row] + best
        came[row] = step
    return cost, came


def _trace(
    from_top: np.ndarray, from_bottom: np.ndarray, row: int, columns: np.ndarray
) -> np.ndarray:
    """The paths (one per column, columns x rows) through ``(row, column)`` that follow
    ``from_top`` up and ``from_bottom`` down."""
    rows = from_top.shape[0]
    paths = np.empty((columns.size, rows), dtype=int)
    if not columns.size:
        return paths
    paths[:, row] = columns
    for above in range(row - 1, -1, -1):
        paths[:, above] = paths[:, above + 1] + from_top[above + 1, paths[:, above + 1]]
    for below in range(row + 1, rows):
        paths[:, below] = paths[:, below - 1] + from_bottom[below - 1, paths[:, below - 1]]
    return paths


def ink_under(raster: np.ndarray, paths: np.ndarray) -> np.ndarray:
    """The ink under each path (paths x rows; 0 outside the raster)."""
    rows, width = raster.shape
    inside = (paths >= 0) & (paths < width)
    return np.where(inside, raster[np.arange(rows)[None, :], np.clip(paths, 0, width - 1)], 0.0)


def crossings(on: np.ndarray, stroke: float) -> tuple[np.ndarray, np.ndarray]:
    """For the ink under each path: how many strokes it crosses, and how far it runs along
    them (in stroke widths, beyond two per stroke)."""
    crossed = on > CROSSED
    strokes = crossed[:, 0] + np.count_nonzero(crossed[:, 1:] & ~crossed[:, :-1], axis=1)
    along = np.maximum(0.0, np.count_nonzero(crossed, axis=1) / stroke - 2.0 * strokes)
    return strokes, along


def _minima(values: np.ndarray) -> list[int]:
    """Local minima of ``values`` (the middle of a flat bottom)."""
    found = []
    index, size = 1, values.size
    while index < size - 1:
        end = index
        while end + 1 < size and values[end + 1] == values[index]:
            end += 1
        if values[index - 1] > values[index] and end + 1 < size and values[end + 1] > values[end]:
            found.append((index + end) // 2)
        index = end + 1
    return found
