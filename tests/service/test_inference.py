"""The one batcher: concurrent callers' uploads go through the real pipeline together."""

from __future__ import annotations

import asyncio
import threading

import pytest
import torch

from service.inference import Batcher
from service.pipeline import DigitModel, InputRejected, Upload

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def pipeline(small_checkpoint) -> DigitModel:
    return DigitModel.load(small_checkpoint, "cpu")


@pytest.fixture(scope="module")
def uploads(mnist_png_samples) -> list[Upload]:
    return [Upload(data) for data, _ in mnist_png_samples[:40]]


class Recording:
    """The pipeline, noting the size of every batch it is called with and on which thread."""

    def __init__(self, pipeline: DigitModel) -> None:
        self.pipeline = pipeline
        self.sizes: list[int] = []
        self.threads: set[str] = set()

    def __call__(self, items: list[Upload]) -> list:
        self.sizes.append(len(items))
        self.threads.add(threading.current_thread().name)
        return self.pipeline(items)


async def started(handler, **options) -> Batcher:
    batcher = Batcher(handler, **options)
    await batcher.start()
    return batcher


async def test_concurrent_requests_share_one_pass_off_the_event_loop(pipeline, uploads):
    handler = Recording(pipeline)
    batcher = await started(handler, max_batch=64)
    try:
        answers = await asyncio.gather(*(batcher.submit([u]) for u in uploads[:10]))
        assert handler.sizes == [10] and batcher.batches == 1 and batcher.items == 10
        assert all(name.startswith("batcher") for name in handler.threads)
        expected = pipeline(uploads[:10])
        for (answer,), alone in zip(answers, expected, strict=True):
            assert answer.digit == alone.digit
            assert answer.probabilities == pytest.approx(alone.probabilities, abs=1e-5)
    finally:
        await batcher.stop()


async def test_batches_are_bounded_and_larger_requests_stay_whole(pipeline, uploads):
    handler = Recording(pipeline)
    batcher = await started(handler, max_batch=4)
    try:
        await asyncio.gather(*(batcher.submit([u]) for u in uploads[:10]))
        assert handler.sizes == [4, 4, 2]
        parts = [uploads[0:3], uploads[3:9], uploads[9:10]]
        answers = await asyncio.gather(*(batcher.submit(part) for part in parts))
        assert [len(a) for a in answers] == [3, 6, 1]
        assert handler.sizes[3:] == [3, 6, 1]  # 3 alone, 6 alone (over the bound), 1 alone
        digits = [p.digit for answer in answers for p in answer]
        assert digits == [p.digit for p in pipeline(uploads[:10])]
    finally:
        await batcher.stop()


async def test_the_wait_gathers_requests_that_arrive_later(pipeline, uploads):
    handler = Recording(pipeline)
    batcher = await started(handler, max_batch=3, max_wait_ms=60_000)
    try:

        async def later(i: int):
            await asyncio.sleep(0.02 * i)
            return await batcher.submit([uploads[i]])

        await asyncio.gather(*(later(i) for i in range(3)))
        assert handler.sizes == [3]  # a full batch goes at once, long before the wait ends
    finally:
        await batcher.stop()


async def test_without_a_wait_a_lone_request_goes_at_once(pipeline, uploads):
    batcher = await started(Recording(pipeline), max_batch=64)
    try:
        (answer,) = await asyncio.wait_for(batcher.submit(uploads[:1]), timeout=60)
        assert 0 <= answer.digit <= 9
    finally:
        await batcher.stop()


async def test_rejections_keep_their_place_among_predictions(pipeline, uploads):
    batcher = await started(pipeline)
    try:
        items = [uploads[0], Upload(b"not an image"), uploads[1], Upload(uploads[2].data[:60])]
        answers = await batcher.submit(items)
        assert [getattr(a, "status", 200) for a in answers] == [200, 415, 200, 400]
        assert isinstance(answers[1], InputRejected) and "not an image" in answers[1].detail
    finally:
        await batcher.stop()


