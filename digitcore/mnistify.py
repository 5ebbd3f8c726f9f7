"""Turn a real picture of one handwritten digit into what an MNIST digit looks like.

MNIST digits are white ink on black, anti-aliased, scaled so the longest side of the ink is
20 px with the aspect ratio kept, and placed in 28x28 with their centre of mass at the centre.
Uploads are photos, scans and canvas exports instead, so each step here undoes one way a real
picture differs (SPEC §4):

1. :func:`to_luminance` — any mode to one float channel; ink that lives in the alpha channel
   (a transparent canvas) is composited onto a background that contrasts with it.
2. :func:`ink_map` — fit the background (uneven light) robustly, decide the polarity, stretch
   the contrast and zero what is within the background's noise, keeping anti-aliased edges.
3. :func:`select_digit` — connected components: drop frames/page edges and small specks.
4. :func:`normalize_stroke` and :func:`fit_box` — bring very thin or very thick strokes
   towards MNIST's width, then scale the longest side to 20 px (area averaging).
5. :func:`place_by_mass` — paste into 28x28 with the centre of mass at (14, 14).

An MNIST image passes through unchanged (its background is flat, its box already 20 px).
Such an image (grayscale, small, pure black border, one connected digit) takes a shortcut,
:func:`_on_black`, that computes exactly what the steps above would, in fewer numpy calls.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from digitcore import WORKING_SIZE
from digitcore.errors import NoDigitFoundError

BOX = 20
CANVAS = 28
CENTRE = 14.0
NOISE_FLOOR = 0.01  # minimum threshold above the background, in [0, 1] luminance units
MIN_CONTRAST = 0.06  # ink weaker than this against the background is not ink
STROKE_RANGE = (1.2, 3.0)  # MNIST's stroke width at 20 px scale, 5th-95th percentile
STROKE_TARGET = (1.6, 2.4)
EIGHT_NEIGHBOURS = np.ones((3, 3))


def mnistify(image: Image.Image) -> np.ndarray:
    """Any picture of one digit -> 28x28 float32 in [0, 1], white ink on black, MNIST-placed."""
    crop = _on_black(image)
    if crop is None:
        crop = select_digit(ink_map(to_luminance(image)))
    return place_by_mass(fit_box(normalize_stroke(crop)))


def mnistify_many(images: Sequence[Image.Image]) -> list[np.ndarray | Exception]:
    """:func:`mnistify` of each image, or the exception it raised; the same results.

    The MNIST-like images among them share the shortcut's numpy calls (:func:`_on_black_many`):
    for a group of 28x28 uploads, half the cost of one :func:`mnistify` call each.
    """
    results: list[np.ndarray | Exception] = []
    for image, crop in zip(images, _on_black_many(images), strict=True):
        try:
            if crop is None:
                crop = select_digit(ink_map(to_luminance(image)))
            results.append(place_by_mass(fit_box(normalize_stroke(crop))))
        except Exception as exc:
            results.append(exc)
    return results


def _on_black(image: Image.Image) -> np.ndarray | None:
    """:func:`select_digit` of :func:`ink_map` for an MNIST-like upload, else ``None``.

    Applies to a small grayscale image (no blur) whose border is pure black and whose ink is
    one 8-connected component: then the background is flat zero with no noise, the polarity
    is white on black, nothing touches the border and there is nothing to drop, so the steps
    reduce to the contrast stretch and the crop, computed with the same expressions.
    Anything else, including every case that raises, returns ``None`` for the full path.
    """
    return _on_black_many([image])[0]


def _on_black_many(images: Sequence[Image.Image]) -> list[np.ndarray | None]:
    """:func:`_on_black` of each image; images of one size are stacked and computed together.

    Stacked vertically, images with black borders keep their components apart, so one
    ``ndimage.label`` call labels them all, and sorting the stack's rows gives each image's
    order statistics.
    """
    crops: list[np.ndarray | None] = [None] * len(images)
    groups: dict[tuple[int, int], list[int]] = {}
    for index, image in enumerate(images):
        if image.mode == "L" and "transparency" not in image.info and min(image.size) < 96:
            groups.setdefault(image.size, []).append(index)
    for members in groups.values():
        gray = np.stack([np.asarray(images[i]) for i in members]).astype(np.float32) / 255
        for i, crop in zip(members, _crops_on_black(gray), strict=True):
            crops[i] = crop
    return crops


def _crops_on_black(gray: np.ndarray) -> list[np.ndarray | None]:
    """:func:`_on_black`'s crop (or ``None``) for each image of a k x h x w luminance stack."""
    count, height, width = gray.shape
    crops: list[np.ndarray | None] = [None] * count
    border = np.concatenate([gray[:, [0, -1], :], gray[:, :, [0, -1]].transpose(0, 2, 1)], 2)
    flat = gray.reshape(count, -1)
    strong = flat > NOISE_FLOOR  # ink_map with background 0, noise 0, floor NOISE_FLOOR
    sizes = strong.sum(1)
    ordered = np.sort(np.where(strong, flat, -1.0), axis=1)  # each image's strong values last
    scale = np.ones(count, dtype=np.float32)
    candidates = []
    for i in range(count):
        size = int(sizes[i])
        if size == 0 or border[i].any():
            continue
        (peak,) = _interpolated(ordered[i, flat.shape[1] - size :].__getitem__, size, 90)
        if peak - NOISE_FLOOR >= MIN_CONTRAST:
            scale[i] = peak - NOISE_FLOOR
            candidates.append(i)
    if not candidates:
        return crops
    ink = np.clip((gray[candidates] - NOISE_FLOOR) / scale[candidates, None, None], 0.0, 1.0)
    ink = ink.astype(np.float32)
    labels, _ = ndimage.label((ink > 0).reshape(-1, width), structure=EIGHT_NEIGHBOURS)
    owners = [[] for _ in candidates]
    for rows, cols in ndimage.find_objects(labels):
        owner = rows.start // height
        owners[owner].append((slice(rows.start - owner * height, rows.stop - owner * height), cols))
    has_strong = (ink >= 0.5).any(axis=(1, 2))
    smallest = max(3, 0.04 * max(height, width))
    for k, i in enumerate(candidates):
        if len(owners[k]) != 1 or not has_strong[k]:
            continue
        rows, cols = owners[k][0]
        if max(rows.stop - rows.start, cols.stop - cols.start) >= smallest:
            crops[i] = np.ascontiguousarray(ink[k, rows, cols])
    return crops


