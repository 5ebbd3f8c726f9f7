"""The model behind one small async interface, with micro-batching.

``await predictor.predict(images)`` returns softmax probabilities. Requests that arrive
together share one forward pass: a single collector task takes what is queued, runs the forward
pass and hands each caller its rows. The pass runs on a dedicated thread (``forward_thread``:
what a GPU wants, its pass being mostly waiting) or, on CPU where a pass is a few milliseconds
of pure computation, right in the collector: no thread hop, no GIL passed back and forth.
While a pass runs, new requests queue up and form the next batch, so batches grow with load.

Routes wrap their decoding in :meth:`Predictor.expecting`; the collector waits (at most
``max_wait_ms``, up to ``max_batch`` images) only while such requests are on their way, so a
lone request never waits and a burst shares one pass.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import torch
from torch import nn

from digitcore import IMAGE_SIZE
from digitcore.model import predict_probabilities

_Item = tuple[torch.Tensor, asyncio.Future]


class Predictor:
    """A model in eval mode behind :meth:`predict`, with concurrent calls batched together."""

    def __init__(
        self,
        model: nn.Module,
        *,
        max_batch: int = 64,
        max_wait_ms: float = 1.0,
        threads: int = 1,
        forward_thread: bool = True,
    ) -> None:
        self.model = model
        self.device = next(model.parameters()).device
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self.threads = threads
        self.forward_thread = forward_thread
        self.forward_passes = 0
        self.images_predicted = 0
        self._pending: deque[_Item] = deque()
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._threads_before: int | None = None
        self._incoming = 0

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """One synchronous forward pass: N x 1 x 28 x 28 normalized -> N x 10 probabilities."""
        return predict_probabilities(self.model, images)

    def warm_up(self) -> None:
        """Run the batch sizes serving will use once, so the first request pays no setup."""
        for size in sorted({1, self.max_batch}):
            self.forward(torch.zeros(size, 1, IMAGE_SIZE, IMAGE_SIZE))

    async def start(self) -> None:
        self._threads_before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        if self.forward_thread:
            self._executor = ThreadPoolExecutor(
                max_workers=1,
                thread_name_prefix="forward",
                initializer=torch.set_num_threads,
                initargs=(self.threads,),
            )
            await asyncio.get_running_loop().run_in_executor(self._executor, self.warm_up)
        else:
            self.warm_up()
        self._wakeup = asyncio.Event()
        self._task = asyncio.create_task(self._collect(), name="predictor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        _fail(list(self._pending), RuntimeError("the server is stopping"))
        self._pending.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        if self._threads_before is not None:  # leave the process as it was found
            torch.set_num_threads(self._threads_before)
            self._threads_before = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @contextlib.contextmanager
    def expecting(self) -> Iterator[None]:
        """Around a request's decoding: it will call :meth:`predict` soon, worth waiting for.

        Leave the block before calling :meth:`predict`.
        """
        self._incoming += 1
        try:
            yield
        finally:
            self._incoming -= 1
            if self._wakeup is not None:
                self._wakeup.set()

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
        while True:
            batch: list[_Item] = []
            try:
                await self._gather(batch)
                await self._run([item for item in batch if not item[1].done()])
            except Exception as exc:
                _fail(batch, exc)
            except BaseException:
                _fail(batch, RuntimeError("the server is stopping"))
                raise

    async def _gather(self, batch: list[_Item]) -> None:
        assert self._wakeup is not None
        while not self._pending:
            self._wakeup.clear()
            await self._wakeup.wait()
        size = self._take(batch, 0)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        while size < self.max_batch and self._incoming > 0:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            self._wakeup.clear()
            timer = loop.call_later(remaining, self._wakeup.set)
            try:
                await self._wakeup.wait()
            finally:
                timer.cancel()
            size = self._take(batch, size)

    async def _run(self, batch: list[_Item]) -> None:
        if not batch:
            return
        images = batch[0][0] if len(batch) == 1 else torch.cat([x for x, _ in batch])
        if self._executor is None:
            probabilities = self.forward(images)
        else:
            loop = asyncio.get_running_loop()
            probabilities = await loop.run_in_executor(self._executor, self.forward, images)
        self.forward_passes += 1
        self.images_predicted += len(images)
        start = 0
        for rows, future in batch:
            if not future.done():
                future.set_result(probabilities[start : start + len(rows)])
            start += len(rows)


def _fail(batch: list[_Item], error: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(error)