async def test_a_failing_pass_fails_its_callers_and_the_batcher_goes_on(pipeline, uploads):
    calls = []

    def flaky(items):
        calls.append(len(items))
        if len(calls) == 1:
            raise RuntimeError("the device fell over")
        return pipeline(items)

    batcher = await started(flaky)
    try:
        with pytest.raises(RuntimeError, match="fell over"):
            await batcher.submit(uploads[:2])
        (answer,) = await batcher.submit(uploads[2:3])
        assert 0 <= answer.digit <= 9
    finally:
        await batcher.stop()


async def test_a_cancelled_caller_does_not_disturb_the_others(pipeline, uploads):
    handler = Recording(pipeline)
    batcher = await started(handler, max_wait_ms=50)
    try:
        doomed = asyncio.ensure_future(batcher.submit(uploads[:1]))
        kept = asyncio.ensure_future(batcher.submit(uploads[1:2]))
        await asyncio.sleep(0)
        doomed.cancel()
        (answer,) = await kept
        assert answer.digit == pipeline(uploads[1:2])[0].digit
        assert handler.sizes == [1]  # the cancelled request's upload was not processed
    finally:
        await batcher.stop()


async def test_stop_fails_queued_callers_and_refuses_new_ones(pipeline, uploads):
    release = threading.Event()

    def slow(items):
        release.wait(30)
        return pipeline(items)

    batcher = await started(slow)
    running = asyncio.ensure_future(batcher.submit(uploads[:1]))
    await asyncio.sleep(0.05)  # the first batch is now on the batcher's thread
    queued = asyncio.ensure_future(batcher.submit(uploads[1:2]))
    await asyncio.sleep(0.01)
    stopping = asyncio.ensure_future(batcher.stop())
    await asyncio.sleep(0.01)
    release.set()
    await stopping
    for caller in (running, queued):
        with pytest.raises(RuntimeError, match="stopping"):
            await caller
    with pytest.raises(RuntimeError, match="not running"):
        await batcher.submit(uploads[:1])


def test_the_serving_forward_pass_equals_the_reference(pipeline, mnist_test):
    """The inference wrapper's pooling gives the reference Digit's values, on real digits."""
    images = mnist_test[0][:256].float().div(255).unsqueeze(1)
    images = (images - 0.1307) / 0.3081
    noise = torch.randn(64, 1, 28, 28)
    for batch in (images, noise, images[:1]):
        with torch.inference_mode():
            torch.testing.assert_close(
                pipeline.serving_model(batch), pipeline.model(batch), atol=1e-5, rtol=1e-5
            )


async def test_answers_reach_on_answers_in_each_callers_own_context(pipeline, uploads):
    """Log lines about a request's answers (``on_answers``) carry that request's context."""
    import contextvars

    current = contextvars.ContextVar("current", default="none")
    seen: list[tuple[str, int]] = []
    batcher = await started(
        pipeline, on_answers=lambda answers: seen.append((current.get(), len(answers)))
    )

    async def caller(name: str, count: int):
        current.set(name)
        return await batcher.submit(uploads[:count])

    try:
        await asyncio.gather(caller("a", 1), caller("b", 3))
        assert sorted(seen) == [("a", 1), ("b", 3)] and batcher.batches == 1
    finally:
        await batcher.stop()


def test_unexpected_failures_are_logged_with_the_request_id(caplog):
    from service.logs import RequestIdFilter, request_id
    from service.pipeline import log_unexpected, rejection

    token = request_id.set("req-77")
    try:
        with caplog.at_level("WARNING", logger="service"):
            caplog.handler.addFilter(RequestIdFilter())
            expected = rejection(ValueError("libpng said no"))
            log_unexpected([expected, rejection(OSError("x")), InputRejected(415, "not an image")])
    finally:
        request_id.reset(token)
    assert expected.status == 400 and "could not be decoded (ValueError)" in expected.detail
    warnings = [r for r in caplog.records if "undecodable upload" in r.getMessage()]
    assert [r.request_id for r in warnings] == ["req-77", "req-77"]
    assert "libpng said no" in warnings[0].getMessage()
