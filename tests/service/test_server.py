"""End to end: ``python -m service`` as a real uvicorn process on a free loopback port."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import httpx
import numpy as np
import pytest
from PIL import Image

from testkit.servers import ROOT, free_port, serve, server_env
from tests.conftest import png_bytes
from tests.service.conftest import curl_form, image_bytes

UPLOAD_LIMIT = 256 * 1024


@pytest.fixture(scope="module")
def server(small_checkpoint, tmp_path_factory):
    with serve(
        tmp_path_factory.mktemp("server"),
        model_path=str(small_checkpoint),
        max_upload_bytes=str(UPLOAD_LIMIT),
        log_level="warning",
    ) as running:
        yield running


def test_curl_style_upload_of_a_real_mnist_png(server, mnist_png_samples):
    right = 0
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for data, label in mnist_png_samples[:20]:
            body, content_type = curl_form("file", "digit.png", data, "image/png")
            headers = {"Content-Type": content_type, "User-Agent": "curl/8.5.0", "Accept": "*/*"}
            response = client.post("/predict", content=body, headers=headers)
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/json"
            answer = response.json()
            assert 0 <= answer["digit"] <= 9 and len(answer["probabilities"]) == 10
            right += answer["digit"] == label
    assert right >= 16


def test_every_route_answers_over_http(server, mnist_png_samples):
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").json() == {"status": "ready"}
        assert client.get("/model").json()["parameters"] == 1_007_590
        assert "/predict/batch" in client.get("/openapi.json").json()["paths"]
        assert "swagger-ui" in client.get("/docs").text
        assert client.get("/").status_code == 200
        files = [
            ("files", (f"{i}.png", d, "image/png"))
            for i, (d, _) in enumerate(mnist_png_samples[:8])
        ]
        results = client.post("/predict/batch", files=files).json()["results"]
        assert [r["status"] for r in results] == [200] * 8


def test_body_over_the_limit_is_refused_and_serving_goes_on(server, mnist_png_samples):
    noise = np.random.default_rng(1).integers(0, 256, (600, 600), dtype=np.uint8)
    too_big = png_bytes(noise)
    assert len(too_big) > UPLOAD_LIMIT
    with httpx.Client(base_url=server.url, timeout=30) as client:
        response = client.post("/predict", files={"file": ("noise.png", too_big, "image/png")})
        assert response.status_code == 413
        assert "256 KiB limit" in response.json()["detail"]
        for data, content_type, status in [
            (b"", "image/png", 415),
            (b"plain text", "text/plain", 415),
            (mnist_png_samples[0][0][:100], "image/png", 400),
        ]:
            response = client.post("/predict", files={"file": ("x", data, content_type)})
            assert response.status_code == status
        data, label = mnist_png_samples[0]
        response = client.post("/predict", files={"file": ("d.png", data, "image/png")})
        assert response.status_code == 200 and response.json()["digit"] == label
    assert server.process.poll() is None
    assert "Traceback" not in server.output()


def in_progress(metrics: httpx.Response) -> float:
    """``http_requests_in_progress`` in a ``/metrics`` answer."""
    for line in metrics.text.splitlines():
        if line.startswith("http_requests_in_progress "):
            return float(line.split()[1])
    raise AssertionError("no http_requests_in_progress in /metrics")


def test_healthz_answers_while_predict_is_busy(server, digit_samples):
    """40 large uploads keep the decoders busy; /healthz must not wait behind them."""
    pixels, label = digit_samples[0]
    big = image_bytes(Image.fromarray(255 - pixels).resize((1000, 1000)), "PNG")
    assert len(big) < UPLOAD_LIMIT
    finished: list[str] = []

    async def predict(client: httpx.AsyncClient) -> int:
        response = await client.post("/predict", files={"file": ("big.png", big, "image/png")})
        finished.append("predict")
        assert response.status_code == 200
        return response.json()["digit"]

    async def scenario() -> list[int]:
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(base_url=server.url, timeout=120, limits=limits) as client:
            tasks = [asyncio.create_task(predict(client)) for _ in range(40)]
            while in_progress(await client.get("/metrics")) < 20 and not finished:
                await asyncio.sleep(0.005)  # until the server holds most uploads
            health = await client.get("/healthz")
            assert health.json() == {"status": "ok"}
            finished.append("healthz")
            return await asyncio.gather(*tasks)

    digits = asyncio.run(scenario())
    assert digits == [label] * 40
    after = len(finished) - 1 - finished.index("healthz")
    assert after >= 10, f"only {after} of 40 predictions were still running when /healthz answered"


def run_service(*args: str, **settings: str) -> subprocess.CompletedProcess:
    """``python -m service ARGS`` with ``settings``, to its end (one that does not start)."""
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        cwd=ROOT,
        env=server_env(**settings),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_missing_checkpoint_stops_startup_with_one_clear_line(tmp_path):
    missing = tmp_path / "no-such-model.pth"
    result = run_service(model_path=str(missing), host="127.0.0.1", port=str(free_port()))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Traceback" not in output
    naming = [line for line in output.splitlines() if str(missing) in line]
    assert len(naming) == 1, output
    assert "file not found" in naming[0]


def test_corrupt_checkpoint_stops_startup_with_one_clear_line(tmp_path):
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"\x80\x02 this is not a checkpoint")
    result = run_service(model_path=str(corrupt), port=str(free_port()))
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "Traceback" not in output
    assert len([line for line in output.splitlines() if str(corrupt) in line]) == 1, output


@pytest.mark.parametrize("workers", ["1", "2"])
def test_bad_checkpoint_exits_with_startup_failure_status(tmp_path, workers):
    """With one worker or several, a bad checkpoint stops the service with status 3."""
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(b"PK\x03\x04 cut short")
    result = run_service(model_path=str(truncated), port=str(free_port()), workers=workers)
    output = result.stdout + result.stderr
    assert result.returncode == 3, output
    assert "Traceback" not in output
    naming = {line.split("] ")[-1] for line in output.splitlines() if str(truncated) in line}
    assert len(naming) == 1, output  # one clear line (per worker process, the same line)


def test_invalid_setting_is_refused_clearly():
    result = run_service(port="eighty", batch_wait_ms="-1")
    assert result.returncode == 2
    assert "PORT" in result.stderr and "BATCH_WAIT_MS" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_lists_every_setting_with_its_default():
    result = run_service("--help")
    assert result.returncode == 0
    for name, default in [("MODEL_PATH", "models/mnist_cnn.pth"), ("MAX_UPLOAD_BYTES", "10485760")]:
        assert any(name in line and default in line for line in result.stdout.splitlines())


def test_serving_does_not_import_torchvision(small_checkpoint):
    script = """
