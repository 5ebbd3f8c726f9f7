"""Batched augmentation on tensors: random affine (rotation, scale, shift) and stroke width.

It runs on whole batches with ``affine_grid``/``grid_sample``, so training is never held
back by per-sample PIL transforms. It covers what serving-time preprocessing cannot fully
remove from real uploads: residual shift, a slight tilt, thicker or thinner strokes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    max_rotation_deg: float = 12.0
    max_scale: float = 0.12
    max_shift_px: float = 2.0
    stroke_change_prob: float = 0.2

    @classmethod
    def off(cls) -> AugmentConfig:
        return cls(0.0, 0.0, 0.0, 0.0)


def _uniform(n: int, bound: float, generator: torch.Generator | None) -> torch.Tensor:
    return (torch.rand(n, generator=generator) * 2 - 1) * bound


def random_affine(
    images: torch.Tensor, config: AugmentConfig, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Rotate, scale and shift each image of an N x 1 x H x W batch by its own random amount."""
    n, _, height, width = images.shape
    angle = _uniform(n, math.radians(config.max_rotation_deg), generator)
    inv_scale = 1.0 / (1.0 + _uniform(n, config.max_scale, generator))
    shift = torch.stack(
        [
            _uniform(n, 2 * config.max_shift_px / width, generator),
            _uniform(n, 2 * config.max_shift_px / height, generator),
        ],
        dim=1,
    )
    cos, sin = torch.cos(angle) * inv_scale, torch.sin(angle) * inv_scale
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], dim=1), torch.stack([sin, cos, shift[:, 1]], dim=1)],
        dim=1,
    ).to(images)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def random_stroke_width(
    images: torch.Tensor, probability: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Thicken (2x2 grey dilation) or thin (2x2 grey erosion) a random share of the batch."""
    if probability <= 0:
        return images
    n = images.shape[0]
    choice = torch.rand(n, generator=generator)
    padded = F.pad(images, (0, 1, 0, 1))
    thick = F.max_pool2d(padded, kernel_size=2, stride=1)
    thin = -F.max_pool2d(-padded, kernel_size=2, stride=1)
    thicken = (choice < probability / 2).view(n, 1, 1, 1).to(images.device)
    thinning = ((choice >= probability / 2) & (choice < probability)).view(n, 1, 1, 1)
    out = torch.where(thicken, thick, images)
    return torch.where(thinning.to(images.device), thin, out)


def augment(
    images: torch.Tensor, config: AugmentConfig, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Both augmentations on a batch of [0, 1] images (before normalization)."""
    images = random_stroke_width(images, config.stroke_change_prob, generator)
    if config.max_rotation_deg or config.max_scale or config.max_shift_px:
        images = random_affine(images, config, generator)
    return images
