"""Uploaded bytes -> the model's input tensor, with client-facing errors.

Decoding and preprocessing are CPU work (Pillow, numpy), so uploads run in worker threads
behind a capacity limiter: the event loop stays free for other requests and for ``/healthz``.
A tiny PNG (at most ``inline_pixels``, read from its header, such as a 28x28 digit) is the
exception: its whole pipeline costs less than handing it to a thread and back (about 0.2 ms
against a thread hop, two wake-ups and the GIL passed around), so it runs on the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import io
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import anyio
import numpy as np
import torch
from PIL import Image

from digitcore.preprocess import preprocess, preview_png
from service.errors import InputRejected, rejection

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Prepared:
    tensor: torch.Tensor  # normalized 1 x 28 x 28
    preview: str | None  # base64 PNG of the 28x28 the model sees, when asked for


def prepare(data: bytes, max_pixels: int, include_image: bool) -> Prepared:
    """Decode and preprocess one upload; every failure becomes an :class:`InputRejected`."""
    (outcome,) = prepare_many([data], max_pixels, [include_image])
    if isinstance(outcome, InputRejected):
        raise outcome
    return outcome


def prepare_many(
    uploads: Sequence[bytes], max_pixels: int, include_images: Sequence[bool]
) -> list[Prepared | InputRejected]:
    """:func:`prepare` for each upload, previews where asked, each rejection in its place.

    Preprocessed together (:func:`~digitcore.preprocess.preprocess`): MNIST-like uploads
    share their numpy work.
    """
    outcomes: list[Prepared | InputRejected] = []
    results = preprocess(uploads, max_pixels)
    for result, include_image in zip(results, include_images, strict=True):
        if isinstance(result, Exception):
            outcomes.append(rejection(result))
            continue
        tensor, mnist = result
        preview = base64.b64encode(preview_png(mnist)).decode("ascii") if include_image else None
        outcomes.append(Prepared(tensor, preview))
    return outcomes


def png_pixels(data: bytes) -> int | None:
    """Width x height declared by a PNG's header, without decoding; ``None`` if not a PNG."""
    if len(data) < 24 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width * height


def _sample_png() -> bytes:
    """A small white-on-black stroke, enough to run every step of the pipeline once."""
    pixels = np.zeros((28, 28), dtype=np.uint8)
    pixels[5:23, 12:16] = 255
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


class ImageWorkers:
    """Runs :func:`prepare` in threads, at most ``threads`` at once; tiny PNGs inline."""

    def __init__(self, threads: int, max_pixels: int, inline_pixels: int = 0) -> None:
        self.limiter = anyio.CapacityLimiter(threads)
        self.max_pixels = max_pixels
        self.inline_pixels = inline_pixels
        self._tiny: list[tuple[bytes, bool, asyncio.Future]] = []

    def is_tiny(self, data: bytes) -> bool:
        """Whether ``data`` is a PNG small enough to prepare on the event loop."""
        pixels = png_pixels(data)
        return pixels is not None and pixels <= self.inline_pixels

    async def prepare_tiny(self, data: bytes, include_image: bool) -> Prepared:
        """:func:`prepare` on the event loop, together with the other tiny uploads of this turn.

        The tiny uploads that arrive in one turn of the loop are prepared together in the next
        (:func:`prepare_many`): they share the pipeline's numpy calls, and its code and data
        stay in the CPU's caches instead of alternating with other requests' HTTP handling.
        """
        future = asyncio.get_running_loop().create_future()
        self._tiny.append((data, include_image, future))
        if len(self._tiny) == 1:
            asyncio.get_running_loop().call_soon(self._prepare_tiny_queue)
        return await future

    def _prepare_tiny_queue(self) -> None:
        queued, self._tiny = self._tiny, []
        waiting = [(data, include, future) for data, include, future in queued if not future.done()]
        try:
            outcomes = prepare_many(
                [data for data, _, _ in waiting],
                self.max_pixels,
                [include for _, include, _ in waiting],
            )
        except Exception as exc:
            for _, _, future in waiting:
                future.set_exception(exc)
            return
        for (_, _, future), outcome in zip(waiting, outcomes, strict=True):
            if isinstance(outcome, InputRejected):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

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
            prepare_many,
            uploads,
            self.max_pixels,
            [include_image] * len(uploads),
            limiter=self.limiter,
        )
