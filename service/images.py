"""Uploaded bytes -> the model's input tensor, off the event loop, with client-facing errors.

Decoding and preprocessing are CPU work (Pillow, numpy), so they run in worker threads behind
a capacity limiter: the event loop stays free for other requests and for ``/healthz``.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import anyio
import numpy as np
import torch
from PIL import Image

from digitcore.preprocess import preprocess, preview_png
from service.errors import InputRejected, rejection


@dataclass(frozen=True)
class Prepared:
    tensor: torch.Tensor  # normalized 1 x 28 x 28
    preview: str | None  # base64 PNG of the 28x28 the model sees, when asked for


def prepare(data: bytes, max_pixels: int, include_image: bool) -> Prepared:
    """Decode and preprocess one upload; every failure becomes an :class:`InputRejected`."""
    try:
        tensor, mnist = preprocess(data, max_pixels)
    except Exception as exc:
        raise rejection(exc) from None
    preview = base64.b64encode(preview_png(mnist)).decode("ascii") if include_image else None
    return Prepared(tensor, preview)


def prepare_many(
    uploads: list[bytes], max_pixels: int, include_image: bool
) -> list[Prepared | InputRejected]:
    """:func:`prepare` for each upload, keeping each rejection in place of its result."""
    outcomes: list[Prepared | InputRejected] = []
    for data in uploads:
        try:
            outcomes.append(prepare(data, max_pixels, include_image))
        except InputRejected as exc:
            outcomes.append(exc)
    return outcomes


def _sample_png() -> bytes:
    """A small white-on-black stroke, enough to run every step of the pipeline once."""
    pixels = np.zeros((28, 28), dtype=np.uint8)
    pixels[5:23, 12:16] = 255
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


class ImageWorkers:
    """Runs :func:`prepare` in threads, at most ``threads`` at once."""

    def __init__(self, threads: int, max_pixels: int) -> None:
        self.limiter = anyio.CapacityLimiter(threads)
        self.max_pixels = max_pixels

    async def warm_up(self) -> None:
        """Decode once at startup, so the first request does not pay for lazy imports."""
        await self.prepare_many([_sample_png()], include_image=True)

    async def prepare(self, data: bytes, include_image: bool) -> Prepared:
        return await anyio.to_thread.run_sync(
            prepare, data, self.max_pixels, include_image, limiter=self.limiter
        )

    async def prepare_many(
        self, uploads: list[bytes], include_image: bool
    ) -> list[Prepared | InputRejected]:
        return await anyio.to_thread.run_sync(
            prepare_many, uploads, self.max_pixels, include_image, limiter=self.limiter
        )
