"""Batched augmentation on tensors: geometry (affine and elastic), stroke width, photometry.

Everything runs on whole N x 1 x 28 x 28 batches of [0, 1] images with ``grid_sample`` and
convolutions, so training is never held back by per-sample PIL transforms. Geometry covers
what serving-time preprocessing cannot fully remove from real uploads (residual shift, tilt,
the wobble of a hand: Simard et al. 2003's elastic distortions); the photometric part covers
what pictures suffer (noise, blur, low contrast, fog, lines through the digit, inverted
bands, outlines only), so the model stays right, and honestly unsure, when they happen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from trainer.photometric import gaussian_kernel, random_photometric

Generator = torch.Generator | None


@dataclass(frozen=True)
class AugmentConfig:
    max_rotation_deg: float = 12.0
    max_scale: float = 0.12  # up to this much larger; smaller down to scale_floor
    scale_floor: float = 0.8
    max_shear: float = 0.2  # radians, along the rows
    max_shift_px: float = 2.0
    stroke_change_prob: float = 0.2
    stroke_fill_prob: float = 0.1  # felt marker: loops and narrow gaps filled (3x3 closing)
    elastic_alpha: float = 34.0  # Simard et al.: displacement scale in pixels ...
    elastic_sigma: float = 4.0  # ... of a uniform field smoothed by a Gaussian this wide
    elastic_prob: float = 0.5
    photometric_prob: float = 0.25  # share of images given one photometric corruption

    @classmethod
    def off(cls) -> AugmentConfig:
        return cls(
            max_rotation_deg=0.0,
            max_scale=0.0,
            scale_floor=1.0,
            max_shear=0.0,
            max_shift_px=0.0,
            stroke_change_prob=0.0,
            stroke_fill_prob=0.0,
            elastic_prob=0.0,
            photometric_prob=0.0,
        )


def _uniform(n: int, bound: float, generator: Generator) -> torch.Tensor:
    return (torch.rand(n, generator=generator) * 2 - 1) * bound


def _smoothing_matrix(size: int, sigma: float) -> torch.Tensor:
    """The size x size matrix of a 1-D Gaussian blur with reflected edges: ``M @ v`` blurs v."""
    kernel = gaussian_kernel(sigma)
    radius = len(kernel) // 2
    impulses = F.pad(torch.eye(size).unsqueeze(1), (radius, radius), mode="reflect")
    return F.conv1d(impulses, kernel.view(1, 1, -1)).view(size, size).T


def elastic_field(
    n: int, size: int, config: AugmentConfig, generator: Generator = None
) -> torch.Tensor:
    """Per-image smooth random displacements (N x H x W x 2, in ``grid_sample`` units).

    A uniform field in [-1, 1] smoothed by a Gaussian of ``elastic_sigma`` pixels and scaled by
    ``elastic_alpha`` pixels (Simard et al. 2003), on a random ``elastic_prob`` share of images.
    The blur is two matrix products (rows, then columns), far cheaper than a wide convolution.
    """
    noise = torch.rand(n, 2, size, size, generator=generator) * 2 - 1
    blur = _smoothing_matrix(size, config.elastic_sigma)
    field = blur @ noise @ blur.T * (config.elastic_alpha * 2.0 / size)
    chosen = (torch.rand(n, generator=generator) < config.elastic_prob).float()
    return (field * chosen.view(n, 1, 1, 1)).permute(0, 2, 3, 1)


def random_geometry(
    images: torch.Tensor, config: AugmentConfig, generator: Generator = None
) -> torch.Tensor:
    """Rotate, scale, shear, shift and elastically distort each image by its own random
    amount, in one resampling."""
    n, _, height, width = images.shape
    angle = _uniform(n, math.radians(config.max_rotation_deg), generator)
    low, high = math.log(config.scale_floor), math.log(1.0 + config.max_scale)
    inv_scale = torch.exp(-(low + (high - low) * torch.rand(n, generator=generator)))
    shear = torch.tan(_uniform(n, config.max_shear, generator))
    shift = torch.stack(
        [
            _uniform(n, 2 * config.max_shift_px / width, generator),
            _uniform(n, 2 * config.max_shift_px / height, generator),
        ],
        dim=1,
    )
    cos, sin = torch.cos(angle) * inv_scale, torch.sin(angle) * inv_scale
    theta = torch.stack(
        [
            torch.stack([cos, shear * cos - sin, shift[:, 0]], dim=1),
            torch.stack([sin, shear * sin + cos, shift[:, 1]], dim=1),
        ],
        dim=1,
    )
    grid = F.affine_grid(theta, [n, 1, height, width], align_corners=False)
    if config.elastic_prob > 0 and config.elastic_alpha > 0:
        grid = grid + elastic_field(n, height, config, generator)
    return F.grid_sample(
        images, grid.to(images), mode="bilinear", padding_mode="zeros", align_corners=False
    )


def random_stroke_width(
    images: torch.Tensor, probability: float, generator: Generator = None, fill: float = 0.0
) -> torch.Tensor:
    """Thicken (2x2 grey dilation) or thin (2x2 grey erosion) a random share of the batch, and
    fill (3x3 grey closing) another ``fill`` share: what a felt marker does to a digit once
    serving has brought its strokes back to MNIST's width (small loops and gaps closed)."""
    if probability <= 0 and fill <= 0:
        return images
    n = images.shape[0]
    choice = torch.rand(n, generator=generator).view(n, 1, 1, 1).to(images.device)
    padded = F.pad(images, (0, 1, 0, 1))
    thick = F.max_pool2d(padded, kernel_size=2, stride=1)
    thin = -F.max_pool2d(-padded, kernel_size=2, stride=1)
    out = torch.where(choice < probability / 2, thick, images)
    out = torch.where((choice >= probability / 2) & (choice < probability), thin, out)
    if fill > 0:
        dilated = F.max_pool2d(images, kernel_size=3, stride=1, padding=1)
        filled = -F.max_pool2d(-dilated, kernel_size=3, stride=1, padding=1)
        out = torch.where((choice >= probability) & (choice < probability + fill), filled, out)
    return out


def augment(
    images: torch.Tensor, config: AugmentConfig, generator: Generator = None
) -> torch.Tensor:
    """Stroke width, geometry, then photometry, on a batch of [0, 1] images (before
    normalization)."""
    images = random_stroke_width(
        images, config.stroke_change_prob, generator, config.stroke_fill_prob
    )
    if any(
        (
            config.max_rotation_deg,
            config.max_scale,
            config.scale_floor != 1.0,
            config.max_shear,
            config.max_shift_px,
            config.elastic_prob,
        )
    ):
        images = random_geometry(images, config, generator)
    if config.photometric_prob > 0:
        images = random_photometric(images, config.photometric_prob, generator)
    return images
