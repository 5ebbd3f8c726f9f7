"""The model behind one small async interface, with micro-batching.

``await predictor.predict(images)`` returns softmax probabilities. Requests that arrive
together share one forward pass: a single collector task takes what is queued (waiting at most
``max_wait_ms`` for more, up to ``max_batch`` images), runs the forward pass on a dedicated
worker thread (never on the event loop) and hands each caller its rows. While a pass runs,
new requests queue up and form the next batch, so batches grow with load by themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import torch
from torch import nn

from digitcore import IMAGE_SIZE
from digitcore.model import predict_probabilities

_Item = tuple[torch.Tensor, asyncio.Future]


class Predictor:
    def __init__(
        self, model: nn.Module, *, max_batch: int = 64, max_wait_ms: float = 1.0, threads: int = 1
    ) -> None:
        self.model = model
        self.device = next(model.parameters()).device
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self.threads = threads
        self.forward_passes = 0
        self.images_predicted = 0
        self._pending: deque[_Item] = deque()
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """One synchronous forward pass: N x 1 x 28 x 28 normalized -> N x 10 probabilities."""
        return predict_probabilities(self.model, images)

    def warm_up(self) -> None:
        """Run the batch sizes serving will use once, so the first request pays no setup."""
        for size in sorted({1, self.max_batch}):
            self.forward(torch.zeros(size, 1, IMAGE_SIZE, IMAGE_SIZE))

    async def start(self) -> None:
        torch.set_num_threads(self.threads)
        self._executor = ThreadPoolExecutor(
            max_workers=1,
            thread_name_prefix="forward",
            initializer=torch.set_num_threads,
            initargs=(self.threads,),
        )
        await asyncio.get_running_loop().run_in_executor(self._executor, self.warm_up)
        self._wakeup = asyncio.Event()
        self._task = asyncio.create_task(self._collect(), name="predictor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        while self._pending:
            _, future = self._pending.popleft()
            if not future.done():
                future.set_exception(RuntimeError("the server is shutting down"))
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Probabilities (N x 10, CPU) for ``images`` (N x 1 x 28 x 28, normalized)."""
        if not self.running or self._wakeup is None:
            raise RuntimeError("the predictor is not running")
        future = asyncio.get_running_loop().create_future()
        self._pending.append((images, future))
        self._wakeup.set()
        return await future

    def _take(self, batch: list[_Item], size: int) -> int:
        """Move queued items into ``batch`` while they fit in ``max_batch``; return the size."""
        while self._pending:
            count = len(self._pending[0][0])
            if batch and size + count > self.max_batch:
                break
            batch.append(self._pending.popleft())
            size += count
        return size

    async def _collect(self) -> None:
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        while True:
            while not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
            batch: list[_Item] = []
            size = self._take(batch, 0)
            if size < self.max_batch and self.max_wait > 0:
                await asyncio.sleep(self.max_wait)
                size = self._take(batch, size)
            batch = [(images, future) for images, future in batch if not future.done()]
            if not batch:
                continue
            images = batch[0][0] if len(batch) == 1 else torch.cat([x for x, _ in batch])
            try:
                probabilities = await loop.run_in_executor(self._executor, self.forward, images)
            except BaseException as exc:
                stopping = RuntimeError("the server is stopping")
                failure = exc if isinstance(exc, Exception) else stopping
                for _, future in batch:
                    if not future.done():
                        future.set_exception(failure)
                if isinstance(exc, Exception):
                    continue
                raise
            self.forward_passes += 1
            self.images_predicted += len(images)
            start = 0
            for rows, future in batch:
                if not future.done():
                    future.set_result(probabilities[start : start + len(rows)])
                start += len(rows)
