"""A corruption suite made from MNIST test, modelled on MNIST-C (Mu & Gilmer, 2019).

Clean test accuracy says little about digits that arrive noisy, blurred, tilted or scribbled
on. These are MNIST-C's 15 corruptions (google-research/mnist-c ``corruptions.py``), each at
the severity MNIST-C used, rewritten for a seeded :class:`numpy.random.Generator` with numpy,
scipy and scikit-image. Where MNIST-C's code did something its libraries no longer do, or
called ImageMagick, the behaviour is kept and the function says how.

Each entry of :data:`CORRUPTIONS` maps one 28x28 uint8 image (white ink on black) and a
generator to a 28x28 uint8 image; :func:`corrupt` applies one to a whole set, image ``i``
drawing from its own stream of ``seed``, so a subset's images are corrupted the same way
as in the full set. :func:`corruption_accuracy` scores a model on each corrupted set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch
from skimage import color, feature, transform, util
from skimage.filters import gaussian
from torch import nn

from digitcore.preprocess import normalize

IDENTITY = "identity"  # the clean set, by the name MNIST-C gives it
SIDE = 28
CENTRE = (SIDE - 1) / 2
LINE_REACH = 2.3  # rows off a drawn line at which its stroke fades to nothing
_COLUMNS, _ROWS = np.meshgrid(np.arange(SIDE, dtype=float), np.arange(SIDE, dtype=float))

Corruption = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _to_uint8(unit: np.ndarray) -> np.ndarray:
    """[0, 1] intensities -> uint8, rounded as MNIST-C rounded its float output."""
    return np.round(np.clip(unit, 0, 1) * 255).astype(np.uint8)


def _vertical_blur(unit: np.ndarray, sigma: float) -> np.ndarray:
    """MNIST-C's ``gaussian(x, sigma, multichannel=True)`` on a 2D image.

    The scikit-image of the time took the last axis for channels, so it blurred vertically only.
    """
    return gaussian(unit, sigma=(sigma, 0))


def _about_centre(linear: np.ndarray) -> transform.AffineTransform:
    """The affine map with 2x2 part ``linear`` that keeps the image centre in place."""
    matrix = np.eye(3)
    matrix[:2, :2] = linear
    matrix[:2, 2] = CENTRE - linear @ (CENTRE, CENTRE)
    return transform.AffineTransform(matrix=matrix)


def _warp(image: np.ndarray, inverse_map: transform.AffineTransform) -> np.ndarray:
    """MNIST-C's ``transform.warp``: output pixel p takes the input at ``inverse_map(p)``."""
    return _to_uint8(transform.warp(image / 255, inverse_map=inverse_map))


def _stroke(c0: float, r0: float, c1: float, r1: float) -> np.ndarray:
    """MNIST-C's ``line_from_points``: a line through (c0, r0) and (c1, r1), columns c0 to c1.

    Intensity is ``log(1 - d / 2.3) + 1`` at ``d`` rows off the line, clipped to [0, 1].
    """
    if c1 == c0:
        return np.zeros((SIDE, SIDE))
    line_rows = (r1 - r0) / (c1 - c0) * (_COLUMNS - c0) + r0
    distance = np.clip(np.abs(_ROWS - line_rows), 0, LINE_REACH - 1e-10)
    stroke = np.clip(np.log(1 - distance / LINE_REACH) + 1, 0, 1)
    stroke[:, : int(np.floor(c0))] = 0
    stroke[:, int(np.ceil(c1)) :] = 0
    return stroke


def _plasma_fractal(rng: np.random.Generator, wibble_decay: float, size: int = 256) -> np.ndarray:
    """MNIST-C's fog texture: a diamond-square heightmap, ``size`` a power of two, in [0, 1]."""
    heights = np.zeros((size, size))
    step, wibble = size, 100.0

    def wibbled_mean(total: np.ndarray) -> np.ndarray:
        return total / 4 + wibble * rng.uniform(-wibble, wibble, total.shape)

    while step >= 2:
        half = step // 2
        corners = heights[0:size:step, 0:size:step]
        square_sums = corners + np.roll(corners, -1, axis=0)
        square_sums += np.roll(square_sums, -1, axis=1)
        heights[half:size:step, half:size:step] = wibbled_mean(square_sums)
        centres = heights[half:size:step, half:size:step]
        row_sums = centres + np.roll(centres, 1, axis=0) + corners + np.roll(corners, -1, axis=1)
        heights[0:size:step, half:size:step] = wibbled_mean(row_sums)
        column_sums = centres + np.roll(centres, 1, axis=1) + corners + np.roll(corners, -1, axis=0)
        heights[half:size:step, 0:size:step] = wibbled_mean(column_sums)
        step = half
        wibble /= wibble_decay
    heights -= heights.min()
    return heights / heights.max()