def to_luminance(image: Image.Image) -> np.ndarray:
    """One float32 channel in [0, 1], at most ``WORKING_SIZE`` on its longest side."""
    if image.mode == "RGB" and "transparency" not in image.info:
        image = image.convert("L")  # before shrinking: one channel to resize, not three
    elif max(image.size) > WORKING_SIZE:
        image = image.copy()
    if max(image.size) > WORKING_SIZE:
        image.thumbnail((WORKING_SIZE, WORKING_SIZE), Image.Resampling.BOX, reducing_gap=None)
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, dtype=np.float32)
        return values / (65535.0 if values.max() > 255 else 255.0)
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


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info


def ink_map(gray: np.ndarray) -> np.ndarray:
    """Ink intensity in [0, 1] on a zero background, whatever the polarity and lighting."""
    if min(gray.shape) >= 96:
        gray = ndimage.gaussian_filter(gray, sigma=min(gray.shape) / 400 + 0.5)
    background, noise = _fit_background(gray)
    residual = gray - background
    if noise == 0.0:  # a flat, noiseless background: the extremes are the ink
        dark, bright = -float(residual.min()), float(residual.max())
    else:
        low, high = _percentiles(residual.ravel(), 0.5, 99.5)
        dark, bright = -low, high
    ink = -residual if dark > bright else residual
    floor = max(4.0 * noise, NOISE_FLOOR)
    strong = ink[ink > floor]
    if strong.size == 0:
        raise NoDigitFoundError(
            "no digit found: the image is blank (no ink against the background)"
        )
    (peak,) = _percentiles(strong, 90)
    if peak - floor < MIN_CONTRAST:
        raise NoDigitFoundError("no digit found: nothing stands out from the background")
    return np.clip((ink - floor) / (peak - floor), 0.0, 1.0).astype(np.float32)


