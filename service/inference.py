"""The one batcher: the items of concurrent requests handed to one function together.

``await batcher.submit(items)`` returns that function's answers for ``items``. A collector
task takes everything queued (up to ``max_batch`` items; a larger request goes alone), waits
at most ``max_wait_ms`` for more when the batch is not full, and runs the function on a
thread of its own, so the event loop keeps reading requests and answering ``/healthz``
meanwhile. Requests that arrive while a batch runs form the next one: batches grow with the
load, and a lone request waits for nobody (with the default ``max_wait_ms`` of 0).

The service hands it :class:`~service.pipeline.DigitModel`: decoding, preprocessing, one
forward pass and the answers, per batch, on the batcher's thread. :meth:`Batcher.replace`
swaps the function (a reloaded model) without a pause: what was submitted before the swap is
still answered by the function it was submitted to.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

Item = TypeVar("Item")
Answer = TypeVar("Answer")


@dataclass
class _Request:
    items: Sequence
    future: asyncio.Future
    handler: Callable
    queued_at: float


class Batcher(Generic[Item, Answer]):
    """Calls ``handler(items) -> answers`` (one per item, in order) on batches of requests."""

    def __init__(
        self,
        handler: Callable[[list[Item]], list[Answer]],
        *,
        max_batch: int = 64,
        max_wait_ms: float = 0.0,
        on_batch: Callable[[int, list[float]], None] | None = None,
        on_answers: Callable[[list[Answer]], None] | None = None,
    ) -> None:
        self.handler = handler
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self.on_batch = on_batch  # (images, seconds each request was queued), per batch
        self.on_answers = on_answers  # each caller's answers, in the caller's own context
        self.batches = 0
        self.items = 0
        self._queue: deque[_Request] = deque()
        self._arrived: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batcher")
        self._arrived = asyncio.Event()
        self._task = asyncio.create_task(self._collect(), name="batcher")

    async def stop(self) -> None:
        """Stop taking batches; the one running finishes first, queued callers get an error."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        _fail(list(self._queue), RuntimeError("the server is stopping"))
        self._queue.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def replace(self, handler: Callable[[list[Item]], list[Answer]]) -> None:
        """Hand later submissions to ``handler``; those already queued keep their own."""
        self.handler = handler

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def submit(self, items: Sequence[Item]) -> list[Answer]:
        """The handler's answers for ``items``, computed together with other callers' items."""
        if not self.running or self._arrived is None:
            raise RuntimeError("the batcher is not running")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.append(_Request(items, future, self.handler, loop.time()))
        self._arrived.set()
        answers = await future
        if self.on_answers is not None:
            self.on_answers(answers)
        return answers

    async def _collect(self) -> None:
        while True:
            batch: list[_Request] = []
            try:
                await self._gather(batch)
                await self._run([request for request in batch if not request.future.done()])
            except Exception as exc:
                _fail(batch, exc)
            except BaseException:
                _fail(batch, RuntimeError("the server is stopping"))
                raise

    def _take(self, batch: list[_Request], size: int) -> int:
        """Move queued requests into ``batch`` while they fit in ``max_batch`` and were given
        to the same handler; the new size."""
        while self._queue:
            count = len(self._queue[0].items)
            if batch and (
                size + count > self.max_batch or self._queue[0].handler is not batch[0].handler
            ):
                break
            batch.append(self._queue.popleft())
            size += count
        return size

    async def _gather(self, batch: list[_Request]) -> None:
        assert self._arrived is not None
        while not self._queue:
            self._arrived.clear()
            await self._arrived.wait()
        size = self._take(batch, 0)
        if self.max_wait <= 0 or size >= self.max_batch:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        while size < self.max_batch and (remaining := deadline - loop.time()) > 0:
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)
            size = self._take(batch, size)

    async def _run(self, batch: list[_Request]) -> None:
        if not batch:
            return
        items = [item for request in batch for item in request.items]
        loop = asyncio.get_running_loop()
        started = loop.time()
        answers = await loop.run_in_executor(self._executor, batch[0].handler, items)
        self.batches += 1
        self.items += len(items)
        if self.on_batch is not None:
            self.on_batch(len(items), [started - request.queued_at for request in batch])
        start = 0
        for request in batch:
            if not request.future.done():
                request.future.set_result(answers[start : start + len(request.items)])
            start += len(request.items)


def _fail(batch: list[_Request], error: BaseException) -> None:
    for request in batch:
        if not request.future.done():
            request.future.set_exception(error)