def shot_noise(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Poisson noise at 3 photons for full white (severity 5)."""
    photons = 3
    return _to_uint8(rng.poisson(image / 255 * photons) / photons)


def impulse_noise(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Salt and pepper on 17% of the pixels (severity 4)."""
    return _to_uint8(util.random_noise(image / 255, mode="s&p", rng=rng, amount=0.17))


def glass_blur(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Blur, swap pixels with the one above, left or up-left at random, twice; blur (severity 1)."""
    sigma, max_delta, iterations = 0.7, 1, 2
    pixels = (_vertical_blur(image / 255, sigma) * 255).astype(np.uint8)
    positions = range(SIDE - max_delta, max_delta, -1)
    for _ in range(iterations):
        swaps = rng.random((SIDE, SIDE)) < 0.5
        deltas = rng.integers(-max_delta, max_delta, size=(SIDE, SIDE, 2))
        for row in positions:
            for column in positions:
                if swaps[row, column]:
                    d_column, d_row = deltas[row, column]
                    other = row + d_row, column + d_column
                    pixels[row, column], pixels[other] = pixels[other], pixels[row, column]
    return _to_uint8(_vertical_blur(pixels / 255, sigma))


def motion_blur(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """ImageMagick's motion blur (radius 10, sigma 3) at a random angle in [-45, 45] degrees.

    As ImageMagick's ``MotionBlurImage``: 21 one-sided Gaussian taps along the angle, each
    rounded to a whole pixel, with the image's edge pixels repeated beyond it (severity 1).
    """
    radius, sigma = 10, 3
    angle = np.deg2rad(rng.uniform(-45, 45))
    taps = np.arange(2 * radius + 1)
    weights = np.exp(-(taps**2) / (2 * sigma**2))
    weights /= weights.sum()
    column_offsets = np.ceil(taps * np.cos(angle) - 0.5).astype(int)
    row_offsets = np.ceil(taps * np.sin(angle) - 0.5).astype(int)
    padded = np.pad(image / 255, taps[-1], mode="edge")
    blurred = np.zeros((SIDE, SIDE))
    for weight, d_row, d_column in zip(weights, row_offsets, column_offsets, strict=True):
        top, left = taps[-1] + d_row, taps[-1] + d_column
        blurred += weight * padded[top : top + SIDE, left : left + SIDE]
    return _to_uint8(blurred)


def shear(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shear by 0.4 rad either way, about the centre (severity 2).

    MNIST-C's scikit-image built a shear as ``[[1, -sin s], [0, cos s]]``; newer releases use
    ``tan s``, so the matrix is written out.
    """
    angle = 0.4 * rng.choice([-1, 1])
    return _warp(image, _about_centre(np.array([[1, -np.sin(angle)], [0, np.cos(angle)]])))


def scale(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shrink to 70% about the centre (severity 3)."""
    return _warp(image, _about_centre(np.eye(2) / 0.7))


def rotate(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rotate by 0.4 rad (23 degrees) either way about the centre (severity 2)."""
    angle = 0.4 * rng.choice([-1, 1])
    cos, sin = np.cos(angle), np.sin(angle)
    return _warp(image, _about_centre(np.array([[cos, -sin], [sin, cos]])))


def brightness(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Add 0.5 to the HSV value channel (severity 5)."""
    hsv = color.rgb2hsv(color.gray2rgb(image / 255))
    hsv[..., 2] = np.clip(hsv[..., 2] + 0.5, 0, 1)
    return _to_uint8(color.rgb2gray(color.hsv2rgb(hsv)))


def translate(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shift 3 pixels diagonally, in a random one of the four directions (severity 3)."""
    shift = 3 * rng.choice([-1, 1], size=2)
    return _warp(image, transform.AffineTransform(translation=shift))


def stripe(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Invert the 7 columns at each side."""
    striped = image.copy()
    striped[:, :7] = 255 - image[:, :7]
    striped[:, 21:] = 255 - image[:, 21:]
    return striped


def fog(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Add 3 x a plasma fractal (decay 1.4), then scale back to the ink's range (severity 5)."""
    strength, wibble_decay = 3.0, 1.4
    unit = image / 255
    ink = unit.max()
    fogged = unit + strength * _plasma_fractal(rng, wibble_decay)[:SIDE, :SIDE]
    return _to_uint8(fogged * ink / (ink + strength))


def spatter(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Blobs of grey (63) mud where a blurred noise layer is high (severity 4)."""
    mean, spread, sigma, threshold, mask_sigma = 0.65, 0.3, 1, 0.65, 1.5
    liquid = gaussian(rng.normal(mean, spread, image.shape), sigma=sigma)
    liquid[liquid < threshold] = 0
    mud = gaussian((liquid > threshold).astype(np.float32), sigma=mask_sigma)
    mud[mud < 0.8] = 0
    return _to_uint8(image / 255 * (1 - mud) + 63 / 255 * mud)


def dotted_line(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A dashed line (2 px on, 2 off) across the whole width, between random rows."""
    start_row, end_row = rng.integers(0, SIDE - 1, size=2)
    line = _stroke(0, start_row, SIDE - 1, end_row)
    for gap in range(0, SIDE, 4):
        line[:, gap : gap + 2] = 0
    return _to_uint8(image / 255 + line)


def zigzag(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A zigzag (teeth 2 px long and high) from column 2 to 25, at a random row and tilt."""
    tooth_length, tooth_height = 2.0, 2.0
    start_column, end_column = 2, 25
    start_row = rng.integers(0, SIDE - 1)
    end_row = start_row + rng.integers(-5, 5)
    theta = np.arctan((end_row - start_row) / (end_column - start_column))
    length = (end_column - start_column) / np.cos(theta)
    teeth = int((length - tooth_length) // (2 * tooth_length)) + 1
    corners = [(0.0, 0.0)]
    corners += [((2 * i + 1) * tooth_length, (-1) ** i * tooth_height) for i in range(teeth)]
    whole_teeth_end = 2 * tooth_length * (length // (2 * tooth_length))
    if length != whole_teeth_end:
        corners.append((length, corners[-1][1] / (2 * (length - whole_teeth_end))))
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    columns, rows = rotation @ np.array(corners).T + [[start_column], [start_row]]
    drawn = image / 255
    for i in range(1, len(corners)):
        drawn = np.clip(drawn + _stroke(columns[i - 1], rows[i - 1], columns[i], rows[i]), 0, 1)
    return _to_uint8(drawn)


def canny_edges(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The digit's Canny edges (scikit-image defaults), white on black."""
    return _to_uint8(feature.canny(image / 255).astype(float))


CORRUPTIONS: dict[str, Corruption] = {
    corruption.__name__: corruption
    for corruption in (
        shot_noise,
        impulse_noise,
        glass_blur,
        motion_blur,
        shear,
        scale,
        rotate,
        brightness,
        translate,
        stripe,
        fog,
        spatter,
        dotted_line,
        zigzag,
        canny_edges,
    )
}


def corrupt(images: np.ndarray | torch.Tensor, name: str, seed: int = 0) -> np.ndarray:
    """The N x 28 x 28 uint8 ``images`` with corruption ``name`` (or ``"identity"``) applied.

    Image ``i`` draws from the ``i``-th stream spawned from ``seed``: the same seed gives the
    same images, and ``corrupt(images[:k])`` equals ``corrupt(images)[:k]``.
    """
    pixels = images.cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[1:] != (SIDE, SIDE):
        raise ValueError(f"expected N x 28 x 28 uint8 images, got {pixels.dtype} {pixels.shape}")
    if name == IDENTITY:
        return pixels.copy()
    if name not in CORRUPTIONS:
        known = ", ".join([IDENTITY, *CORRUPTIONS])
        raise ValueError(f"unknown corruption {name!r} (known: {known})")
    corruption = CORRUPTIONS[name]
    streams = np.random.SeedSequence(seed).spawn(len(pixels))
    corrupted = np.empty_like(pixels)
    for index, (image, stream) in enumerate(zip(pixels, streams, strict=True)):
        corrupted[index] = corruption(image, np.random.default_rng(stream))
    return corrupted


@torch.inference_mode()
def model_probabilities(
    model: nn.Module, images: np.ndarray, device: torch.device, batch_size: int = 1000
) -> torch.Tensor:
    """Softmax probabilities (N x 10, on CPU) of ``model`` for N x 28 x 28 uint8 ``images``."""
    model.eval()
    pixels = torch.from_numpy(np.ascontiguousarray(images))
    chunks = [torch.empty(0, 10)]  # so that an empty set gives 0 x 10
    for batch in pixels.split(batch_size):
        inputs = batch.to(device, non_blocking=True).unsqueeze(1).float().div_(255)
        chunks.append(model(normalize(inputs)).exp().float().cpu())
    return torch.cat(chunks)


def corruption_probabilities(
    model: nn.Module,
    images: np.ndarray | torch.Tensor,
    device: torch.device,
    name: str,
    seed: int = 0,
) -> torch.Tensor:
    """``model``'s probabilities (N x 10, on CPU) on ``images`` with corruption ``name``."""
    return model_probabilities(model, corrupt(images, name, seed), device)


def corruption_accuracy(
    model: nn.Module,
    images: np.ndarray | torch.Tensor,
    labels: np.ndarray | torch.Tensor,
    device: torch.device,
    names: Iterable[str] | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Accuracy of ``model`` on each corrupted set, by name (default: all of CORRUPTIONS)."""
    truth = torch.as_tensor(labels).cpu()
    accuracy = {}
    for name in CORRUPTIONS if names is None else names:
        predicted = corruption_probabilities(model, images, device, name, seed).argmax(1)
        accuracy[name] = (predicted == truth).float().mean().item()
    return accuracy