def _percentiles(values: np.ndarray, *qs: float) -> list[float]:
    """``np.percentile(values, q)`` for each ``q`` of a 1-D float array, in one selection.

    The same order statistics and numpy's own interpolation formula (linear method, in the
    array's precision), so the same results as separate ``np.percentile`` calls, for less.
    """
    last = values.size - 1
    positions = [last * (q / 100) for q in qs]
    ordered = _order_statistics(
        values, {min(int(p) + step, last) for p in positions for step in (0, 1)}
    )
    return _interpolated(ordered.__getitem__, values.size, *qs)


def _interpolated(ordered: Callable[[int], np.floating], size: int, *qs: float) -> list[float]:
    """numpy's linear-method percentiles ``qs`` of ``size`` values, given ``ordered(rank)``."""
    last = size - 1
    results = []
    for q in qs:
        position = last * (q / 100)
        below = int(position)
        if below >= last:
            results.append(float(ordered(last)))
            continue
        gamma = position - below
        a, b = ordered(below), ordered(below + 1)
        step = b - a
        results.append(float(b - step * (1 - gamma) if gamma >= 0.5 else a + step * gamma))
    return results


def _order_statistics(values: np.ndarray, ranks: set[int]) -> dict[int, np.floating]:
    """The values at ``ranks`` (0 = smallest) of a 1-D array, as ``np.partition`` gives them.

    In a large array a rank in a tail is read among the values beyond a threshold taken from a
    sample: they are exactly the smallest (or largest) values, so ranks carry over. Other
    ranks, or a threshold that falls short, take a partition of the whole array.
    """
    size = values.size
    found: dict[int, np.floating] = {}
    if size > 65536:
        sample = np.sort(values[:: size // 1024])
        spacing = size / sample.size
        low = sorted(r for r in ranks if r < size // 8)
        if low:
            need = low[-1] + 1  # values <= threshold must include ranks 0..low[-1]
            threshold = sample[min(sample.size - 1, int(2 * need / spacing) + 8)]
            part = values[values <= threshold]
            if part.size >= need:
                chosen = np.partition(part, low)
                found.update((r, chosen[r]) for r in low)
        high = sorted(r for r in ranks if r >= size - size // 8)
        if high:
            need = size - high[0]  # values >= threshold must include ranks high[0]..size-1
            threshold = sample[max(0, sample.size - 1 - int(2 * need / spacing) - 8)]
            part = values[values >= threshold]
            if part.size >= need:
                offset = size - part.size
                chosen = np.partition(part, [r - offset for r in high])
                found.update((r, chosen[r - offset]) for r in high)
    rest = sorted(ranks - found.keys())
    if rest:
        chosen = np.partition(values, rest)
        found.update((r, chosen[r]) for r in rest)
    return found


def _fit_background(gray: np.ndarray, rounds: int = 4) -> tuple[np.ndarray | np.float32, float]:
    """A robust quadratic surface through the background, and the background's noise level.

    Flat backgrounds (synthetic images, MNIST) take a fast exact path: the level itself.
    """
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    lowest = border.min()
    if lowest == border.max():  # uniform: the median is that value
        return lowest, 0.0
    level = float(np.median(border))
    if np.count_nonzero(border == level) >= 0.9 * border.size:
        return np.float32(level), 0.0
    height, width = gray.shape
    step = max(1, int(np.sqrt(height * width / 4096)))
    ys, xs = np.mgrid[0:height:step, 0:width:step]
    sample = gray[::step, ::step].ravel()
    y, x = (ys.ravel() / height - 0.5), (xs.ravel() / width - 0.5)
    design = np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=1)
    inliers = np.ones(sample.size, dtype=bool)
    noise = 0.0
    for _ in range(rounds):
        coeffs, *_ = np.linalg.lstsq(design[inliers], sample[inliers], rcond=None)
        residual = sample - design @ coeffs
        noise = 1.4826 * float(np.median(np.abs(residual[inliers])))
        inliers = np.abs(residual) <= max(2.5 * noise, 0.004)
    # A column and a row: broadcasting evaluates the same float32 terms as a full grid would.
    gy = (np.arange(height, dtype=np.float32) / height - 0.5)[:, None]
    gx = np.arange(width, dtype=np.float32) / width - 0.5
    c = coeffs.astype(np.float32)
    surface = c[0] + c[1] * gx + c[2] * gy + c[3] * gx * gx + c[4] * gx * gy + c[5] * gy * gy
    return surface, noise


@dataclass
class _Component:
    label: int
    mass: float
    area: int
    box: tuple[slice, slice]
    touches_border: bool

    def frame_like(self, shape: tuple[int, int]) -> bool:
        """A page edge, scan border or table: spans the image thinly, or covers much of it."""
        rows, cols = self.box
        height, width = rows.stop - rows.start, cols.stop - cols.start
        spans = height >= 0.9 * shape[0] or width >= 0.9 * shape[1]
        fill = self.area / (height * width)
        return self.touches_border and (
            (spans and fill < 0.3) or self.area > 0.4 * shape[0] * shape[1]
        )


def select_digit(ink: np.ndarray) -> np.ndarray:
    """The ink of the digit alone, cropped to its bounding box (frames and specks removed)."""
    labels, count = ndimage.label(ink > 0, structure=EIGHT_NEIGHBOURS)
    boxes = ndimage.find_objects(labels)
    flat, values = labels.ravel(), ink.ravel()
    if flat.size > 4096:  # mostly background: count over the ink only (same sums, same order)
        inked = flat > 0
        flat, values = flat[inked], values[inked]
    masses = np.bincount(flat, weights=values, minlength=count + 1)[1:]
    strong = np.bincount(flat[values >= 0.5], minlength=count + 1)[1:]
    areas = np.bincount(flat, minlength=count + 1)[1:]
    height, width = ink.shape
    parts = [
        _Component(
            i + 1,
            float(masses[i]),
            int(areas[i]),
            boxes[i],
            boxes[i][0].start == 0
            or boxes[i][1].start == 0
            or boxes[i][0].stop == height
            or boxes[i][1].stop == width,
        )
        for i in range(count)
        if strong[i] > 0
    ]
    digit_like = [c for c in parts if not c.frame_like(ink.shape)]
    if digit_like:
        parts = digit_like
    if not parts:
        raise NoDigitFoundError("no digit found: the image holds no clear strokes")
    biggest = max(c.mass for c in parts)
    parts = [c for c in parts if c.mass >= 0.08 * biggest]
    top = min(c.box[0].start for c in parts)
    bottom = max(c.box[0].stop for c in parts)
    left = min(c.box[1].start for c in parts)
    right = max(c.box[1].stop for c in parts)
    if max(bottom - top, right - left) < max(3, 0.04 * max(height, width)):
        raise NoDigitFoundError("no digit found: only specks, nothing the size of a digit")
    window = labels[top:bottom, left:right]
    if count == 1:
        keep = window > 0
    else:
        kept = np.zeros(count + 1, dtype=bool)
        kept[[c.label for c in parts]] = True
        keep = kept[window]
    return np.where(keep, ink[top:bottom, left:right], 0.0).astype(np.float32)


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
