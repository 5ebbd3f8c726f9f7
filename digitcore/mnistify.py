"""Turn a real picture of one handwritten digit into what an MNIST digit looks like.

MNIST digits are white ink on black, anti-aliased, scaled so the longest side of the ink is
20 px with the aspect ratio kept, and placed in 28x28 with their centre of mass at the centre.
Uploads are photos, scans and canvas exports instead, so each step here undoes one way a real
picture differs (SPEC §4):

1. :func:`to_luminance` — any mode to one float channel; ink that lives in the alpha channel
   (a transparent canvas) is composited onto a background that contrasts with it. Where the
   luminance shows nothing, :func:`colour_contrast` gives the colours' own axis (a red pen on
   green paper as bright). :func:`unrepeated` — pixel art enlarged by repeating its pixels,
   at its own size.
2. :func:`picture_ink` — the picture itself, where it was pasted or turned on a flat canvas,
   and the sheet, where a sheet lies on a desk;
   :func:`ink_map` — fit the background (:mod:`digitcore.paper`: uneven light, shadows,
   their sharp edges) robustly, decide the polarity, stretch the contrast and zero what is
   within the background's noise, keeping anti-aliased edges.
3. :func:`select_digit` — connected components: drop frames/page edges, small specks (on a
   drawing's flat canvas only the tiniest: it holds no dust), what reaches in from the edge
   (:func:`without_intruders`: a finger) and the guides drawn round or under the digit
   (:func:`without_guides`).
4. :func:`normalize_stroke` and :func:`fit_box` — bring very thin or very thick strokes
   towards MNIST's width, then scale the longest side to 20 px (area averaging).
5. :func:`place_by_mass` — paste into 28x28 with the centre of mass at (14, 14).

An MNIST image passes through unchanged (its background is flat, its box already 20 px).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter
from scipy import ndimage
from skimage.morphology import convex_hull_image, skeletonize

from digitcore import WORKING_SIZE
from digitcore.errors import NoDigitFoundError, SpecksOnlyError
from digitcore.paper import (
    desk_round_sheet,
    fit_paper,
    flat_canvas,
    otsu_threshold,
    picture_inset,
    turned_canvas,
)
from digitcore.rules import without_rules

BOX = 20
CANVAS = 28
CENTRE = 14.0
PAINT_SIGMA = 8.0  # a turned picture's canvas, painted with its nearest pixels, is smoothed (px)
NOISE_FLOOR = 0.01  # minimum threshold above the background, in [0, 1] luminance units
REPEATED = 2  # a picture of runs of identical rows and columns this long at least,
MIN_RUNS = 5  # this many of them each way within its sides, each this close to a whole
BLOCK_SLACK = 0.2  # number of blocks, is pixel art enlarged: it is read at its own size
MAX_CELLS = 64  # where that is this many cells each way at most (a grid one draws on)
MIN_CONTRAST = 0.04  # ink weaker than this against the background is not ink, unless it is
FAINT_CONTRAST = 0.02  # this strong and a stroke: standing this many times the paper's noise
FAINT_SNR = 8.0  # above it, one shape (its largest piece holds this share of it at half its
ONE_SHAPE = 0.6  # level: not a heavy JPEG's blocks) edged sharply (its level over its slope
SHARP_EDGE = 8.0  # at that edge at most this many px: not a tint's soft blotch)
SURE_STROKE = 3.0  # when the pixels this many times the noise floor are few, the ink's level
SPARSE = 0.25  # (fewer than this share of those above the floor: a small digit on grainy
MIN_SURE = 5  # paper) is measured on them alone, when there are this many of them
CLEAR = 5.0  # ink whose level is this many times a coarse grain's stands out from it
SPECKS = 0.02  # ink spanning less than this share of the picture's longest side is specks,
DRAWN_SPAN = 3  # px, on a drawing's flat canvas (no dust, no grain) less than this
FRAME_LINE = 0.05  # a line across the picture thinner than this share of it is a frame or rule
FRAME_BAND = 0.15  # ink along a side, closer to it on average than this share, is a page edge
SHADE_SOLID = 0.8  # ink along a side alone, filling this share of its outline, is a shadow
BOX_SIDE = 0.8  # a box round the digit: its ink runs along this share of each of its sides
BOX_BAND = 0.12  # within this share of the box's smaller side from that side
BOX_MASS = 0.15  # what a guide holds has at least this share of its ink
BOX_CONTENT = 0.25  # a guide's content spans at least this share of it (else: specks)
UNDERLINE = 0.2  # a rule under the digit: at most this share as thick as it is wide,
UNDER_WIDTH = 0.5  # and at least this share as wide as the digit is high. A comb's teeth
COMB_TEETH = 0.25  # (columns twice as thick as its line) are at most this share of them,
COMB_SINGLE = 0.9  # and at least this share cross one stroke (the line, or a tooth on it);
UNDER_SPECK = 0.25  # ink this much smaller than the largest piece is a speck, not writing
STROKE_RANGE = (1.2, 3.0)  # MNIST's stroke width at 20 px scale, 5th-95th percentile
STROKE_TARGET = (1.6, 2.4)
EIGHT_NEIGHBOURS = np.ones((3, 3))
FAINT = 0.1  # ink this faint joins no component: halos must not bridge a digit and a box
FAINT_REACH = 2  # px: the faint edges this close to kept ink go with it
TALL_PIECE = 0.5  # digit-sized pieces of a row: this share of the ink's height at least,
HEAVY_PIECE = 0.25  # and this share of the heaviest piece's ink
SAME_COLUMN = 0.3  # pieces overlapping sideways by this share of the narrower are one digit
ROW_WIDTH = 0.9  # several digits side by side are at least this many times wider than tall
INTRUDER_DEPTH = 2.0  # ink from the edge this many times broader than a digit's strokes,
INTRUDER_INK = 0.6  # or fainter than this share of its ink (medians), is none of its strokes
INTRUDER_SPAN = 0.4  # (a digit, not a piece of one: at least this share of the other's span)
SPECK_MASS = 0.08  # less ink than this share of the heaviest piece: a speck, unless it is near
WIDE_ROW = 2.0  # ink this many times wider than tall is several digits, touching or not
GRAIN_BLUR = 1.5  # px: where nothing stands out from a dim paper's grain (its level under
DIM_PAPER = 0.35  # this), the picture is smoothed this much more
HALFTONE = 0.1  # a 1-bit picture whose neighbours differ this often is dots (a halftone),
HALFTONE_BLUR = 1.5  # px: read as the greys they print, smoothed over this many pixels
MID_GREY = 128.0  # the colour contrast's picture is centred on mid-grey,
COLOUR_SCALE = 0.5  # grey levels per unit along the colours' axis (luminance weighs ~0.67)


@dataclass(frozen=True)
class MnistDigit:
    """A picture brought to MNIST form, and how many digits it seemed to hold side by side."""

    mnist: np.ndarray  # 28x28 float32 in [0, 1], white ink on black, MNIST-placed
    side_by_side: int = 1  # 2 or more: a number (several digits), not one digit
    aspect: float = 1.0  # the ink's width over its height: wide ink may be digits that touch
    box: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)  # x0, y0, x1, y1: shares
    span: int = 0  # working pixels along the box's longer side (0: not measured)


def mnistify(image: Image.Image) -> np.ndarray:
    """Any picture of one digit -> 28x28 float32 in [0, 1], white ink on black, MNIST-placed."""
    return mnist_digit(image).mnist


def mnist_digit(image: Image.Image) -> MnistDigit:
    """:func:`mnistify`, also counting the digit-sized pieces of ink side by side."""
    gray = unrepeated(to_luminance(image))
    ink, (top, left) = picture_ink(gray)
    try:
        selection = select_digit(ink)
    except SpecksOnlyError:
        if not flat_canvas(gray):
            raise
        selection = select_digit(ink, least_span=DRAWN_SPAN)  # a canvas holds no dust
    mnist = place_by_mass(fit_box(normalize_stroke(selection.crop)))
    height, width = selection.crop.shape
    top, left = top + selection.corner[0], left + selection.corner[1]
    rows, cols = gray.shape
    box = (left / cols, top / rows, (left + width) / cols, (top + height) / rows)
    return MnistDigit(mnist, selection.side_by_side, width / height, box, max(height, width))


def to_luminance(image: Image.Image) -> np.ndarray:
    """One float32 channel in [0, 1], at most ``WORKING_SIZE`` on its longest side; a 1-bit
    halftone smoothed into the greys it prints, before it is shrunk."""
    if image.mode == "RGB" and "transparency" not in image.info:
        image = image.convert("L")  # before shrinking: one channel to resize, not three
    elif image.mode == "1" and _halftone(image):
        image = image.convert("L").filter(ImageFilter.GaussianBlur(HALFTONE_BLUR))
    elif max(image.size) > WORKING_SIZE:
        image = image.copy()
    if max(image.size) > WORKING_SIZE:
        image.thumbnail((WORKING_SIZE, WORKING_SIZE), Image.Resampling.BOX, reducing_gap=None)
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, dtype=np.float32)
        return np.clip(values / _white(values, mode), 0.0, 1.0)
    if mode == "CMYK":
        image = image.convert("RGB")
    if _has_alpha(image):
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255
        alpha = rgba[..., 3]
        if alpha.min() < 0.98:
            gray = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
            opaque = alpha > 0.5
            ink_is_dark = not opaque.any() or float(np.median(gray[opaque])) < 0.5
            backdrop = 1.0 if ink_is_dark else 0.0
            return alpha * gray + (1 - alpha) * backdrop
    return np.asarray(image if mode == "L" else image.convert("L"), dtype=np.float32) / 255


def _halftone(image: Image.Image) -> bool:
    """Whether a 1-bit ``image`` is a halftone (a photo dithered, a fax's photo mode): its
    greys are dots, so that neighbours differ at ``HALFTONE`` of the pixels or more, where a
    drawing or a thresholded scan changes only along its strokes' edges."""
    bits = np.asarray(image, dtype=bool)
    across = np.count_nonzero(bits[:, 1:] != bits[:, :-1]) + np.count_nonzero(bits[1:] != bits[:-1])
    return across >= HALFTONE * 2 * bits.size


def _white(values: np.ndarray, mode: str) -> float:
    """The value of white in a wide-range image: 1 in a float image within [0, 1] (as numpy,
    scikit-image or tifffile write one), 65535 where values pass 255 (16-bit), else 255."""
    if mode == "F" and float(values.min()) >= 0.0 and float(values.max()) <= 1.0:
        return 1.0
    return 65535.0 if float(values.max()) > 255 else 255.0


def unrepeated(gray: np.ndarray) -> np.ndarray:
    """``gray`` at its own size where it was enlarged by repeating its pixels, else as it is.

    Pixel art, a digit drawn on a coarse grid and exported or zoomed (nearest neighbour), is
    blocks of one value: shrunk to 20 px by area averaging they stay a staircase the network
    never saw, where the picture at its own size, enlarged smoothly as small pictures are,
    reads as MNIST's digits do. Such a picture is runs of identical rows and of identical
    columns, each (the cut ones at the sides aside) about a whole number of blocks long,
    ``REPEATED`` pixels or more, ``MIN_RUNS`` each way at least (a plus sign drawn square to
    the frame has three), on a grid one draws on (``MAX_CELLS`` each way at most: a heavy
    JPEG leaves a photo's blank paper in flat blocks of 8 px too): a drawn or photographed
    picture changes from one row or column to the next somewhere along it.
    """
    runs = [_runs(gray), _runs(gray.T)]
    inner = np.concatenate([r[1:-1] for r in runs])
    if min(r.size for r in runs) < 2 + MIN_RUNS or inner.min() < REPEATED:
        return gray
    block = float(inner.min())
    for _ in range(2):  # a scale of a fraction (16 px to 280: blocks of 17 and 18)
        block = float(inner.sum()) / float(np.round(inner / block).sum())
    if np.abs(inner / block - np.round(inner / block)).max() > BLOCK_SLACK:
        return gray
    height, width = gray.shape
    size = (max(1, round(width / block)), max(1, round(height / block)))
    if max(size) > MAX_CELLS:
        return gray  # a photo's blank paper saved as a heavy JPEG: flat 8 x 8 blocks
    image = Image.fromarray(gray, mode="F").resize(size, Image.Resampling.BOX)
    return np.asarray(image, dtype=np.float32)


def _runs(gray: np.ndarray) -> np.ndarray:
    """The lengths of the runs of identical columns of ``gray``, left to right."""
    changes = np.flatnonzero((gray[:, 1:] != gray[:, :-1]).any(axis=0)) + 1
    return np.diff(np.concatenate([[0], changes, [gray.shape[1]]]))


def colour_contrast(image: Image.Image) -> Image.Image | None:
    """The picture along the axis its hues vary most (the first principal component of its
    colours, their brightness left out), as one grey channel at most ``WORKING_SIZE`` long;
    ``None`` for a picture without colour or with transparency.

    Luminance weighs red, green and blue as the eye does, so a pen and a paper of two hues
    equally bright (a red brush on a green canvas) come out one grey, and the picture blank.
    Along the axis of the colours' own spread they are apart. Light and shadow scale the
    colours along the picture's mean colour, so that direction is left out: along the whole
    spread, a shadow or a lamp's fall-off on a blank sheet came back as the luminance at half
    its contrast and passed for a stroke. The sign is of no matter (:func:`ink_map` decides
    polarity), the scale is: the colours are not stretched, so the faint tints of plain paper
    under mixed light stay within its noise, and a blank picture blank.
    """
    if image.mode not in ("RGB", "P", "CMYK", "YCbCr") or _has_alpha(image):
        return None
    image = image.convert("RGB")
    if max(image.size) > WORKING_SIZE:
        image.thumbnail((WORKING_SIZE, WORKING_SIZE), Image.Resampling.BOX, reducing_gap=None)
    rgb = np.asarray(image, dtype=np.float32).reshape(-1, 3)
    mean = rgb.mean(axis=0)
    centred = rgb - mean
    shade = mean / max(float(np.linalg.norm(mean)), 1e-6)
    hue = centred - np.outer(centred @ shade, shade)
    axis = np.linalg.eigh(hue.T @ hue)[1][:, -1]
    grey = np.clip(MID_GREY + COLOUR_SCALE * (centred @ axis), 0, 255)
    return Image.fromarray(grey.reshape(image.height, image.width).astype(np.uint8))


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info


def picture_ink(gray: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """The ink of the picture in ``gray`` (:func:`ink_map`) and the picture's top-left corner.

    A picture pasted on a flat canvas (:func:`~digitcore.paper.picture_inset`) is the picture:
    the canvas round it is no paper of it and holds no ink, and its edges are the picture's,
    where a finger reaches in or the frame cuts the digit. So is a sheet of paper photographed
    on a desk (:func:`~digitcore.paper.desk_round_sheet`): the sheet is read from the box
    round it, what the box holds of the desk (a sheet at a slant) painted over as a turned
    picture's canvas is.
    """
    inset = picture_inset(gray)
    if inset is not None:
        return ink_map(gray[inset]), (inset[0].start, inset[1].start)
    desk = desk_round_sheet(gray)
    if desk is None:
        return ink_map(gray), (0, 0)
    rows, cols = np.nonzero((~desk).any(axis=1))[0], np.nonzero((~desk).any(axis=0))[0]
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    return ink_map(gray[box], desk[box]), (box[0].start, box[1].start)


def ink_map(gray: np.ndarray, canvas: np.ndarray | None = None, grain: float = 0.0) -> np.ndarray:
    """Ink intensity in [0, 1] on a zero background, whatever the polarity and lighting.

    Nothing here trusts the image's border: the paper is found as the larger, more
    border-hugging of the two brightness classes, then modelled from its own pixels. A
    picture turned on a flat canvas (:func:`~digitcore.paper.turned_canvas`), or the
    ``canvas`` given (a mask), has the canvas painted over with the picture's nearest pixels,
    smoothed. Where nothing stands out from the grain of a dim paper (under ``DIM_PAPER``),
    the picture is looked at again smoothed by ``GRAIN_BLUR`` px more (``grain``): in a dim
    photo a pencil's strokes stand a few levels above the paper, under the sensor's grain
    pixel by pixel, but clear over a stroke's width.
    """
    source = gray
    if canvas is None:
        canvas = turned_canvas(gray)
    if canvas is not None and canvas.any():  # the canvas takes the colour of the picture's
        # nearest pixel, smoothed: copied outwards, the paper's grain streaks into lines a
        # small digit's faint ink competes with
        nearest = ndimage.distance_transform_edt(
            canvas, return_distances=False, return_indices=True
        )
        painted = ndimage.gaussian_filter(gray[tuple(nearest)], PAINT_SIGMA)
        gray = np.where(canvas, painted, gray)
    unsmoothed = None
    if min(gray.shape) >= 96 or grain:
        sigma = (min(gray.shape) / 400 + 0.5 if min(gray.shape) >= 96 else 0.0) + grain
        unsmoothed, gray = gray, ndimage.gaussian_filter(gray, sigma=sigma)
    paper = fit_paper(gray, unsmoothed)
    ink = (paper.level - gray) / paper.scale if paper.dark_ink else gray - paper.level
    floor = max(4.0 * paper.noise, NOISE_FLOOR)
    strong = ink[ink > floor]
    if strong.size == 0:
        raise NoDigitFoundError(
            "no digit found: the image is blank (no ink against the background)"
        )
    sure = strong[strong > SURE_STROKE * floor]
    sparse = MIN_SURE <= sure.size < SPARSE * strong.size  # a little ink among paper grain
    peak = float(np.percentile(sure if sparse else strong, 90))
    above = _above_the_grain(strong)
    grain_level = peak - floor < max(MIN_CONTRAST, 2.0 * paper.noise)  # the grain's, not ink's
    if grain_level and above is None and not _faint_stroke(ink, floor, peak, paper.noise):
        if not grain and paper.dark_ink and float(np.median(paper.level)) < DIM_PAPER:
            return ink_map(source, canvas, GRAIN_BLUR)
        raise NoDigitFoundError("no digit found: nothing stands out from the background")
    if above is not None and (grain_level or peak <= above[0]):  # within the grain: blotches
        floor, peak = above
    return np.clip((ink - floor) / (peak - floor), 0.0, 1.0).astype(np.float32)


def _faint_stroke(ink: np.ndarray, floor: float, peak: float, noise: float) -> bool:
    """Whether ink fainter than ``MIN_CONTRAST`` is a stroke all the same: light pencil in a
    dim or flat-lit photo stands a few levels above the paper, but far above its noise, in
    one shape whose edge is as sharp as a pen's, no line along the picture's edge. What else
    rises that little is not so: a tinted sheet's blotches have soft edges a blotch wide, a
    heavy JPEG's blocks are many pieces on a paper with no noise, a grainy sheet's specks are
    within a few noises, and a gradient leaves a line along its black edge."""
    level = peak - floor
    if level < FAINT_CONTRAST or level < FAINT_SNR * noise:
        return False
    half = ink > floor + 0.5 * level
    labels, count = ndimage.label(half, EIGHT_NEIGHBOURS)
    if count == 0:
        return False
    areas = np.bincount(labels.ravel())[1:]
    largest = int(np.argmax(areas))
    if areas[largest] < ONE_SHAPE * half.sum():
        return False
    box = ndimage.find_objects(labels)[largest]
    touches = _reaches_border(box, half.shape)
    if _Component(largest + 1, 0.0, int(areas[largest]), box, touches).frame_like(labels):
        return False  # a line along the picture's edge: a gradient's black end, a page's edge
    slope = np.hypot(*np.gradient(ink))[half & ~ndimage.binary_erosion(half)]
    return level <= SHARP_EDGE * float(np.median(slope))


def _reaches_border(box: tuple[slice, slice], shape: tuple[int, ...]) -> bool:
    """Whether ``box`` reaches a side of a picture of ``shape``."""
    rows, cols = box
    return rows.start == 0 or cols.start == 0 or rows.stop == shape[0] or cols.stop == shape[1]


def _above_the_grain(strong: np.ndarray) -> tuple[float, float] | None:
    """The floor and full level of ink standing out from a coarse grain, for where the level
    of what rises above the noise floor is the grain's. A heavy JPEG (quality 10 or less)
    leaves the paper in flat blocks a few levels apart, more of them above the floor than a
    digit has pixels, and the paper's measured noise, within the blocks, near none; mottled
    paper (stains, recycled or handmade paper, a wall) rises above it in blotches wider than
    the noise's reach, and outweighs the digit's strokes. Where those values fall into two
    classes (Otsu), the upper ``CLEAR`` times the lower (medians), the ink is the upper class
    and the floor the top of the lower; else nothing stands out (``None``)."""
    split = otsu_threshold(strong)
    grain, ink = strong[strong <= split], strong[strong > split]
    if ink.size >= MIN_SURE and np.median(ink) >= CLEAR * np.median(grain):
        floor, peak = float(np.percentile(grain, 99)), float(np.percentile(ink, 90))
        if peak - floor >= MIN_CONTRAST:
            return floor, peak
    return None


@dataclass
class _Component:
    label: int
    mass: float
    area: int
    box: tuple[slice, slice]
    touches_border: bool

    @property
    def extent(self) -> tuple[int, int]:
        """Its box's height and width."""
        rows, cols = self.box
        return rows.stop - rows.start, cols.stop - cols.start

    def frame_like(self, labels: np.ndarray) -> bool:
        """A page edge, scan border, frame or ruled line, not a digit that the frame cuts.

        Such a thing runs along a side of the picture (covers most of it, its ink close to
        it) or crosses the whole picture as a thin line. A digit cut by a tight crop touches
        the sides only where its strokes reach them, its ink mostly away from them.
        """
        return self.crosses(labels) or self.along_side(labels)

    def crosses(self, labels: np.ndarray) -> bool:
        """A thin line across the whole picture, from one side to the other."""
        if not self.touches_border:
            return False
        height, width = labels.shape
        box_height, box_width = self.extent
        return (box_width >= 0.9 * width and self.area / box_width < FRAME_LINE * height) or (
            box_height >= 0.9 * height and self.area / box_height < FRAME_LINE * width
        )

    def along_side(self, labels: np.ndarray) -> bool:
        """Ink that runs along a side of the picture, close to it: a page edge, a frame."""
        if not self.touches_border:
            return False
        height, width = labels.shape
        rows, cols = self.box
        box_height, box_width = self.extent
        mask = labels[self.box] == self.label
        ys, xs = np.nonzero(mask)
        sides = (  # (touches, share of the side covered, mean distance / picture's depth)
            (rows.start == 0, mask[0].mean() * box_width / width, ys.mean() / height),
            (rows.stop == height, mask[-1].mean() * box_width / width,
             (box_height - 1 - ys.mean()) / height),
            (cols.start == 0, mask[:, 0].mean() * box_height / height, xs.mean() / width),
            (cols.stop == width, mask[:, -1].mean() * box_height / height,
             (box_width - 1 - xs.mean()) / width),
        )  # fmt: skip
        for touches, covered, distance in sides:
            if not touches:
                continue
            if covered >= 0.6 and distance < FRAME_BAND:
                return True
            if covered >= 0.9 and self.area > 0.4 * height * width:
                return True
        return False

    def shade(self, labels: np.ndarray) -> bool:
        """A patch of shade along a side of the picture: a shadow cast from outside it, or a
        page's dark edge. It runs along the side and fills its outline (``SHADE_SOLID`` of
        its convex hull at least); a digit that a shadow's band runs into is far from convex.
        Cast from outside one side, it leaves the opposite one: what reaches all four sides
        is what a crop close to the ink left (a 1 cut to its stroke fills its outline too)."""
        rows, cols = self.box
        height, width = labels.shape
        if not self.along_side(labels) or (
            rows.start == 0 and cols.start == 0 and rows.stop == height and cols.stop == width
        ):
            return False
        mask = labels[self.box] == self.label
        return self.area >= SHADE_SOLID * np.count_nonzero(convex_hull_image(mask))

    @property
    def span(self) -> int:
        rows, cols = self.box
        return max(rows.stop - rows.start, cols.stop - cols.start)

    def depth(self, labels: np.ndarray) -> float:
        """How far its deepest pixel lies from its edge: about half a stroke's width."""
        mask = np.pad(labels[self.box] == self.label, 1)
        return float(ndimage.distance_transform_edt(mask).max())

    def stroke_depth(self, labels: np.ndarray) -> float:
        """Half its typical stroke's width: the median distance to its edge along its
        skeleton. Unlike :meth:`depth`, a loop that the ink fills (a blurred or thick 6,
        8 or 9) or a blot barely counts."""
        mask = np.pad(labels[self.box] == self.label, 1)
        distance, skeleton = ndimage.distance_transform_edt(mask), skeletonize(mask)
        return float(np.median(distance[skeleton]) if skeleton.any() else distance.max())

    def level(self, labels: np.ndarray, ink: np.ndarray) -> float:
        """Its median ink."""
        return float(np.median(ink[self.box][labels[self.box] == self.label]))

    def around(self, labels: np.ndarray, others: list[_Component]) -> bool:
        """Drawn round some of ``others`` (a form's box, a circle round an answer): a hollow
        ring whose hole holds them, or a rectangle, closed or not, whose ink runs along all
        four sides of what it holds."""
        rows, cols = self.box
        height, width = rows.stop - rows.start, cols.stop - cols.start
        if min(height, width) < 8 or self.area > 0.5 * height * width:
            return False
        inside = [
            c for c in others
            if c.box[0].start > rows.start and c.box[0].stop < rows.stop
            and c.box[1].start > cols.start and c.box[1].stop < cols.stop
        ]  # fmt: skip
        if sum(c.mass for c in inside) < BOX_MASS * self.mass:
            return False  # a speck or a piece in a digit's loop: the ring is the writing
        mask = labels[self.box] == self.label
        hole = ndimage.binary_fill_holes(mask) & ~mask
        if all(hole[_centre(c.box, rows.start, cols.start)] for c in inside):
            return True
        band = max(2, round(BOX_BAND * min(height, width)))
        sides = (
            mask[:band].any(axis=0), mask[-band:].any(axis=0),
            mask[:, :band].any(axis=1), mask[:, -band:].any(axis=1),
        )  # fmt: skip
        return all(side.mean() >= BOX_SIDE for side in sides)

    def rule_under(self, others: list[_Component], labels: np.ndarray) -> bool:
        """A line drawn under the rest of the ink: an underline, or a form's comb (an
        underline whose short teeth rise between the characters). Thin, wide, and below
        everything else (specks aside) but for its teeth: few narrow runs of columns, where
        it is much thicker than its line; a comb's lower edge is straight."""
        if not others:
            return False
        rows, cols = self.box
        height, width = rows.stop - rows.start, cols.stop - cols.start
        largest = max(o.span for o in others)
        top, bottom, _, _ = _span([o for o in others if o.span >= UNDER_SPECK * largest])
        if width < UNDER_WIDTH * (bottom - top):
            return False
        if rows.start >= bottom:
            return height <= UNDERLINE * width
        mask = labels[self.box] == self.label
        counts = mask.sum(axis=0)
        thick = np.median(counts[counts > 0])
        runs, _ = ndimage.label(counts > 2 * thick)
        teeth = int(np.count_nonzero(runs))
        if thick > UNDERLINE * width or teeth > COMB_TEETH * width:
            return False
        if any(run.stop - run.start > 2 * thick + 2 for (run,) in ndimage.find_objects(runs)):
            return False  # a stroke wider than the line: writing, not a tooth
        inked = mask[:, counts > 0]
        strokes = inked[0] + np.count_nonzero(np.diff(inked.astype(np.int8), axis=0) == 1, axis=0)
        if np.mean(strokes == 1) < COMB_SINGLE:
            return False  # columns crossing two strokes or more: the bowls of written digits
        bottoms = inked.shape[0] - 1 - inked[::-1].argmax(axis=0)
        columns = np.arange(bottoms.size)
        fit = np.polyval(np.polyfit(columns, bottoms, 1), columns)
        if np.percentile(np.abs(bottoms - fit), 90) > thick + 2:
            return False  # its lower edge is not straight: the bottoms of written strokes
        tops = np.sort(rows.start + mask.argmax(axis=0)[counts > 0])
        return tops[min(2 * teeth, tops.size - 1)] >= bottom  # teeth and their blurred rims aside


@dataclass(frozen=True)
class Selection:
    crop: np.ndarray  # the ink of the digit, cropped to its box
    side_by_side: int  # digit-sized pieces of ink in a row (1 for one digit)
    corner: tuple[int, int] = (0, 0)  # the crop's top and left in the ink map


def select_digit(ink: np.ndarray, least_span: float | None = None) -> Selection:
    """The ink of the digit alone, cropped to its bounding box (frames, guides and specks
    removed); ink spanning under ``least_span`` px in all (:func:`speck_size` unless given) is
    only specks."""
    ink = without_rules(ink)
    labels, count = ndimage.label(ink > FAINT, structure=EIGHT_NEIGHBOURS)
    boxes = ndimage.find_objects(labels)
    flat, values = labels.ravel(), ink.ravel()
    if flat.size > 4096:  # mostly background: count over the ink only (same sums, same order)
        inked = flat > 0
        flat, values = flat[inked], values[inked]
    masses = np.bincount(flat, weights=values, minlength=count + 1)[1:]
    strong = np.bincount(flat[values >= 0.5], minlength=count + 1)[1:]
    areas = np.bincount(flat, minlength=count + 1)[1:]
    parts = [
        _Component(
            i + 1,
            float(masses[i]),
            int(areas[i]),
            boxes[i],
            _reaches_border(boxes[i], ink.shape),
        )
        for i in range(count)
        if strong[i] > 0
    ]
    digit_like = without_guides([c for c in parts if not c.frame_like(labels)], labels)
    digit_like = without_intruders(digit_like, labels, ink)
    if digit_like:
        parts = digit_like
    elif parts and all(c.shade(labels) for c in parts):
        raise NoDigitFoundError("no digit found: only a shadow along the side of the picture")
    if not parts:
        raise NoDigitFoundError("no digit found: the image holds no clear strokes")
    parts = with_stroke_pieces(parts, labels)
    top, bottom, left, right = _span(parts)
    if max(bottom - top, right - left) < (least_span or speck_size(labels.shape)):
        raise SpecksOnlyError("no digit found: only specks, nothing the size of a digit")
    kept = np.zeros(count + 1, dtype=bool)
    kept[[c.label for c in parts]] = True
    region = (
        slice(max(0, top - FAINT_REACH), bottom + FAINT_REACH),
        slice(max(0, left - FAINT_REACH), right + FAINT_REACH),
    )
    core = kept[labels[region]]
    edges = ndimage.binary_dilation(core, EIGHT_NEIGHBOURS, FAINT_REACH)
    keep = core | (edges & (labels[region] == 0) & (ink[region] > 0))
    rows, cols = np.nonzero(keep)
    inside = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
    crop = np.where(keep, ink[region], 0.0)[inside].astype(np.float32)
    corner = (region[0].start + inside[0].start, region[1].start + inside[1].start)
    return Selection(crop, pieces_side_by_side(parts, bottom - top, right - left), corner)


def with_stroke_pieces(parts: list[_Component], labels: np.ndarray) -> list[_Component]:
    """The pieces holding ``SPECK_MASS`` of the heaviest one's ink or more, and the lighter
    ones within a stroke's width of them: the pieces of a broken stroke (a dry pen, chalk, a
    pencil skipping on rough paper), not specks. Lighter pieces farther off are specks."""
    biggest = max(parts, key=lambda c: c.mass)
    kept = [c for c in parts if c.mass >= SPECK_MASS * biggest.mass]
    light = [c for c in parts if c.mass < SPECK_MASS * biggest.mass]
    if not light:
        return kept
    reach = max(2.0, 2.0 * biggest.stroke_depth(labels))
    grow = int(np.ceil(reach)) + 1
    top, bottom, left, right = _span(kept)
    region = labels[max(0, top - grow) : bottom + grow, max(0, left - grow) : right + grow]
    distance = ndimage.distance_transform_edt(~np.isin(region, [c.label for c in kept]))
    near = set(np.unique(region[distance <= reach]).tolist())
    return kept + [c for c in light if c.label in near]


def speck_size(shape: tuple[int, ...]) -> float:
    """The span under which ink is only specks, for a picture of ``shape``."""
    return max(3, SPECKS * max(shape))


def without_intruders(
    parts: list[_Component], labels: np.ndarray, ink: np.ndarray
) -> list[_Component]:
    """``parts`` less what reaches in from the picture's edge beside a digit that stands clear
    of the edges: a finger or a thumb over the paper, the edge of something else in the photo.
    Such a thing is no stroke of that digit: far broader at its broadest than the digit's
    strokes typically are, or far fainter (only its rim left once the paper's level has
    followed its broad middle)."""
    least = speck_size(labels.shape)
    inside = [c for c in parts if not c.touches_border and c.span >= least]
    if not inside or len(inside) == len(parts):
        return parts
    digit = max(inside, key=lambda c: c.mass)
    depth, level = digit.stroke_depth(labels), digit.level(labels, ink)

    def intrudes(part: _Component) -> bool:
        if not part.touches_border or digit.span < INTRUDER_SPAN * part.span:
            return False
        broad = part.depth(labels) >= INTRUDER_DEPTH * depth
        return broad or part.level(labels, ink) < INTRUDER_INK * level

    return [c for c in parts if not intrudes(c)]


def without_guides(parts: list[_Component], labels: np.ndarray) -> list[_Component]:
    """``parts`` without the lines people draw round or under what they write: a box (one
    stroke or several) or a circle round the digit, and a line under it. A guide alone, or
    round or over no more than specks, stays: it is what was sent."""
    if len(parts) < 2:
        return parts
    guides = [c for c in parts if c.around(labels, [o for o in parts if o is not c])]
    guides += [c for c in _box_strokes(parts, labels) if c not in guides]
    rest = [c for c in parts if c not in guides]
    guides += [c for c in rest if c.rule_under([o for o in rest if o is not c], labels)]
    rest = [c for c in parts if c not in guides]
    if not rest:
        return parts
    top, bottom, left, right = _span(rest)
    all_top, all_bottom, all_left, all_right = _span(parts)
    share = max((bottom - top) / (all_bottom - all_top), (right - left) / (all_right - all_left))
    return rest if share >= BOX_CONTENT else parts


def _span(parts: list[_Component]) -> tuple[int, int, int, int]:
    """The box of all of ``parts``: (top, bottom, left, right), bottom and right exclusive."""
    return (
        min(c.box[0].start for c in parts),
        max(c.box[0].stop for c in parts),
        min(c.box[1].start for c in parts),
        max(c.box[1].stop for c in parts),
    )


def _box_strokes(parts: list[_Component], labels: np.ndarray) -> list[_Component]:
    """The strokes of a box drawn in pieces (corners that do not meet) round the rest: parts
    whose ink keeps to the edges of everything's box and runs along three sides or more."""
    top, bottom, left, right = _span(parts)
    band = max(2, round(BOX_BAND * min(bottom - top, right - left)))
    edges = np.zeros((4, max(bottom - top, right - left)), dtype=bool)
    strokes = []
    for c in parts:
        ys, xs = np.nonzero(labels[c.box] == c.label)
        ys, xs = ys + c.box[0].start, xs + c.box[1].start
        near = ys < top + band, ys >= bottom - band, xs < left + band, xs >= right - band
        if np.mean(np.logical_or.reduce(near)) < 0.9:
            continue
        strokes.append(c)
        for edge, (close, along) in enumerate(
            zip(near, (xs - left,) * 2 + (ys - top,) * 2, strict=True)
        ):
            edges[edge, along[close]] = True
    lengths = (right - left,) * 2 + (bottom - top,) * 2
    sides = sum(edges[i, :length].mean() >= BOX_SIDE for i, length in enumerate(lengths))
    return strokes if sides >= 3 and len(strokes) < len(parts) else []


def _centre(box: tuple[slice, slice], top: int, left: int) -> tuple[int, int]:
    """The middle of ``box``, relative to (``top``, ``left``)."""
    rows, cols = box
    return (rows.start + rows.stop) // 2 - top, (cols.start + cols.stop) // 2 - left


def pieces_side_by_side(parts: list[_Component], height: int, width: int) -> int:
    """How many digit-sized pieces of the kept ink stand in a row: 1 for one digit.

    A piece is digit-sized when it spans at least ``TALL_PIECE`` of the ink's height and
    holds ``HEAVY_PIECE`` of the heaviest one's ink (a 5's flag, a serif or a speck does not);
    pieces overlapping sideways by ``SAME_COLUMN`` of the narrower one are one (a broken 4).
    Several pieces count only when the ink is at least ``ROW_WIDTH`` times as wide as tall: a
    0 drawn as two arcs is narrower than two digits. Ink ``WIDE_ROW`` times as wide as tall
    is taken for at least two digits even in one piece: digits that touch.
    """
    if width < ROW_WIDTH * height:
        return 1
    biggest = max(c.mass for c in parts)
    spans = sorted(
        (c.box[1].start, c.box[1].stop)
        for c in parts
        if c.box[0].stop - c.box[0].start >= TALL_PIECE * height and c.mass >= HEAVY_PIECE * biggest
    )
    if not spans:
        return 1
    count, (group_start, group_stop) = 1, spans[0]
    for start, stop in spans[1:]:
        narrower = min(stop - start, group_stop - group_start)
        if group_stop - start < SAME_COLUMN * narrower:
            count, group_start, group_stop = count + 1, start, stop
        else:
            group_stop = max(group_stop, stop)
    return max(count, 2) if width >= WIDE_ROW * height else count


def stroke_width(ink: np.ndarray) -> float:
    """Mean stroke width in pixels: twice the ink area over its boundary length."""
    mask = ink >= 0.5
    area = int(mask.sum())
    if area == 0:
        return 0.0
    # Boundary length: changes between neighbours, plus the ink on the image's own edges.
    inside = np.count_nonzero(mask[1:] != mask[:-1]) + np.count_nonzero(mask[:, 1:] != mask[:, :-1])
    rim = np.count_nonzero(mask[[0, -1]]) + np.count_nonzero(mask[:, [0, -1]])
    return 2.0 * area / (inside + rim)


def normalize_stroke(crop: np.ndarray) -> np.ndarray:
    """Thicken hairlines and thin marker strokes towards MNIST's width at 20 px scale."""
    scale = BOX / max(crop.shape)
    width = stroke_width(crop) * scale
    low, high = STROKE_RANGE
    if width <= 0 or low <= width <= high:
        return crop
    target = STROKE_TARGET[0] if width < low else STROKE_TARGET[1]
    size = round(abs(target - width) / scale)
    if size < 1:
        return crop
    footprint = np.ones((size + 1, size + 1), dtype=bool)
    if width < low:
        return ndimage.grey_dilation(crop, footprint=footprint)
    return ndimage.grey_erosion(crop, footprint=footprint)


def fit_box(crop: np.ndarray) -> np.ndarray:
    """Scale so the longest side is 20 px, aspect kept (area averaging when shrinking)."""
    height, width = crop.shape
    scale = BOX / max(height, width)
    if scale == 1.0:
        return crop
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    method = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    resized = np.asarray(Image.fromarray(crop, mode="F").resize(size, method), dtype=np.float32)
    peak = float(resized.max())
    return np.clip(resized / peak, 0.0, 1.0) if peak > 0 else resized


def place_by_mass(patch: np.ndarray) -> np.ndarray:
    """Paste ``patch`` into a black 28x28 canvas with its centre of mass at (14, 14)."""
    height, width = patch.shape
    total = float(patch.sum())
    cy = float(patch.sum(axis=1) @ np.arange(height)) / total
    cx = float(patch.sum(axis=0) @ np.arange(width)) / total
    top = min(max(round(CENTRE - cy), 0), CANVAS - height)
    left = min(max(round(CENTRE - cx), 0), CANVAS - width)
    canvas = np.zeros((CANVAS, CANVAS), dtype=np.float32)
    canvas[top : top + height, left : left + width] = patch
    return canvas
