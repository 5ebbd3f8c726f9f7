"""The micro-batching predictor: concurrent callers share forward passes and get their rows."""

from __future__ import annotations

import asyncio

import pytest
import torch

from digitcore.checkpoint import load_model
from digitcore.preprocess import normalize
from service.inference import Predictor

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def model(small_checkpoint):
    return load_model(small_checkpoint, "cpu")[0]


@pytest.fixture(scope="module")
def images(mnist_test) -> torch.Tensor:
    return normalize(mnist_test[0][:40].float().div(255).unsqueeze(1))


async def started(model, **options) -> Predictor:
    predictor = Predictor(model, **options)
    await predictor.start()
    return predictor


async def test_concurrent_requests_share_one_forward_pass(model, images):
    predictor = await started(model, max_batch=64, max_wait_ms=0)
    try:
        expected = predictor.forward(images[:10])
        results = await asyncio.gather(*(predictor.predict(images[i : i + 1]) for i in range(10)))
        assert predictor.forward_passes == 1 and predictor.images_predicted == 10
        for i, rows in enumerate(results):
            assert rows.shape == (1, 10)
            torch.testing.assert_close(rows[0], expected[i], atol=1e-5, rtol=1e-4)
    finally:
        await predictor.stop()


async def test_batches_are_bounded_and_multi_image_requests_stay_whole(model, images):
    predictor = await started(model, max_batch=4, max_wait_ms=0)
    try:
        singles = [predictor.predict(images[i : i + 1]) for i in range(10)]
        await asyncio.gather(*singles)
        assert predictor.forward_passes == 3  # 4 + 4 + 2
        chunks = [images[0:3], images[3:9], images[9:10]]
        results = await asyncio.gather(*(predictor.predict(chunk) for chunk in chunks))
        assert [len(r) for r in results] == [3, 6, 1]
        torch.testing.assert_close(
            torch.cat(results), predictor.forward(images[:10]), atol=1e-5, rtol=1e-4
        )
        assert predictor.forward_passes == 6  # 3 alone, 6 alone (over the bound), 1 alone
    finally:
        await predictor.stop()


async def test_the_wait_gathers_requests_still_being_decoded(model, images):
    predictor = await started(model, max_batch=64, max_wait_ms=60_000)
    try:

        async def decoded_later(i: int) -> torch.Tensor:
            with predictor.expecting():
                await asyncio.sleep(0.01 * i)  # decoding takes a while
            return await predictor.predict(images[i : i + 1])

        await asyncio.gather(*(decoded_later(i) for i in range(5)))
        assert predictor.forward_passes == 1 and predictor.images_predicted == 5

        async def rejected() -> None:
            with predictor.expecting():
                await asyncio.sleep(0.01)  # the upload turns out bad: no predict() follows

        await asyncio.gather(predictor.predict(images[:1]), rejected())
        assert predictor.forward_passes == 2  # the wait ended when the other request left
    finally:
        await predictor.stop()


async def test_a_lone_request_does_not_wait(model, images):
    predictor = await started(model, max_batch=64, max_wait_ms=600_000)
    try:
        rows = await asyncio.wait_for(predictor.predict(images[:1]), timeout=60)
        assert rows.shape == (1, 10) and predictor.forward_passes == 1
    finally:
        await predictor.stop()


async def test_a_cancelled_caller_does_not_disturb_the_others(model, images):
    predictor = await started(model, max_batch=64, max_wait_ms=50)
    try:
        doomed = asyncio.ensure_future(predictor.predict(images[:1]))
        kept = asyncio.ensure_future(predictor.predict(images[1:2]))
        await asyncio.sleep(0)
        doomed.cancel()
        rows = await kept
        torch.testing.assert_close(rows, predictor.forward(images[1:2]), atol=1e-5, rtol=1e-4)
        assert predictor.images_predicted == 1
    finally:
        await predictor.stop()


async def test_stop_fails_pending_callers_and_refuses_new_ones(model, images):
    predictor = await started(model, max_batch=64, max_wait_ms=600_000)
    with predictor.expecting():  # keeps the collector waiting for this request
        pending = asyncio.ensure_future(predictor.predict(images[:1]))
        await asyncio.sleep(0.01)
        await predictor.stop()
    with pytest.raises(RuntimeError, match="stopping"):
        await pending
    with pytest.raises(RuntimeError, match="not running"):
        await predictor.predict(images[:1])


async def test_torch_threads_are_set_while_running_and_restored_after(model):
    before = torch.get_num_threads()
    wanted = 2 if before == 1 else 1
    predictor = await started(model, threads=wanted)
    try:
        assert torch.get_num_threads() == wanted
        threads = await asyncio.get_running_loop().run_in_executor(
            predictor._executor, torch.get_num_threads
        )
        assert threads == wanted
    finally:
        await predictor.stop()
    assert torch.get_num_threads() == before
