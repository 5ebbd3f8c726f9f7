"""Operating the service: metrics, hot reload (admin route and SIGHUP), graceful shutdown, logs.

In-process where the app alone is under test; real ``python -m service`` processes where the
behaviour is the process's (signals, several workers, exit status, log lines).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import time

import httpx
import pytest
import torch

from digitcore.checkpoint import Checkpoint, file_sha256, save_checkpoint
from digitcore.model import build_model
from testkit.servers import serve
from tests.service.conftest import make_settings, running

ADMIN = "admin-secret"
USER = "user-key"


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        sample, _, value = line.rpartition(" ")
        if sample == (f"{name}{{{wanted}}}" if labels else name):
            return float(value)
    return 0.0


def swap_in(source, target) -> None:
    """Replace ``target`` by a copy of ``source`` in one rename, as a deployment would."""
    partial = target.with_suffix(".partial")
    shutil.copyfile(source, partial)
    os.replace(partial, target)


@pytest.fixture
def served_path(tmp_path, small_checkpoint):
    path = tmp_path / "served.pth"
    shutil.copyfile(small_checkpoint, path)
    return path


# ---- metrics ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_metrics_count_requests_predictions_batches_and_the_model(
    small_checkpoint, mnist_png_samples
):
    async with running(make_settings(model_path=small_checkpoint)) as (_, client):
        answers = await asyncio.gather(
            *(
                client.post("/predict", files={"file": ("d.png", data, "image/png")})
                for data, _ in mnist_png_samples[:12]
            )
        )
        await client.post("/predict", files={"file": ("x.txt", b"words", "text/plain")})
        text = (await client.get("/metrics")).text
    digits = [a.json()["digit"] for a in answers]
    ok = {"handler": "/predict", "method": "POST", "status": "200"}
    assert metric(text, "http_requests_total", **ok) == 12
    assert metric(text, "http_requests_total", handler="/predict", method="POST", status="415") == 1
    assert metric(text, "http_request_duration_seconds_count", handler="/predict", method="POST")
    for digit in set(digits):
        assert metric(text, "predictions_total", digit=str(digit)) == digits.count(digit)
    assert metric(text, "prediction_confidence_count") == 12
    assert metric(text, "rejected_uploads_total", status="415") == 1
    assert metric(text, "inference_batch_size_sum") == 13
    assert 1 <= metric(text, "inference_batch_size_count") <= 13
    assert metric(text, "inference_queue_seconds_count") == 13
    assert metric(text, "http_requests_in_progress") == 1  # the /metrics request itself
    sha = file_sha256(small_checkpoint)
    assert metric(text, "model_info", architecture="Digit", sha256=sha) == 1


def test_metrics_add_up_over_workers(small_checkpoint, mnist_png_samples, tmp_path):
    sha = file_sha256(small_checkpoint)
    with (
        serve(tmp_path, model_path=str(small_checkpoint), workers="2") as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        for data, _ in mnist_png_samples[:40]:
            response = client.post("/predict", files={"file": ("d.png", data, "image/png")})
            assert response.status_code == 200
        ok = {"handler": "/predict", "method": "POST", "status": "200"}
        for _ in range(6):  # whichever worker answers, the totals are every worker's
            text = client.get("/metrics").text
            assert sum(metric(text, "predictions_total", digit=str(d)) for d in range(10)) == 40
            assert metric(text, "http_requests_total", **ok) == 40
            assert metric(text, "model_info", architecture="Digit", sha256=sha) == 1


# ---- hot reload --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_admin_reload_needs_the_admin_key_and_swaps_the_model(
    served_path, default_model_path, mnist_png_samples
):
    settings = make_settings(model_path=served_path, admin_api_key=ADMIN, api_keys=USER)
    async with running(settings) as (_, client):
        user = {"Authorization": f"Bearer {USER}"}
        before = (await client.get("/model", headers=user)).json()
        assert (await client.post("/admin/reload")).status_code == 401
        assert (await client.post("/admin/reload", headers=user)).status_code == 403
        wrong = await client.post("/admin/reload", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
        swap_in(default_model_path, served_path)
        answer = await client.post("/admin/reload", headers={"Authorization": f"Bearer {ADMIN}"})
        assert answer.status_code == 200, answer.text
        after = (await client.get("/model", headers=user)).json()
        assert answer.json() == {"status": "reloaded", "sha256": after["sha256"], "workers": 1}
        assert after["sha256"] == file_sha256(default_model_path) != before["sha256"]
        assert after["loaded_at"] >= before["loaded_at"]
        text = (await client.get("/metrics")).text
        assert metric(text, "model_info", architecture="Digit", sha256=after["sha256"]) == 1
        assert metric(text, "model_info", architecture="Digit", sha256=before["sha256"]) == 0


@pytest.mark.anyio
async def test_without_an_admin_key_there_is_no_reload_route(small_checkpoint):
    async with running(make_settings(model_path=small_checkpoint)) as (_, client):
        assert (await client.post("/admin/reload")).status_code == 404


def untrained(path) -> None:
    torch.manual_seed(0)
    save_checkpoint(path, Checkpoint(build_model().state_dict()))


def truncated(source, path) -> None:
    data = source.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("spoil", "says"),
    [("truncated", "corrupt or truncated"), ("untrained", "built-in test digits")],
)
async def test_a_bad_checkpoint_is_refused_and_the_old_model_keeps_serving(
    served_path, small_checkpoint, mnist_png_samples, spoil, says
):
    settings = make_settings(model_path=served_path, admin_api_key=ADMIN)
    async with running(settings) as (_, client):
        before = (await client.get("/model")).json()["sha256"]
        if spoil == "truncated":
            truncated(small_checkpoint, served_path)
        else:
            untrained(served_path)
        answer = await client.post("/admin/reload", headers={"Authorization": f"Bearer {ADMIN}"})
        assert answer.status_code == 422
        detail = answer.json()["detail"]
        assert "not reloaded" in detail and str(served_path) in detail, detail
        assert says in detail, detail
        assert (await client.get("/model")).json()["sha256"] == before
        data = mnist_png_samples[0][0]
        response = await client.post("/predict", files={"file": ("d.png", data, "image/png")})
        assert response.status_code == 200


async def hammer(url: str, samples, count: int, during) -> list[int]:
    """``count`` concurrent /predict requests, calling ``during()`` once they are in flight."""
    limits = httpx.Limits(max_connections=count)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def one(i: int) -> int:
            data, _ = samples[i % len(samples)]
            response = await client.post("/predict", files={"file": ("d.png", data, "image/png")})
            return response.status_code

        tasks = [asyncio.create_task(one(i)) for i in range(count)]
        await asyncio.sleep(0.3)
        await during(client)
        return await asyncio.gather(*tasks)


def test_reload_under_load_fails_no_request(
    served_path, default_model_path, mnist_png_samples, tmp_path
):
    with serve(tmp_path, model_path=str(served_path), admin_api_key=ADMIN) as server:

        async def reload(client: httpx.AsyncClient) -> None:
            swap_in(default_model_path, served_path)
            headers = {"Authorization": f"Bearer {ADMIN}"}
            answer = await client.post("/admin/reload", headers=headers)
            assert answer.status_code == 200, answer.text

        statuses = asyncio.run(hammer(server.url, mnist_png_samples, 400, reload))
        assert statuses == [200] * 400
        sha = httpx.get(f"{server.url}/model").json()["sha256"]
        assert sha == file_sha256(default_model_path)
        assert "Traceback" not in server.output()


def wait_for_sha(url: str, sha: str, timeout: float = 120, agree: int = 10) -> None:
    """Until ``agree`` answers in a row (any worker) report ``sha``."""
    deadline = time.monotonic() + timeout
    streak = 0
    with httpx.Client(base_url=url, timeout=10) as client:
        while streak < agree:
            assert time.monotonic() < deadline, f"still not serving {sha[:12]}"
            try:
                streak = streak + 1 if client.get("/model").json()["sha256"] == sha else 0
            except httpx.TransportError:
                streak = 0
            time.sleep(0.05)


def test_sighup_reloads_the_checkpoint(served_path, default_model_path, tmp_path):
    with serve(tmp_path, model_path=str(served_path)) as server:
        swap_in(default_model_path, served_path)
        server.process.send_signal(signal.SIGHUP)
        wait_for_sha(server.url, file_sha256(default_model_path))
        assert server.process.poll() is None
        assert "reloaded" in server.output()


def test_every_worker_reloads(served_path, default_model_path, small_checkpoint, tmp_path):
    settings = {"model_path": str(served_path), "workers": "2", "admin_api_key": ADMIN}
    with serve(tmp_path, **settings) as server:
        headers = {"Authorization": f"Bearer {ADMIN}"}
        truncated(small_checkpoint, served_path)
        refused = httpx.post(f"{server.url}/admin/reload", headers=headers, timeout=60)
        assert refused.status_code == 422
        swap_in(default_model_path, served_path)
        answer = httpx.post(f"{server.url}/admin/reload", headers=headers, timeout=60)
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "reloading" and answer.json()["workers"] == 2
        wait_for_sha(server.url, file_sha256(default_model_path), agree=20)
        sighup_sha = file_sha256(small_checkpoint)
        swap_in(small_checkpoint, served_path)
        server.process.send_signal(signal.SIGHUP)  # to the supervisor: every worker again
        wait_for_sha(server.url, sighup_sha, agree=20)


# ---- shutdown and logs -------------------------------------------------------------------------


def test_sigterm_lets_a_batch_in_flight_finish_and_exits_0(
    small_checkpoint, mnist_png_samples, tmp_path
):
    samples = mnist_png_samples[:64]
    with serve(tmp_path, model_path=str(small_checkpoint)) as server:
        files = [("files", (f"{i}.png", d, "image/png")) for i, (d, _) in enumerate(samples)]

        async def scenario() -> httpx.Response:
            async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:
                batch = asyncio.create_task(client.post("/predict/batch", files=files))
                await asyncio.sleep(0.05)  # the request is on its way / being served
                server.process.send_signal(signal.SIGTERM)
                return await batch

        response = asyncio.run(scenario())
        assert response.status_code == 200
        assert [r["status"] for r in response.json()["results"]] == [200] * 64
        assert server.process.wait(timeout=60) == 0
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{server.url}/healthz", timeout=2)


def test_json_logs_carry_the_request_id_on_every_line(
    small_checkpoint, mnist_png_samples, tmp_path
):
    settings = {"model_path": str(small_checkpoint), "log_format": "json", "access_log": "true"}
    with serve(tmp_path, **settings) as server:
        data = mnist_png_samples[0][0]
        for rid in ("trace-a", "trace-b"):
            httpx.post(
                f"{server.url}/predict",
                files={"file": ("d.png", data, "image/png")},
                headers={"X-Request-ID": rid},
            )
        httpx.get(f"{server.url}/no-such-page", headers={"X-Request-ID": "trace-c"})
        time.sleep(0.2)
        lines = [line for line in server.output().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message", "request_id"} <= set(r) for r in records)
    access = [r for r in records if r["logger"] == "uvicorn.access"]
    by_id = {r["request_id"]: r["message"] for r in access}
    assert "POST /predict" in by_id["trace-a"] and "200" in by_id["trace-a"]
    assert "POST /predict" in by_id["trace-b"]
    assert "GET /no-such-page" in by_id["trace-c"] and "404" in by_id["trace-c"]
    assert any("serving Digit" in r["message"] and r["request_id"] == "-" for r in records)


def test_keys_cors_and_request_ids_through_a_real_server(
    small_checkpoint, mnist_png_samples, tmp_path
):
    settings = {
        "model_path": str(small_checkpoint),
        "api_keys": "real-key",
        "cors_origins": "https://app.example",
    }
    data, label = mnist_png_samples[0]
    upload = {"file": ("d.png", data, "image/png")}
    with serve(tmp_path, **settings) as server, httpx.Client(base_url=server.url) as client:
        refused = client.post("/predict", files=upload, headers={"X-Request-ID": "abc-1"})
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        assert refused.headers["x-request-id"] == "abc-1"
        for headers in ({"Authorization": "Bearer real-key"}, {"X-API-Key": "real-key"}):
            answer = client.post("/predict", files=upload, headers=headers)
            assert answer.status_code == 200 and answer.json()["digit"] == label
        preflight = client.options(
            "/predict",
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert preflight.headers["access-control-allow-origin"] == "https://app.example"
        assert client.get("/healthz").headers["x-request-id"]
