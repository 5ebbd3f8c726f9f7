"""Batched photometric corruptions for training: what pictures of digits suffer.

Each chosen image gets one of: Gaussian, shot or impulse noise, an isotropic or motion blur,
frosted glass (pixels swapped with their neighbours, then blurred), low contrast on a lifted
background, fog, lines drawn through it (solid, dotted or zigzag), inverted bands, or only
the outline of its strokes. All of it runs on N x 1 x H x W tensors
of [0, 1] images with per-image random strengths from one generator.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F

Generator = torch.Generator | None
KERNEL = 7  # blur kernels are this wide


def _rand(n: int, low: float, high: float, generator: Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, 1, 1, 1, generator=generator)


def gaussian_kernel(sigma: float) -> torch.Tensor:
    radius = max(1, round(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    return kernel / kernel.sum()


def smooth(planes: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of every plane of an N x C x H x W tensor (reflected edges)."""
    kernel = gaussian_kernel(sigma).to(planes)
    channels, radius = planes.shape[1], len(kernel) // 2
    across = kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1)
    down = kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
    planes = F.conv2d(
        F.pad(planes, (radius, radius, 0, 0), mode="reflect"), across, groups=channels
    )
    return F.conv2d(F.pad(planes, (0, 0, radius, radius), mode="reflect"), down, groups=channels)


def noise(x: torch.Tensor, g: Generator) -> torch.Tensor:
    kind = torch.rand(1, generator=g).item()
    n = x.shape[0]
    if kind < 1 / 3:  # Gaussian
        return x + torch.randn(x.shape, generator=g) * _rand(n, 0.05, 0.35, g)
    if kind < 2 / 3:  # shot (Poisson)
        rate = _rand(n, 2.0, 60.0, g)
        return torch.poisson(x * rate, generator=g) / rate
    amount = _rand(n, 0.01, 0.25, g)  # impulse: salt and pepper
    hits = torch.rand(x.shape, generator=g)
    salt = torch.rand(x.shape, generator=g) < 0.5
    return torch.where(hits < amount, salt.float(), x)