import asyncio, json, sys
from service.app import create_app
from service.config import Settings
async def main():
    app = create_app(Settings(model_path=sys.argv[1]))
    async with app.router.lifespan_context(app):
        pass
asyncio.run(main())
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {"torchvision", "trainer"})))
"""
    result = subprocess.run(
        [sys.executable, "-c", script, str(small_checkpoint)],
        cwd=ROOT,
        env=server_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_docs_work_in_a_browser_without_a_cdn(server, tmp_path, mnist_png_samples):
    """Swagger UI loads from the server itself and its "Try it out" predicts an upload."""
    from playwright.sync_api import sync_playwright

    data, label = mnist_png_samples[0]
    (tmp_path / "digit.png").write_bytes(data)
    elsewhere: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"]
        )
        try:
            page = browser.new_page()
            page.on(
                "request",
                lambda r: None if r.url.startswith(server.url) else elsewhere.append(r.url),
            )
            page.goto(f"{server.url}/docs")
            page.wait_for_selector(".opblock", timeout=30_000)
            paths = page.locator(".opblock-summary-path").all_inner_texts()
            assert {"/predict", "/predict/batch", "/healthz", "/readyz", "/model"} <= set(paths)
            block = page.locator("#operations-predict-predict_predict_post")
            block.locator(".opblock-summary").click()
            block.locator("button.try-out__btn").click()
            block.locator("input[type=file]").set_input_files(tmp_path / "digit.png")
            block.locator("button.execute").click()
            status = block.locator(".live-responses-table .response .response-col_status")
            status.first.wait_for(timeout=30_000)
            assert status.first.inner_text().strip() == "200"
            answer = json.loads(
                block.locator(".live-responses-table .microlight").first.inner_text()
            )
            assert answer["digit"] == label
        finally:
            browser.close()
    assert elsewhere == []
