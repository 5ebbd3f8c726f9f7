"""The paper under the ink: its level, its noise and which of the two is dark.

A photo's paper is not one grey: light falls off across the page, shadows lie on it (soft or
with a sharp edge), the sheet is grainy and the JPEG adds its own noise. :func:`fit_paper`
models all of it from the pixels that are not ink, without trusting the image's border, so
that :func:`digitcore.mnistify.ink_map` can measure the ink against it; the first level comes
from a small copy (cheap, smooth) and is made sharp again at full size only where a shadow's
edge needs it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError

ANALYSIS_SIZE = 96  # the background is modelled on a copy at most this large
STEP_NOISE = 3.0  # a closing darker than the surface by this many times the noise
STEP_DEPTH = 0.06  # and by this share of the lit paper's level: a shadow's edge,
STEP_REACH = 3  # whose surroundings (copy pixels) take the level of a closing
STEP_WINDOW = 4  # this many copy pixels wide
FLAT_SHARE = 0.6  # a background this much of one exact value is a flat canvas,
CANVAS_SHARE = 0.2  # and this much a canvas still (its strokes' halos over the rest)
DARK_BACKGROUND_SHARE = 0.6  # the dark class is the background only when it covers more
BROAD_PAPER = 0.12  # a bright patch this deep (share of the short side) is paper, not ink,
SHADOW_INK = 0.3  # where the dark class holds ink this share of the classes' gap darker still
INNER_DEPTH = 2  # copy pixels: the dark class this far from the bright one, for its spread
SURE_INK = 0.45  # dark ink: darker than this share of the lit paper is ink, never paper
SHADOW_FLOOR = 0.3  # but not a broad patch from the edge lighter than this: a deep shadow
ROUNDS = 2  # rounds of masked smoothing: the second settles the paper next to the ink
BAR_TOLERANCE = 2.5 / 255  # a flat bar along a side: every pixel of its rows within this of
BAR_DEPTH = 2  # its outermost row's median (a JPEG's flat blocks), this many rows deep at least
BLACK_BAR = 12 / 255  # a black bar's rows: within this of black (a thin one rings in a JPEG)
PICTURE_SIDE = 32  # what they frame is a picture: this many pixels each way (MNIST's are 28),
BAR_INSIDE = 0.05  # under this share of it is bar-coloured
BAR_SPREAD = 0.5  # unless this many per bar-coloured one lie just off it (a photo's grain)
BAR_FILLED = 0.3  # and under this share one exact value (else it is a shape drawn filled)
PAGE_SHARE = 0.5  # a page pasted on a canvas: this share of it one exact colour at least
PAGE_MARGIN = 0.9  # and its margin, to the ringing, with none of the canvas' colour in it
PAGE_INK = 0.002  # with something drawn within it on this share of it at least
TURNED_BORDER = 0.5  # a canvas round a picture turned on it: this share of the border at least
TURNED_AREA = 0.6  # and the picture covers this share of the canvas at least
TURNED_RECTANGLE = 0.95  # and is a rectangle at any angle: this share of the smallest one round it
FLAT_CANVAS = 1.5 / 255  # the canvas is flat: its pixels' 3x3 neighbourhoods span no more than this
EDGE_BAND = 2  # px: the canvas' colour this close to the picture's edge or the border goes with it
TURNED_FLAT = 0.5  # and that much of the canvas flat at least
TURNED_CONVEX = 0.97  # a picture turned within its frame fills this share of its convex hull
TURNED_CORNER = 1.3  # and leaves in each corner a triangle this many times longer than high
RING_ROWS = 8  # a JPEG's ringing along the picture's edge (a block): up to this many rows more
RING_TOLERANCE = 24 / 255  # with every pixel this close to the bar's value go with the bar
SHEET_AREA = 0.08  # a sheet on a desk: this share of the picture at least, and not all of it,
SHEET_RECTANGLE = 0.92  # filling this share of the smallest rectangle round it,
SHEET_INK = (0.002, 0.25)  # with dark ink on a share of it within these bounds
SHEET_DESK = 0.8  # on a desk darker than it: this share of the rest of the picture at least
BLOB_DEPTH = 0.28  # a bright blob (a reflection), not strokes: this deep for the root of its area
BLOB_SIDE = 0.05  # and this share of the short side at least
LIGHT_TAIL = 2.0  # the split ran through the paper: its light class reaches this far past it
SOFT_EDGE = 8.0  # copy pixels: ink (or a bright class) whose edge takes longer to reach its
# depth is a glare's halo (or a lamp's pool, a reflection), not a pen's stroke
LENS_DEPTH = 0.1  # a bowl this deep (share of the paper's level) is a lens' or a glare's
BOWL = np.array([False, False, False, True, True])  # the light's terms: x, y, 1, x^2, y^2


@dataclass
class Paper:
    """What the picture's background is: its level (a number or a surface), noise, polarity.

    ``scale`` divides dark ink's depth, so ink under a shadow counts as much as in the light;
    paper darker than ``SHADOW_FLOOR`` of its middle level is divided no further (at a
    gradient's black end a level or two became a line of ink).
    """

    level: np.ndarray | float
    noise: float
    dark_ink: bool
    scale: np.ndarray | float = 1.0


def fit_paper(gray: np.ndarray, unsmoothed: np.ndarray | None = None) -> Paper:
    """Model the background of ``gray`` from the pixels that are not ink.

    1. Split the brightness into two classes (Otsu) on a small copy; the paper is the class
       that covers more of the image and of its border together (ties: dark ink on paper),
       or a drawing's dark canvas that light strokes cut to their ink part along the border
       (:func:`_cut_light_on_black`). Where the split ran through the paper itself (both
       classes broad, the bright one reaching far past its middle: chalk on a board clouded
       where it was wiped), the ink is light (:func:`_light_past_split_paper`).
       A bright class with a patch too broad for a stroke (or a blob too deep for its size, a
       reflection: :func:`_blob`) is a shadow's or a lamp's lit paper, the ink dark, where
       the dark class holds ink far darker than most of it (:func:`_ink_within`)
       and is no canvas (``CANVAS_SHARE`` of it one exact value, in ``gray`` or in
       ``unsmoothed``, the picture before a smoothing against grain spread the strokes'
       edges): a light digit cropped close and enlarged has strokes that broad; nor a split
       through the paper.
    2. A background of one exact value (canvases, MNIST) is that value, with no noise; so is
       a drawing's canvas under strokes cut close to them, its value farthest from the ink's
       a good share of it, the rest their halo (:func:`_cut_canvas`).
    3. Otherwise a grey closing gives a first level (:func:`_closed_paper`); ``ROUNDS`` rounds of
       smoothing through the pixels within the paper's noise of it (:func:`_masked_smooth`)
       give the surface, which follows light and shadows, and the noise: the paper pixels'
       robust spread. Where a lens darkens the corners deeply (its bowl ``LENS_DEPTH`` of the
       paper's level or more), the smoothing runs on the picture less the bowl, which is
       added back: a window at a corner, spilling over the frame's edge, saw only the
       lighter paper inward and left the dark corner a patch of ink.
    4. For dark ink, the surface is made sharp again, at full size, along a shadow's sharp
       edge (:func:`_steps`).
    """
    small = _shrunk(gray, ANALYSIS_SIZE)
    threshold = otsu_threshold(small)
    dark = small < threshold
    border = np.concatenate([dark[0], dark[-1], dark[:, 0], dark[:, -1]])
    dark_share = 0.5 * dark.mean() + 0.5 * border.mean()
    dark_ink = dark_share < DARK_BACKGROUND_SHARE and not _cut_light_on_black(small, dark)
    if dark_ink and _light_past_split_paper(small, dark):
        dark_ink = False
    background = ~dark if dark_ink else dark
    values = small[background]  # never empty: Otsu leaves pixels on both sides
    mode, count = _mode(values)
    if count >= FLAT_SHARE * values.size:
        return Paper(mode, 0.0, dark_ink, max(mode, 0.05) if dark_ink else 1.0)
    canvas = _cut_canvas(gray if unsmoothed is None else unsmoothed, threshold, dark_ink)
    if canvas is not None:
        return Paper(canvas, 0.0, dark_ink, max(canvas, 0.05) if dark_ink else 1.0)
    if (
        not dark_ink
        and (_broad(~dark) or _blob(~dark))
        and not _a_canvas(small, unsmoothed, background)
        and _ink_within(small, dark)
        and not _light_past_split_paper(small, dark)
    ):
        dark_ink = True  # the dark class is a shadow's paper and the ink, the bright one lit paper
    plane, bowl = _light(small, dark_ink)
    level, depth, window = _closed_paper(
        small, plane, bowl, dark_ink, small[~dark] if dark_ink else None
    )
    sigma = max(1.0, max(small.shape) / 40)
    lens = bowl if _deep(bowl, float(np.median(level))) else 0.0
    for _ in range(ROUNDS):
        residual = small - level
        weights = (residual > -depth if dark_ink else residual < depth).astype(np.float32)
        level = _masked_smooth(small - lens, weights, sigma) + lens
        noise = 1.4826 * float(np.median(np.abs((small - level)[weights > 0])))
        depth = max(3.0 * noise, 0.01)
    surface = _grown(level, gray.shape)
    if dark_ink and surface.shape != small.shape:
        lit = float(np.median(small[~dark]))
        step = _steps(gray, small, bowl, level, surface, window, weights, noise, lit)
        if step is not None:
            surface = surface + step
    middle = max(float(np.median(level)), 0.05)
    scale = np.maximum(surface, SHADOW_FLOOR * middle) / middle if dark_ink else 1.0
    return Paper(surface, noise, dark_ink, scale)


def flat_canvas(gray: np.ndarray) -> bool:
    """Whether ``gray`` is mostly (``FLAT_SHARE``) one exact value: a drawing's canvas, which
    holds no dust and no grain, so that whatever is drawn on it was drawn."""
    return _mode(gray.ravel())[1] >= FLAT_SHARE * gray.size


def picture_inset(gray: np.ndarray) -> tuple[slice, slice] | None:
    """Where a picture lies that was pasted on a flat canvas: inside the flat bars along its
    sides (a phone's letterbox, a border an editor added, a photo on a white page), or None.

    A bar is a band of rows (or columns) from a side, each of one value throughout, so not
    even a stroke crosses it (a black one to ``BLACK_BAR``: a JPEG's blocks ring through a
    thin black frame). Bars are only taken off a picture (:func:`_a_picture`): a
    drawing on a plain canvas shows the canvas between its strokes, or fills a shape with its
    pen, and stays as it is. The JPEG's ringing along the picture's edge goes with the bar,
    and a pixel more: resizing blends its edge into the picture's."""
    height, width = gray.shape
    depths, colours = [], []
    for side in (gray, gray[::-1], gray.T, gray.T[::-1]):  # top, bottom, left, right
        value = float(np.median(side[0]))
        tolerance = BLACK_BAR if value <= BLACK_BAR / 2 else BAR_TOLERANCE
        if np.abs(side[:BAR_DEPTH] - value).max() > tolerance:
            depths.append(0)  # no bar (most pictures): the rest is not looked at
            continue
        deviation = np.abs(side - value).max(axis=1)
        depth = _leading(deviation <= tolerance)
        depth += _leading(deviation[depth : depth + RING_ROWS] <= RING_TOLERANCE)
        depths.append(depth + 1)
        colours.append(value)
    top, bottom, left, right = depths
    if not colours or top + bottom >= height - BAR_DEPTH or left + right >= width - BAR_DEPTH:
        return None
    inset = (slice(top, height - bottom), slice(left, width - right))
    inside = np.zeros(gray.shape, dtype=bool)
    inside[inset] = True
    return inset if _a_picture(gray, inside, colours) else None


def turned_canvas(gray: np.ndarray) -> np.ndarray | None:
    """The flat canvas round a picture that was turned on it (the corners an editor or a
    scanner's deskewing fills with one colour), as a mask, or None.

    The canvas is the border's colour reaching in from the border, or, for a picture turned
    within its own frame (its corners cut off), the colour of the frame's four corners; it is
    flat (``FLAT_CANVAS``: a photo's paper about the canvas' colour, turned on a canvas of its
    own colour, has grain and light and does not join it), with the JPEG's ringing beside it
    and a pixel more. It is only taken for one where what it leaves is a picture: most of the
    frame, a rectangle (turned within its frame, a rectangle with its corners cut: convex,
    reaching every side of the frame, where a drawing on a plain canvas reaches none),
    measured before the ringing is taken off (it bites into a paper of about the canvas'
    colour), hardly holding the canvas' colour, not one colour either. A drawing on a plain
    canvas, or a digit filling a photo's frame, leaves only its strokes and what they
    enclose."""
    border = np.concatenate([gray[0], gray[-1], gray[1:-1, 0], gray[1:-1, -1]])
    value = float(np.median(border))
    corners = np.array([gray[0, 0], gray[0, -1], gray[-1, 0], gray[-1, -1]])
    cut = np.ptp(corners) <= BAR_TOLERANCE  # the frame's corners one colour: perhaps cut off
    if np.mean(np.abs(border - value) <= BAR_TOLERANCE) < TURNED_BORDER:
        if not cut:
            return None
        value = float(np.median(corners))  # turned within its own frame: the corners filled
    cut = cut and abs(float(np.median(corners)) - value) <= BAR_TOLERANCE
    coloured = np.abs(gray - value) <= BAR_TOLERANCE
    flat = ndimage.maximum_filter(gray, 3) - ndimage.minimum_filter(gray, 3) <= FLAT_CANVAS
    flat_canvas = _canvas(coloured & flat)
    if not flat_canvas.any() or flat_canvas.mean() > 1 - TURNED_AREA:  # a drawing's canvas
        return None
    picture = ndimage.binary_fill_holes(~flat_canvas)
    sides = (picture[0], picture[-1], picture[:, 0], picture[:, -1])
    within_frame = (
        cut and all(side.any() for side in sides) and _convex(picture) and _pinwheel(flat_canvas)
    )
    shaped = _rectangular(picture) or within_frame
    if picture.mean() < TURNED_AREA or not shaped:
        return None
    # the canvas' tips, too thin to be flat where a corner of the picture nears the border
    within = ndimage.binary_erosion(picture, iterations=EDGE_BAND, border_value=0)
    canvas = _canvas(coloured & ~within)
    if np.count_nonzero(flat_canvas) < TURNED_FLAT * np.count_nonzero(canvas):
        return None  # the border's colour along it, flat in a few places only: no canvas
    ringing = np.abs(gray - value) <= RING_TOLERANCE
    canvas = ndimage.binary_dilation(canvas, iterations=RING_ROWS, mask=ringing)
    picture = ndimage.binary_fill_holes(~canvas)
    if picture.mean() < TURNED_AREA or not _a_picture(gray, picture, [value]):
        return None
    return ndimage.binary_dilation(canvas)


def desk_round_sheet(gray: np.ndarray) -> np.ndarray | None:
    """The darker surface round a sheet of paper photographed on it (a note on a desk), as a
    mask, or None.

    The sheet is the largest bright part of the picture (Otsu, on a small copy) with what it
    encloses: a quadrilateral (at least ``SHEET_RECTANGLE`` of the smallest rectangle round
    it, as a sheet seen at a slant fills it), ``SHEET_AREA`` of the picture or more but not
    all of it, holding some ink but not much (``SHEET_INK``), and touching at most one side of
    the picture; the rest of the picture is darker (``SHEET_DESK`` of it). A shadow's straight
    edge across the picture leaves a lit part that touches two sides at least; a light shape
    drawn on a dark board holds nothing, a light digit's loops filled in are no quadrilateral
    and mostly hole, a box drawn round the digit has the page beyond it, and a desk, unlike a
    drawing's canvas, is not one exact value.
    """
    small = _shrunk(gray, ANALYSIS_SIZE)
    bright = small >= otsu_threshold(small)
    largest = _largest_piece(bright)
    if largest is None:
        return None
    sheet = ndimage.binary_fill_holes(largest)
    share = sheet.mean()
    if not SHEET_AREA <= share <= 1 - SHEET_AREA:
        return None
    sides = (sheet[0].any(), sheet[-1].any(), sheet[:, 0].any(), sheet[:, -1].any())
    least, most = SHEET_INK
    if sum(sides) > 1 or not least <= np.count_nonzero(sheet & ~bright) / sheet.sum() <= most:
        return None
    if np.count_nonzero(~sheet & ~bright) < SHEET_DESK * np.count_nonzero(~sheet):
        return None  # a box drawn on the page round what it holds: the page goes on beyond it
    if _a_canvas(small, None, ~sheet & ~bright):
        return None  # a drawing's canvas round a light shape (a thick 0), no photographed desk
    if not _rectangular(sheet, SHEET_RECTANGLE):
        return None
    desk = _grown((~sheet).astype(np.float32), gray.shape) > 0.5
    factor = max(gray.shape) / max(small.shape)
    return ndimage.binary_dilation(desk, iterations=max(2, round(2 * factor)))


def _a_picture(gray: np.ndarray, region: np.ndarray, colours: list[float]) -> bool:
    """Whether what a canvas of ``colours`` frames (``region``, a mask) is a picture pasted
    on it, not a drawing.

    A drawing shows its canvas between its strokes: one colour exactly, a spike of pixels
    within ``BAR_TOLERANCE`` of it with hardly any just beyond (only the strokes' blended
    edges). A photo whose paper is about the canvas' colour spreads over it, its pixels as
    often just beyond as within. Nor is a picture mostly one exact value (a shape drawn
    filled), unless that is a page's (:func:`_a_page`): then the canvas' colour on it is ink.
    And a picture is larger than a digit's strokes: what bars frame in an MNIST digit is.
    """
    rows, columns = np.nonzero(region)
    if min(np.ptp(rows), np.ptp(columns)) + 1 < PICTURE_SIDE:
        return False
    if _a_page(gray, region, colours):
        return True
    inside = gray[region]
    distance = np.min([np.abs(inside - value) for value in colours], axis=0)
    canvas = np.count_nonzero(distance <= BAR_TOLERANCE)
    beside = np.count_nonzero(distance <= 2 * BAR_TOLERANCE) - canvas
    if canvas >= BAR_INSIDE * inside.size and beside < BAR_SPREAD * canvas:
        return False
    return _mode(inside)[1] < BAR_FILLED * inside.size


def _a_canvas(small: np.ndarray, unsmoothed: np.ndarray | None, background: np.ndarray) -> bool:
    """Whether ``CANVAS_SHARE`` of the ``background`` class of ``small`` is one exact value, in
    it or in the copy of the picture before smoothing (``unsmoothed``)."""
    copies = [small] if unsmoothed is None else [small, _shrunk(unsmoothed, ANALYSIS_SIZE)]
    least = CANVAS_SHARE * np.count_nonzero(background)
    return any(_mode(copy[background])[1] >= least for copy in copies)


def _cut_canvas(picture: np.ndarray, threshold: float, dark_ink: bool) -> float | None:
    """The colour of a drawing's canvas under strokes cut close to them (reaching two opposite
    sides of ``picture``, at full size): the value farthest from the ink's of the canvas'
    class (under ``threshold`` for light ink, else over it), and ``CANVAS_SHARE`` of it at
    least; the rest is the strokes' halo, nearer the ink. Where a stroke crosses the whole
    picture (a 1 cut to its ink), no canvas lies beside it for the paper's level to be
    smoothed through, and the level followed the stroke."""
    ink = picture < threshold if dark_ink else picture >= threshold
    if not (ink[0].any() and ink[-1].any()) and not (ink[:, 0].any() and ink[:, -1].any()):
        return None
    values = picture[~ink]
    mode, count = _mode(values)
    farthest = float(values.max()) if dark_ink else float(values.min())
    return mode if count >= CANVAS_SHARE * values.size and mode == farthest else None


def _a_page(gray: np.ndarray, region: np.ndarray, colours: list[float]) -> bool:
    """Whether ``region`` is a page of one exact colour, not the canvas', drawn on: a digital
    drawing, a screenshot's canvas.

    Its margin (just within its edge, whose pixels the pasting may blend) is that colour all
    round (to a JPEG's ringing), and something else lies within the margin. A shape drawn
    filled holds nothing, or shows the canvas between its parts at its edge; strokes, a box
    or a drawing's canvas have no margin.
    """
    value, count = _mode(gray[region])
    if count < PAGE_SHARE * region.sum() or min(abs(value - c) for c in colours) <= RING_TOLERANCE:
        return False
    within = ndimage.binary_erosion(region)
    inner = ndimage.binary_erosion(within, iterations=2)
    margin = gray[within & ~inner]
    if margin.size == 0 or np.mean(np.abs(margin - value) <= RING_TOLERANCE) < PAGE_MARGIN:
        return False
    if min(np.abs(margin - c).min() for c in colours) <= BAR_TOLERANCE:
        return False  # the canvas shows between shapes drawn filled
    return np.count_nonzero(np.abs(gray[inner] - value) > RING_TOLERANCE) >= PAGE_INK * region.sum()


def _rectangular(region: np.ndarray, least: float = TURNED_RECTANGLE) -> bool:
    """Whether ``region`` is a rectangle at any angle: it fills at least ``least`` of the
    smallest rectangle round it (a convex hull's edge is one of that rectangle's)."""
    outline = np.argwhere(region & ~ndimage.binary_erosion(region)).astype(np.float64)
    try:
        corners = outline[ConvexHull(outline).vertices]
    except QhullError:  # a line or a point
        return False
    edges = np.diff(np.vstack([corners, corners[:1]]), axis=0)
    angles = np.arctan2(edges[:, 0], edges[:, 1])
    cos, sin = np.cos(angles)[:, None], np.sin(angles)[:, None]
    along = corners[:, 1] * cos + corners[:, 0] * sin  # each edge's direction, every corner
    across = corners[:, 0] * cos - corners[:, 1] * sin
    areas = np.ptp(along, axis=1) * np.ptp(across, axis=1)
    return region.sum() >= least * areas.min()


def _convex(region: np.ndarray, least: float = TURNED_CONVEX) -> bool:
    """Whether ``region`` fills at least ``least`` of its convex hull: a picture turned within
    its own frame is a rectangle with its corners cut off by the frame."""
    outline = np.argwhere(region & ~ndimage.binary_erosion(region, border_value=0))
    try:
        hull = ConvexHull(outline.astype(np.float64))
    except QhullError:  # a line or a point
        return False
    return region.sum() >= least * hull.volume


def _pinwheel(canvas: np.ndarray) -> bool:
    """Whether the ``canvas`` lies in the frame's corners as a picture turned within its frame
    leaves it: in each corner a triangle long along one side and short along the other
    (``TURNED_CORNER``: turns of up to about 35 degrees), the long sides taking turns round
    the frame, each corner's triangle its neighbour's turned a quarter. A round digit cut to
    its ink, light on black, leaves black corners too, but they are as high as they are long.
    """

    def run(line: np.ndarray) -> int:
        stops = np.flatnonzero(~line)
        return int(stops[0]) if stops.size else line.size

    corners = [  # (along the top or bottom, along the left or right side), clockwise
        (run(canvas[0]), run(canvas[:, 0])),
        (run(canvas[0, ::-1]), run(canvas[:, -1])),
        (run(canvas[-1, ::-1]), run(canvas[::-1, -1])),
        (run(canvas[-1]), run(canvas[::-1, 0])),
    ]
    if any(max(along, down) < TURNED_CORNER * max(min(along, down), 1) for along, down in corners):
        return False
    lying = [along > down for along, down in corners]
    return all(lying[i] != lying[i - 1] for i in range(4))


def _canvas(barlike: np.ndarray) -> np.ndarray:
    """The canvas-coloured pixels that reach the picture's edge: the canvas round a picture
    turned on it (what lies inside the picture, or is enclosed by strokes, is not canvas)."""
    labels, count = ndimage.label(barlike)
    reaching = np.zeros(count + 1, dtype=bool)
    reaching[np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])] = True
    reaching[0] = False
    return reaching[labels]


def _leading(flags: np.ndarray) -> int:
    """How many of ``flags`` are true before the first false."""
    return int(flags.size if flags.all() else np.argmin(flags))


def _cut_light_on_black(small: np.ndarray, dark: np.ndarray) -> bool:
    """Whether ``small`` is light strokes on a drawing's dark canvas, cut to the strokes: the
    dark class is ``CANVAS_SHARE`` one exact value at least, its darkest (the strokes' halo
    is lighter; pixel art in a few greys repeats one within dark strokes), and the bright
    one, one piece reaching all four sides, parts it into pieces along the border (the
    corners). Cut so, a thick digit (a 0, an 8) is most of the picture and its border, and
    passed for dark ink on light paper; dark strokes cut so leave the light canvas in pieces,
    not the dark. The pieces hold the canvas' value: a lens darkening the corners of a photo
    of black marker leaves dark pieces there too, greys, not the marker's black."""
    value, count = _mode(small[dark])
    if count < CANVAS_SHARE * np.count_nonzero(dark) or value > float(small[dark].min()):
        return False
    _, pieces = ndimage.label(~dark, structure=np.ones((3, 3), dtype=bool))
    if pieces != 1 or not all(
        side.any() for side in (~dark[0], ~dark[-1], ~dark[:, 0], ~dark[:, -1])
    ):
        return False
    canvas, _ = ndimage.label(dark)
    along = np.unique(np.concatenate([canvas[0], canvas[-1], canvas[:, 0], canvas[:, -1]]))
    along = along[along > 0]
    if along.size < 2:
        return False
    flat = ndimage.maximum((small == value).astype(np.uint8), canvas, along)
    return int(np.count_nonzero(flat)) >= 2  # a lens' dark corners are no canvas: not flat


def _light_past_split_paper(small: np.ndarray, dark: np.ndarray) -> bool:
    """Whether the split ran through the paper, light strokes beyond it: both classes broad
    patches, none of them strokes, and the bright one reaching far past its middle (its top
    percent ``LIGHT_TAIL`` times the classes' gap beyond it, and that many times further than
    the dark class reaches down): chalk on a blackboard clouded where it was wiped."""
    if not (_broad(dark) and _broad(~dark)):
        return False
    low, high = small[dark], small[~dark]
    gap = float(np.median(high) - np.median(low))
    rise = float(np.percentile(high, 99) - np.median(high))
    fall = float(np.median(low) - np.percentile(low, 1))
    return rise > LIGHT_TAIL * max(gap, fall)


def _ink_within(small: np.ndarray, dark: np.ndarray) -> bool:
    """Whether the ``dark`` class of ``small`` holds two levels, a shadow's paper and the
    strokes written on it: ink far darker than most of the class, or, where the ink is most
    of it (a thick digit cropped close), a spread that wide within the class, away from its
    edge with the bright one (where a light pen's blended edges lie). Dark paper under a light
    pen (chalk, a white pen on dark card) holds only its grain and the light's fall-off, well
    within ``SHADOW_INK`` of the two classes' gap either way once the fall-off is taken off
    (:func:`_unlit`): a board lit from one side spread as widely as a shadow with strokes in
    it. Beside a soft-edged bright class (its edge longer than ``SOFT_EDGE`` to its depth:
    a lamp's pool, a reflection; a pen's strokes are sharp) the spread is taken as it is:
    that bright class is lit paper, and the light falling off from it is no pen's board."""
    values = small[dark]
    level = float(np.median(values))
    reach = SHADOW_INK * (float(np.median(small[~dark])) - level)
    inner = ndimage.binary_erosion(dark, iterations=INNER_DEPTH)
    if not inner.any() or level - float(np.percentile(values, 1)) >= reach:
        return True
    lit_paper = _edge_width(level - small, ~dark) > SOFT_EDGE
    spread = small[inner] if lit_paper else _unlit(small, inner)
    return float(np.percentile(spread, 95) - np.percentile(spread, 1)) >= reach


def _unlit(small: np.ndarray, region: np.ndarray) -> np.ndarray:
    """``small``'s pixels in ``region`` less the plane that fits them best: their spread
    without the light's fall-off across the picture."""
    rows, cols = np.nonzero(region)
    design = np.stack([cols, rows, np.ones(rows.size)], axis=1).astype(np.float64)
    values = small[region].astype(np.float64)
    every = np.ones(values.size, dtype=bool)
    return values - design @ _fitted(design, values, every, np.ones(3, dtype=bool))


def _broad(region: np.ndarray) -> bool:
    """Whether ``region`` holds a patch too wide to be a stroke: paper, e.g. beside a shadow.

    Strokes are thin however they are drawn: no point of them lies further than a fraction of
    the picture's size from their edge. A lit part of the page does.
    """
    if not region.any():
        return False
    depth = ndimage.distance_transform_edt(region)
    return float(depth.max()) >= BROAD_PAPER * min(region.shape)


def _blob(region: np.ndarray) -> bool:
    """Whether ``region``'s largest piece is a blob, not strokes: as deep as a good share of
    its own size (``BLOB_DEPTH`` of the square root of its area) and not a speck (``BLOB_SIDE``
    of the short side deep). A lamp's reflection or a window's on a close-cropped page is
    such a patch, too small to be :func:`_broad`, where light strokes are long and thin."""
    piece = _largest_piece(region)
    if piece is None:
        return False
    depth = float(ndimage.distance_transform_edt(piece).max())
    return depth >= BLOB_SIDE * min(region.shape) and depth >= BLOB_DEPTH * np.sqrt(piece.sum())


def _largest_piece(region: np.ndarray) -> np.ndarray | None:
    """The largest connected piece of ``region`` (a mask), or None where it is empty."""
    labels, count = ndimage.label(region)
    if count == 0:
        return None
    return labels == 1 + int(np.argmax(np.bincount(labels.ravel())[1:]))


def _closed_paper(
    small: np.ndarray,
    plane: np.ndarray,
    bowl: np.ndarray,
    dark_ink: bool,
    paper: np.ndarray | None = None,
) -> tuple[np.ndarray, float, int]:
    """A first paper level: the ink closed over (grey closing, on the picture less the smooth
    light, ``plane`` and ``bowl``), how deep the ink goes, and the closing's window.

    A glare (a bright spot on the page) passes for a lens' ``bowl``, a dome; the picture less
    it holds a moat round the spot, which the closing fills, and a ring of paper became ink.
    So where the bowl is deep (``LENS_DEPTH``) the level is the lower of the closings on the
    picture less the whole light and less the ``plane`` only: each lifts the strokes and lies
    on or above the picture, the lower one nearer the paper (the first at a lens' dark
    corners, the second round a glare).

    The window starts at a quarter of the image, which follows light and shadows, and grows
    while the ink has strokes too wide for it (thick marker filling the frame); under a deep
    bowl, not where what the grown window lifts has a soft edge (more than ``SOFT_EDGE`` copy
    pixels to its depth: a glare's halo; strokes take 2-4), and the first window stands
    (without one, soft ink grows it as before: a shadow's side, a blotch). Ink is what the
    closing lifted, and, for dark ink, whatever is far darker than the bright ``paper``
    pixels (under ``SURE_INK`` of their level) but a deep shadow (:func:`_without_shadows`):
    a stroke wider than the window is not lifted at all, so the lift alone would never see it.
    """
    close = ndimage.grey_closing if dark_ink else ndimage.grey_opening
    deep = _deep(bowl, float(np.median(small)))
    lights = (plane + bowl, plane) if deep else (plane + bowl,)
    window = max(3, round(max(small.shape) / 4))
    sure = None
    if paper is not None and paper.size:
        lit = float(np.median(paper))
        sure = _without_shadows(small, small < SURE_INK * lit, lit)
    first = None
    for _ in range(3):
        closings = [
            close(small - light, size=(window, window), mode="nearest") + light for light in lights
        ]
        level = np.minimum.reduce(closings) if dark_ink else np.maximum.reduce(closings)
        residual = small - level if dark_ink else level - small
        depth = max(0.5 * float(np.abs(np.percentile(residual, 2))), 0.01)
        first = first or (level, depth, window)
        ink = residual < -depth
        if sure is not None:
            ink |= sure
        if not ink.any():
            break
        widest = float(np.percentile(ndimage.distance_transform_edt(ink)[ink], 95))
        needed = min(round(5 * widest + 1), max(small.shape))
        if needed <= window:
            break
        window = needed
    if deep and window > first[2] and ink.any() and _edge_width(residual, ink) > SOFT_EDGE:
        return first  # the grown window lifted no stroke, only a glare's soft halo
    return level, depth, window


def _deep(bowl: np.ndarray, paper: float) -> bool:
    """Whether the light's ``bowl`` is deep: ``LENS_DEPTH`` of the ``paper``'s level or more
    below its middle (a lens' corners, or a glare that passes for one)."""
    return float(-bowl.min()) > LENS_DEPTH * paper


def _edge_width(residual: np.ndarray, ink: np.ndarray) -> float:
    """How many pixels the ``ink``'s edge takes to reach its depth (``residual``, negative
    on ink): its deep level (90th percentile) over the median slope along its edge."""
    edge = ink & ~ndimage.binary_erosion(ink)
    slope = float(np.median(np.hypot(*np.gradient(residual))[edge]))
    return float(np.percentile(-residual[ink], 90)) / max(slope, 1e-6)


def _without_shadows(small: np.ndarray, sure: np.ndarray, lit: float) -> np.ndarray:
    """``sure`` ink less the broad patches of it that reach the picture's edge and are not
    that dark (``SHADOW_FLOOR`` of the ``lit`` paper at least): a shadow's paper, cast from
    outside the picture and more than 55 % darker than the lit page, not ink. A broad blot
    of grey ink inside the picture stays ink, and so does a black marker's stroke that
    fills the frame (far darker)."""
    labels, _ = ndimage.label(sure)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    edge = edge[edge > 0]
    if not edge.size:
        return sure
    deepest = np.asarray(ndimage.maximum(ndimage.distance_transform_edt(sure), labels, edge))
    middle = np.asarray(ndimage.median(small, labels, edge))
    shadow = edge[(deepest >= BROAD_PAPER * min(small.shape)) & (middle >= SHADOW_FLOOR * lit)]
    return sure & ~np.isin(labels, shadow) if shadow.size else sure


def _steps(
    gray: np.ndarray,
    small: np.ndarray,
    bowl: np.ndarray,
    level: np.ndarray,
    surface: np.ndarray,
    window: int,
    weights: np.ndarray,
    noise: float,
    lit: float,
) -> np.ndarray | None:
    """What the smooth surface misses at a shadow's sharp edge (dark ink): the correction to
    add to it at full size, or ``None`` where the picture has no such edge.

    The ``surface`` (``level`` on the small copy, stretched) is smooth, so a sharp edge comes
    out smeared over several pixels, and its dark side, lit in the surface, becomes a band of
    ink through or beside the digit. A grey closing keeps such an edge: where the copy's
    closing (the paper's first ``window``, on the copy less the lens' ``bowl``, whose dark
    corners would pass for shadows) is darker than the surface by a clear step, an edge is
    near. There, at full size, the level of a closing only a few copy pixels wide
    (which still lifts the strokes and follows the paper's slope) replaces the surface, less
    its median lift over the paper (a closing rides on the grain). Never down to ink: not
    below ``SHADOW_FLOOR`` of the ``lit`` paper, nor below the darkest paper (``weights``)
    around.
    """
    closed = ndimage.grey_closing(small - bowl, size=(window, window), mode="mirror") + bowl
    edge = level - closed > max(STEP_NOISE * noise, STEP_DEPTH * lit)
    if not edge.any():
        return None
    edge = ndimage.maximum_filter(edge, size=2 * STEP_REACH + 1)
    near = _grown(edge.astype(np.float32), gray.shape) > 0
    paper = _grown(weights, gray.shape) > 0.99
    factor = max(gray.shape) / max(small.shape)
    fine = ndimage.grey_closing(
        gray, size=(max(3, round(STEP_WINDOW * factor)),) * 2, mode="mirror"
    )
    fine -= float(np.median((fine - gray)[paper]))
    reach = max(3, round(2 * window * factor))
    darkest = ndimage.minimum_filter(np.where(paper, gray, np.inf), size=reach, mode="mirror")
    near &= (fine < surface) & (fine >= darkest) & (fine >= SHADOW_FLOOR * lit)
    return np.where(near, fine - surface, 0.0).astype(np.float32)


def _light(small: np.ndarray, dark_ink: bool) -> tuple[np.ndarray, np.ndarray]:
    """The smooth light across the page, fitted to the paper (least squares, refitted twice
    without the pixels on the ink's side of it): a plane, and under dark ink a bowl darker
    towards every edge (zero where there is none).

    The closing runs on the picture less this surface. On the picture itself a window at the
    edge sees only the lighter side of a slope that darkens towards that edge, so the paper's
    level came out too light there, and a page's dark corner became a patch of ink (a wide
    one, which outweighed a digit written small). A phone's lens darkens all four corners so
    (vignetting), which a plane cannot follow. A bowl lighter towards either pair of edges is
    no lens: the ink of a digit filling the picture, or a shadow over one side; the plane
    alone is fitted then.
    """
    rows, cols = small.shape
    ys, xs = np.mgrid[0:rows, 0:cols]
    x, y = xs.ravel() / cols - 0.5, ys.ravel() / rows - 0.5
    design = np.stack([x, y, np.ones(rows * cols), x * x, y * y], axis=1)
    values = small.ravel().astype(np.float64)
    keep = np.ones(values.size, dtype=bool)
    terms = np.full(BOWL.size, True) if dark_ink else ~BOWL
    for _ in range(3):
        coefficients = _fitted(design, values, keep, terms)
        if (coefficients[BOWL] > 0).any():
            coefficients = _fitted(design, values, keep, ~BOWL)
        residual = values - design @ coefficients
        spread = max(1.4826 * float(np.median(np.abs(residual[keep]))), 1e-3)
        keep = residual > -3 * spread if dark_ink else residual < 3 * spread
    plane = design[:, ~BOWL] @ coefficients[~BOWL]
    bowl = design[:, BOWL] @ coefficients[BOWL]
    return (
        plane.reshape(rows, cols).astype(np.float32),
        bowl.reshape(rows, cols).astype(np.float32),
    )


def _fitted(
    design: np.ndarray, values: np.ndarray, keep: np.ndarray, terms: np.ndarray
) -> np.ndarray:
    """Least-squares coefficients of ``design``'s ``terms`` columns on the ``keep`` rows
    (the others' coefficients zero)."""
    coefficients = np.zeros(design.shape[1])
    coefficients[terms] = np.linalg.lstsq(design[keep][:, terms], values[keep], rcond=None)[0]
    return coefficients


def _shrunk(gray: np.ndarray, size: int) -> np.ndarray:
    """``gray`` area-averaged so that its longest side is at most ``size`` (Pillow's reduce)."""
    factor = int(np.ceil(max(gray.shape) / size))
    if factor <= 1:
        return gray
    reduced = Image.fromarray(gray.astype(np.float32, copy=False), mode="F").reduce(factor)
    return np.asarray(reduced, dtype=np.float32)


def _grown(level: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A smooth surface stretched to ``shape`` (bilinear)."""
    if level.shape == shape:
        return level
    image = Image.fromarray(level.astype(np.float32), mode="F")
    return np.asarray(image.resize(shape[::-1], Image.Resampling.BILINEAR), dtype=np.float32)


def otsu_threshold(values: np.ndarray) -> float:
    """The brightness that best splits ``values`` into two classes (Otsu's method): floats in
    128 bins over their range, or 8-bit levels counted one by one (faster)."""
    if values.dtype == np.uint8:
        counts = np.bincount(values.ravel(), minlength=256)
        if np.count_nonzero(counts) < 2:
            return float(values.max()) + 1e-6
        edges = np.arange(257, dtype=np.float64)
    else:
        low, high = float(values.min()), float(values.max())
        if high - low < 1e-6:
            return high + 1e-6
        counts, edges = np.histogram(values, bins=128, range=(low, high))
    centres = (edges[:-1] + edges[1:]) / 2
    weight = np.cumsum(counts)
    total = weight[-1]
    mass = np.cumsum(counts * centres)
    below = weight[:-1]
    above = total - below
    valid = (below > 0) & (above > 0)
    mean_below = np.where(valid, mass[:-1] / np.maximum(below, 1), 0)
    mean_above = np.where(valid, (mass[-1] - mass[:-1]) / np.maximum(above, 1), 0)
    between = np.where(valid, below * above * (mean_below - mean_above) ** 2, -1)
    return float(edges[int(np.argmax(between)) + 1])


def _mode(values: np.ndarray) -> tuple[float, int]:
    """The most frequent exact value of ``values`` and how often it occurs."""
    unique, counts = np.unique(values, return_counts=True)
    best = int(np.argmax(counts))
    return float(unique[best]), int(counts[best])


def _masked_smooth(values: np.ndarray, weights: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian-weighted mean of the weighted pixels around each pixel.

    Where no paper is near (inside a wide stroke), the mean over a wider window takes over,
    and the paper's overall median beyond that. The wide windows work on box-averaged copies
    (a pyramid of halvings of the weighted values and the weights, blurred together as two
    planes): the surfaces are smooth at their own scale, so the copies lose nothing that
    matters, and the running estimate is stretched to each finer level in one resize.
    """
    level = float(np.median(values[weights > 0])) if weights.any() else float(np.median(values))
    pyramid = [np.stack([values * weights, weights]).astype(np.float32)]
    result = None
    for scale in (8.0, 4.0, 2.0, 1.0):
        width = sigma * scale
        depth = max(0, int(np.log2(width / 2)))
        while len(pyramid) <= depth:
            pyramid.append(_halved(pyramid[-1]))
        planes = pyramid[depth]
        mass, cover = ndimage.gaussian_filter(
            planes, (0, width / 2**depth, width / 2**depth), mode="nearest", truncate=3.0
        )
        local = mass / np.maximum(cover, 1e-3)  # where cover is that small, trust is ~0
        trust = np.clip(cover / 0.25, 0.0, 1.0)
        result = level if result is None else _grown(result, cover.shape)
        result = trust * local + (1 - trust) * result
    return _grown(result, values.shape).astype(np.float32)


def _halved(planes: np.ndarray) -> np.ndarray:
    """Each plane of ``planes`` (P x H x W) box-averaged by 2 (an odd last row or column is
    dropped: the final surface is stretched back to the full shape anyway)."""
    even = planes[:, : planes.shape[1] // 2 * 2, : planes.shape[2] // 2 * 2]
    return (
        even[:, 0::2, 0::2] + even[:, 1::2, 0::2] + even[:, 0::2, 1::2] + even[:, 1::2, 1::2]
    ) / 4