def blur(x: torch.Tensor, g: Generator) -> torch.Tensor:
    """Per-image kernels: isotropic Gaussian or a motion streak at a random angle."""
    n, _, height, width = x.shape
    r = torch.arange(KERNEL, dtype=torch.float32) - KERNEL // 2
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    sigma = _rand(n, 0.5, 1.3, g).view(n, 1, 1)
    round_kernel = torch.exp(-(xx**2 + yy**2) / (2 * sigma**2))
    angle = (torch.rand(n, generator=g) * math.pi).view(n, 1, 1)
    length = _rand(n, 1.5, 3.5, g).view(n, 1, 1)
    along = xx * torch.cos(angle) + yy * torch.sin(angle)
    across = -xx * torch.sin(angle) + yy * torch.cos(angle)
    streak = torch.exp(-(across**2) / 0.5) * (along.abs() <= length)
    motion = (torch.rand(n, generator=g) < 0.5).view(n, 1, 1)
    kernels = torch.where(motion, streak, round_kernel)
    kernels = (kernels / kernels.sum(dim=(1, 2), keepdim=True)).unsqueeze(1)
    padded = F.pad(x.view(1, n, height, width), (KERNEL // 2,) * 4, mode="reflect")
    return F.conv2d(padded, kernels, groups=n).view(n, 1, height, width)


def contrast(x: torch.Tensor, g: Generator) -> torch.Tensor:
    """Weaker ink on a lifted background (low contrast, brightness)."""
    n = x.shape[0]
    gain, lift = _rand(n, 0.3, 1.0, g), _rand(n, 0.0, 0.6, g)
    return lift + x * gain


def glass(x: torch.Tensor, g: Generator) -> torch.Tensor:
    """Frosted glass: each pixel takes a neighbour's value (up to one pixel away), then a
    light blur."""
    n, _, height, width = x.shape
    rows = torch.arange(height).view(1, height, 1).expand(n, height, width)
    cols = torch.arange(width).view(1, 1, width).expand(n, height, width)
    d_row = torch.randint(-1, 2, (n, height, width), generator=g)
    d_col = torch.randint(-1, 2, (n, height, width), generator=g)
    source = (rows + d_row).clamp(0, height - 1) * width + (cols + d_col).clamp(0, width - 1)
    swapped = x.view(n, height * width).gather(1, source.view(n, -1))
    return blur(swapped.view(n, 1, height, width), g)


def fog(x: torch.Tensor, g: Generator) -> torch.Tensor:
    """Haze of several octaves (coarse to fine) added, then the whole rescaled so the ink
    keeps its range: strong fog leaves faint ink in cloudy grey."""
    n, _, height, width = x.shape
    haze = torch.zeros(n, 1, height, width)
    for cells, weight in ((3, 1.0), (6, 0.6), (12, 0.35), (24, 0.2)):
        grid = torch.rand(n, 1, cells, cells, generator=g)
        haze += weight * F.interpolate(grid, size=(height, width), mode="bilinear")
    haze = haze / 2.15
    strength = _rand(n, 0.3, 3.5, g)
    peak = x.amax(dim=(2, 3), keepdim=True).clamp(min=1e-3)
    return (x + strength * haze) * peak / (peak + strength)


def _segment_distance(xx, yy, start, end) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image: each pixel's distance to the segment start-end, and its position along it."""
    n = start.shape[0]
    delta = end - start
    length2 = (delta**2).sum(dim=1).clamp(min=1e-3).view(n, 1, 1)
    ax, ay = start[:, 0].view(n, 1, 1), start[:, 1].view(n, 1, 1)
    dx, dy = delta[:, 0].view(n, 1, 1), delta[:, 1].view(n, 1, 1)
    t = (((xx - ax) * dx + (yy - ay) * dy) / length2).clamp(0, 1)
    distance = ((xx - ax - t * dx) ** 2 + (yy - ay - t * dy) ** 2).sqrt()
    return distance, t * length2.sqrt()


def lines(x: torch.Tensor, g: Generator) -> torch.Tensor:
    """A line across the digit: straight or bent (1 to 3 segments), or a zigzag of small
    teeth; solid or dotted."""
    n, _, height, width = x.shape
    yy, xx = torch.meshgrid(
        torch.arange(height, dtype=torch.float32),
        torch.arange(width, dtype=torch.float32),
        indexing="ij",
    )
    size = torch.tensor([width, height], dtype=torch.float32)
    start, end = torch.rand(n, 2, generator=g) * size, torch.rand(n, 2, generator=g) * size
    if torch.rand(1, generator=g).item() < 0.35:  # zigzag: teeth 2-3 px long and high
        teeth = 10
        along = (end - start) / teeth
        normal = torch.stack([-along[:, 1], along[:, 0]], dim=1)
        normal = (
            normal
            / normal.norm(dim=1, keepdim=True).clamp(min=1e-3)
            * _rand(n, 1.5, 3.0, g).view(n, 1)
        )
        corners = [start + along * i + normal * (i % 2 * 2 - 1) for i in range(teeth + 1)]
    else:
        segments = int(torch.randint(1, 4, (1,), generator=g))
        corners = [start] + [torch.rand(n, 2, generator=g) * size for _ in range(segments)]
    dotted = (torch.rand(n, generator=g) < 0.4).view(n, 1, 1)
    drawn = torch.zeros(n, height, width)
    for begin, finish in itertools.pairwise(corners):
        distance, position = _segment_distance(xx, yy, begin, finish)
        stroke = (1 - distance).clamp(0, 1)
        dots = (position % 4 < 2).float()
        drawn = torch.maximum(drawn, torch.where(dotted, stroke * dots, stroke))
    return torch.maximum(x, drawn.unsqueeze(1) * _rand(n, 0.6, 1.0, g))


def bands(x: torch.Tensor, g: Generator) -> torch.Tensor:
    """Bands of the image inverted: periodic ones, or one at each side, across or down."""
    n, _, height, width = x.shape
    position = torch.arange(width, dtype=torch.float32).view(1, 1, 1, width)
    period = torch.randint(4, 15, (n, 1, 1, 1), generator=g).float()
    offset = torch.rand(n, 1, 1, 1, generator=g) * period
    periodic = ((position + offset) % period) < period / 2
    side = torch.randint(3, 10, (n, 1, 1, 1), generator=g)
    sides = (position < side) | (position >= width - side)
    at_sides = (torch.rand(n, generator=g) < 0.5).view(n, 1, 1, 1)
    inside = torch.where(at_sides, sides, periodic).expand(n, 1, height, width)
    transpose = (torch.rand(n, generator=g) < 0.3).view(n, 1, 1, 1)
    inside = torch.where(transpose, inside.transpose(2, 3), inside)
    return torch.where(inside, 1 - x, x)


def outline(x: torch.Tensor, g: Generator) -> torch.Tensor:
    """Only the edges of the strokes, one pixel wide, inside or outside them, as an edge
    detector draws them."""
    padded = F.pad(x, (1, 1, 1, 1))
    ink = x > 0.5
    if torch.rand(1, generator=g).item() < 0.5:
        return (ink & (-F.max_pool2d(-padded, 3, stride=1) < 0.5)).float()
    return (~ink & (F.max_pool2d(padded, 3, stride=1) > 0.5)).float()


CORRUPTIONS = (noise, blur, glass, contrast, fog, lines, bands, outline)


def random_photometric(
    images: torch.Tensor, probability: float, generator: Generator = None
) -> torch.Tensor:
    """Give a random ``probability`` share of the batch one corruption each (chosen evenly)."""
    n, device = images.shape[0], images.device
    choice = torch.randint(len(CORRUPTIONS), (n,), generator=generator)
    chosen = torch.rand(n, generator=generator) < probability
    images = images.cpu()  # the generator is a CPU one; the corruptions are cheap
    out = images.clone()
    for index, corruption in enumerate(CORRUPTIONS):
        members = torch.nonzero(chosen & (choice == index)).flatten()
        if len(members):
            out[members] = corruption(images[members], generator).clamp(0, 1)
    return out.to(device)
