"""Every route and every client error, in-process with the lifespan running (small checkpoint)."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import numpy as np
import pytest
from fastapi import HTTPException, Request
from PIL import Image

from service.app import create_app
from service.deps import get_batcher
from service.pipeline import rejection
from tests.conftest import png_bytes
from tests.service.conftest import (
    LifespanFailed,
    client_for,
    curl_form,
    lifespan,
    make_settings,
    running,
)

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
async def served(small_checkpoint):
    async with running(make_settings(model_path=small_checkpoint)) as (app, client):
        yield app, client


@pytest.fixture
def client(served):
    return served[1]


def upload(data: bytes, name: str = "digit.png", content_type: str = "image/png", field="file"):
    return {field: (name, data, content_type)}


def huge_png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` pixels but carries almost no data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


async def test_predict_returns_digit_confidence_and_probabilities(client, mnist_png_samples):
    right = 0
    for data, label in mnist_png_samples[:40]:
        response = await client.post("/predict", files=upload(data))
        assert response.status_code == 200
        body = response.json()
        keys = {"digit", "confidence", "is_digit", "probabilities", "input_image", "detail"}
        assert set(body) == keys
        assert body["detail"] is None
        assert body["input_image"] is None
        probabilities = body["probabilities"]
        assert len(probabilities) == 10 and sum(probabilities) == pytest.approx(1, abs=1e-4)
        assert body["digit"] == int(np.argmax(probabilities))
        assert body["confidence"] == probabilities[body["digit"]]
        right += body["digit"] == label
    assert right >= 32  # the one-epoch model is about 90% right


async def test_include_image_returns_the_28x28_the_model_saw(client, mnist_png_samples):
    data = mnist_png_samples[0][0]
    response = await client.post("/predict", params={"include_image": "true"}, files=upload(data))
    assert response.status_code == 200
    shown = Image.open(io.BytesIO(base64.b64decode(response.json()["input_image"])))
    assert shown.format == "PNG" and shown.size == (28, 28) and shown.mode == "L"
    pixels = np.asarray(shown)
    assert pixels.max() > 200 and np.median(pixels) == 0  # white ink on black, like MNIST


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"files": upload(b"\x89PNG", field="image")}, "multipart field 'file' is missing"),
        ({"files": {"file": (None, b"not a file")}}, "holds text, not a file"),
        ({"data": {"file": "not a file"}}, "not multipart"),
        ({"content": b"\x89PNG...", "headers": {"content-type": "image/png"}}, "not multipart"),
        ({}, "not multipart"),
    ],
    ids=["wrong-field-name", "text-field", "url-encoded", "raw-body", "no-body"],
)
async def test_missing_file_field_is_422_with_a_hint(client, kwargs, expected):
    response = await client.post("/predict", **kwargs)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert isinstance(detail, str) and expected in detail and "curl -F file=@" in detail


async def test_bad_query_parameter_is_422(client, mnist_png_samples):
    response = await client.post(
        "/predict", params={"include_image": "perhaps"}, files=upload(mnist_png_samples[0][0])
    )
    assert response.status_code == 422
    assert "include_image" in response.json()["detail"]


async def test_empty_file_is_415(client):
    response = await client.post("/predict", files=upload(b""))
    assert response.status_code == 415
    assert "empty" in response.json()["detail"]


async def test_text_file_is_415(client):
    response = await client.post("/predict", files=upload(b"hello\n", "notes.txt", "text/plain"))
    assert response.status_code == 415
    assert "not an image" in response.json()["detail"]


async def test_unsupported_image_format_is_415(client, digit_samples):
    buffer = io.BytesIO()
    Image.fromarray(digit_samples[0][0]).save(buffer, format="PPM")
    response = await client.post("/predict", files=upload(buffer.getvalue(), "d.ppm"))
    assert response.status_code == 415
    assert "not supported" in response.json()["detail"]


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "HEIF", "AVIF"])
@pytest.mark.parametrize("kept", [0.5, 20], ids=["half", "header"])
async def test_truncated_image_is_400(client, digit_samples, fmt, kept):
    image = Image.fromarray(digit_samples[0][0]).resize((280, 280)).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    data = buffer.getvalue()
    cut = data[: int(len(data) * kept) if kept < 1 else kept]
    response = await client.post("/predict", files=upload(cut, f"d.{fmt}"))
    assert response.status_code == 400
    assert "truncated" in response.json()["detail"]
    assert fmt in response.json()["detail"] or "header" in response.json()["detail"]


async def test_huge_declared_dimensions_are_413_without_decoding(client):
    response = await client.post("/predict", files=upload(huge_png_header(100_000, 100_000)))
    assert response.status_code == 413
    assert "pixels" in response.json()["detail"]


async def test_image_over_max_image_pixels_is_413(small_checkpoint, digit_samples):
    settings = make_settings(model_path=small_checkpoint, max_image_pixels=10_000)
    big = png_bytes(np.asarray(Image.fromarray(digit_samples[0][0]).resize((120, 120))))
    async with running(settings) as (_, client):
        response = await client.post("/predict", files=upload(big))
        assert response.status_code == 413
        assert "10,000" in response.json()["detail"]
        small = await client.post("/predict", files=upload(png_bytes(digit_samples[0][0])))
        assert small.status_code == 200


@pytest.mark.parametrize("value", [0, 255], ids=["black", "white"])
@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA"])
async def test_blank_image_is_422_no_digit_found(client, value, mode):
    blank = Image.new(mode, (64, 64), (value,) * len(mode))
    response = await client.post("/predict", files=upload(png_bytes(np.asarray(blank))))
    assert response.status_code == 422
    assert response.json()["detail"].startswith("no digit found")


async def test_body_over_the_upload_limit_is_413(small_checkpoint, digit_samples):
    settings = make_settings(model_path=small_checkpoint, max_upload_bytes=50_000)
    async with running(settings) as (_, client):
        noise = np.random.default_rng(0).integers(0, 256, (300, 300), dtype=np.uint8)
        declared = await client.post("/predict", files=upload(png_bytes(noise)))
        assert declared.status_code == 413
        assert "50,000 bytes limit" in declared.json()["detail"]

        async def chunks():  # no Content-Length: the limit must count streamed bytes
            yield b"--b\r\nContent-Disposition: form-data; name=file; filename=x.png\r\n\r\n"
            for _ in range(100):
                yield bytes(4096)

        streamed = await client.post(
            "/predict",
            content=chunks(),
            headers={"content-type": "multipart/form-data; boundary=b"},
        )
        assert streamed.status_code == 413
        assert streamed.json()["detail"] == "the request body is over the 50,000 bytes limit"
        good = await client.post("/predict", files=upload(png_bytes(digit_samples[0][0])))
        assert good.status_code == 200


async def test_batch_gives_one_result_per_file_with_per_item_errors(served, mnist_png_samples):
    app, client = served
    (a, label_a), (b, label_b) = mnist_png_samples[0], mnist_png_samples[1]
    files = [
        ("files", ("a.png", a, "image/png")),
        ("files", ("notes.txt", b"hello", "text/plain")),
        ("files", ("b.png", b, "image/png")),
        ("files", ("cut.png", a[: len(a) // 2], "image/png")),
        ("files", ("blank.png", png_bytes(np.zeros((28, 28), np.uint8)), "image/png")),
    ]
    batches = app.state.live.batcher.batches
    response = await client.post("/predict/batch", files=files)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3, 4]
    assert [r["filename"] for r in results] == [
        "a.png",
        "notes.txt",
        "b.png",
        "cut.png",
        "blank.png",
    ]
    assert [r["status"] for r in results] == [200, 415, 200, 400, 422]
    assert results[0]["prediction"]["digit"] == label_a and results[0]["error"] is None
    assert results[2]["prediction"]["digit"] == label_b
    assert all(r["prediction"] is None and r["error"] for r in results if r["status"] != 200)
    assert app.state.live.batcher.batches == batches + 1  # all five files in one pass
    single = (await client.post("/predict", files=upload(a))).json()
    assert results[0]["prediction"]["probabilities"] == pytest.approx(
        single["probabilities"], abs=1e-5
    )


async def test_batch_include_image_and_all_bad(client, mnist_png_samples):
    data = mnist_png_samples[3][0]
    files = [("files", ("a.png", data, "image/png"))] * 2
    response = await client.post("/predict/batch?include_image=true", files=files)
    assert all(r["prediction"]["input_image"] for r in response.json()["results"])
    bad = [("files", ("x.txt", b"x", "text/plain"))] * 3
    response = await client.post("/predict/batch", files=bad)
    assert response.status_code == 200
    assert [r["status"] for r in response.json()["results"]] == [415, 415, 415]


async def test_batch_without_files_is_422(client):
    response = await client.post("/predict/batch", files=upload(b"x", field="file"))
    assert response.status_code == 422
    assert "'files' is missing" in response.json()["detail"]


async def test_batch_over_max_files_is_413(small_checkpoint, mnist_png_samples):
    settings = make_settings(model_path=small_checkpoint, max_batch_files=3)
    async with running(settings) as (_, client):
        files = [("files", (f"{i}.png", mnist_png_samples[i][0], "image/png")) for i in range(4)]
        response = await client.post("/predict/batch", files=files)
        assert response.status_code == 413
        assert response.json()["detail"] == "4 files sent; at most 3 per request"
        response = await client.post("/predict/batch", files=files[:3])
        assert response.status_code == 200 and len(response.json()["results"]) == 3


async def test_server_keeps_serving_after_bad_input(client, mnist_png_samples):
    bad_inputs = [
        upload(b""),
        upload(b"\xff\xd8\xff\xe0garbage", "x.jpg", "image/jpeg"),
        upload(huge_png_header(50_000, 50_000)),
        upload(b"GIF89a" + bytes(20), "x.gif", "image/gif"),
        upload(bytes(range(256)) * 10, "x.bin", "application/octet-stream"),
    ]
    for files in bad_inputs:
        response = await client.post("/predict", files=files)
        assert 400 <= response.status_code < 500, response.text
        assert isinstance(response.json()["detail"], str)
    data, label = mnist_png_samples[0]
    response = await client.post("/predict", files=upload(data))
    assert response.status_code == 200 and response.json()["digit"] == label


async def test_a_dependency_of_the_route_sees_every_plain_curl_upload(served, mnist_png_samples):
    """What the next features hang on the route (keys, metrics) applies to the usual upload."""
    app, client = served
    real = app.state.live.batcher
    seen: list[str | None] = []

    async def watched(request: Request):
        seen.append(request.headers.get("user-agent"))
        if request.headers.get("x-refuse"):
            raise HTTPException(status_code=401, detail="refused by the dependency")
        return real

    app.dependency_overrides[get_batcher] = watched
    try:
        for data, label in mnist_png_samples[:5]:
            body, content_type = curl_form("file", "digit.png", data, "image/png")
            headers = {"Content-Type": content_type, "User-Agent": "curl/8.5.0"}
            response = await client.post("/predict", content=body, headers=headers)
            assert response.status_code == 200 and response.json()["digit"] == label
            refused = await client.post(
                "/predict", content=body, headers={**headers, "X-Refuse": "1"}
            )
            assert refused.status_code == 401
            assert refused.json() == {"detail": "refused by the dependency"}
        assert seen == ["curl/8.5.0"] * 10
    finally:
        app.dependency_overrides.clear()


async def test_health_ready_and_model(served, small_checkpoint):
    _, client = served
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}
    info = (await client.get("/model")).json()
    from digitcore.checkpoint import file_sha256, load_checkpoint

    checkpoint = load_checkpoint(small_checkpoint)
    assert info["architecture"] == "Digit"
    assert info["parameters"] == 1_007_590
    assert info["sha256"] == file_sha256(small_checkpoint)
    assert info["device"] == "cpu"
    assert info["path"] == str(small_checkpoint)
    assert info["epoch"] == checkpoint.epoch == 1
    assert info["test_accuracy"] == checkpoint.metadata["test_accuracy"]
    assert info["epochs"] == 1 and info["created"] == checkpoint.metadata["created"]
    assert info["metadata"]["normalization"] == {"mean": 0.1307, "std": 0.3081}


async def test_before_the_model_loads_readyz_and_model_routes_are_503(
    small_checkpoint, mnist_png_samples
):
    app = create_app(make_settings(model_path=small_checkpoint))
    async with client_for(app) as client:  # no lifespan: the model is not loaded
        assert (await client.get("/healthz")).status_code == 200
        for method, path, kwargs in [
            ("GET", "/readyz", {}),
            ("GET", "/model", {}),
            ("POST", "/predict", {"files": upload(mnist_png_samples[0][0])}),
        ]:
            response = await client.request(method, path, **kwargs)
            assert response.status_code == 503
            assert "not loaded" in response.json()["detail"]
    async with lifespan(app), client_for(app) as client:
        assert (await client.get("/readyz")).status_code == 200
    async with client_for(app) as client:  # after shutdown the model is released again
        assert (await client.get("/readyz")).status_code == 503


@pytest.mark.parametrize("problem", ["missing", "corrupt", "not-a-checkpoint"])
async def test_bad_checkpoint_fails_startup_with_one_line(tmp_path, problem):
    path = tmp_path / "model.pth"
    if problem == "corrupt":
        path.write_bytes(b"PK\x03\x04 not really a zip file")
    elif problem == "not-a-checkpoint":
        import torch

        torch.save({"weights": torch.zeros(3)}, path)
    app = create_app(make_settings(model_path=path))
    with pytest.raises(LifespanFailed) as failed:
        async with lifespan(app):
            pass
    message = str(failed.value)
    assert "\n" not in message and "Traceback" not in message
    assert message.startswith(f"checkpoint {path}: ")


async def test_openapi_describes_every_route_with_models_and_errors(client):
    spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    assert set(paths) >= {"/predict", "/predict/batch", "/healthz", "/readyz", "/model"}
    expected = {
        ("/predict", "post"): ("Prediction", {"400", "413", "415", "422", "503"}),
        ("/predict/batch", "post"): ("BatchResponse", {"413", "422", "503"}),
        ("/healthz", "get"): ("Health", set()),
        ("/readyz", "get"): ("Ready", {"503"}),
        ("/model", "get"): ("ModelInfo", {"503"}),
    }
    for (path, method), (model, errors) in expected.items():
        responses = paths[path][method]["responses"]
        ok = responses["200"]["content"]["application/json"]["schema"]["$ref"]
        assert ok == f"#/components/schemas/{model}"
        assert "examples" in spec["components"]["schemas"][model]
        for code in errors:
            content = responses[code]["content"]["application/json"]
            assert content["schema"]["$ref"] == "#/components/schemas/ErrorDetail"
            assert isinstance(content["example"]["detail"], str)
    docs = await client.get("/docs")
    assert docs.status_code == 200 and "cdn" not in docs.text.lower()
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f"/static-offline-docs/{asset}" in docs.text
        assert (await client.get(f"/static-offline-docs/{asset}")).status_code == 200


def test_any_decoding_failure_maps_to_a_client_error():
    from digitcore.errors import (
        CorruptImageError,
        ImageInputError,
        ImageTooLargeError,
        NoDigitFoundError,
        UnsupportedImageError,
    )

    cases = [
        (UnsupportedImageError("u"), 415),
        (CorruptImageError("c"), 400),
        (ImageTooLargeError("t"), 413),
        (NoDigitFoundError("n"), 422),
        (ImageInputError("i"), 400),
        (KeyError("unexpected"), 400),
        (MemoryError(), 400),
    ]
    for exc, status in cases:
        assert rejection(exc).status == status
    assert "could not be decoded (KeyError)" in rejection(KeyError("x")).detail
