"""The hot path of ``/predict`` answers exactly what FastAPI's route answers, and only when sure.

:mod:`service.multipart` must read the usual uploads as Starlette's parser does and decline
everything else; :mod:`service.shortcut` must serve the usual request and hand every other one,
body included, to the app; tiny uploads prepared together must each get their own answer.
"""

from __future__ import annotations

import asyncio
import gc
import io

import httpx
import numpy as np
import pytest
import torch
from PIL import Image
from starlette.datastructures import Headers, UploadFile
from starlette.formparsers import MultiPartParser
from threadpoolctl import threadpool_info

from digitcore.checkpoint import load_model
from digitcore.preprocess import preprocess
from service.multipart import sole_file
from service.shortcut import PredictShortcut
from tests.conftest import png_bytes
from tests.service.conftest import image_bytes, make_settings, running

pytestmark = pytest.mark.anyio

PNG = b"\x89PNG\r\n\x1a\n not really a png, but bytes with \r\n and -- inside"


def encoded(**kwargs) -> tuple[bytes, str]:
    """The body and Content-Type httpx sends for ``kwargs`` (files=..., data=...)."""
    request = httpx.Request("POST", "http://test/predict", **kwargs)
    return request.read(), request.headers["content-type"]


def handmade(boundary: str, parts: list[tuple[str, bytes]], preamble: bytes = b"") -> bytes:
    body = preamble
    for disposition, content in parts:
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        body += b"Content-Type: application/octet-stream\r\n\r\n" + content + b"\r\n"
    return body + f"--{boundary}--\r\n".encode()


def cases() -> dict[str, tuple[bytes, str, bool]]:
    """name -> (body, content type, whether the quick reader must take it)."""
    curl = "------------------------d74496d66958873e"
    one = [('form-data; name="file"; filename="digit.png"', PNG)]
    nameless = [('form-data; name="file"', PNG)]
    return {
        "httpx": (*encoded(files={"file": ("digit.png", PNG, "image/png")}), True),
        "curl": (handmade(curl, one), f"multipart/form-data; boundary={curl}", True),
        "quoted-boundary": (handmade("a b", one), 'multipart/form-data; boundary="a b"', True),
        "empty-file": (*encoded(files={"file": ("e.png", b"", "image/png")}), True),
        "extra-field": (*encoded(files={"file": ("d.png", PNG)}, data={"note": "x"}), False),
        "two-files": (*encoded(files=[("file", ("a.png", PNG)), ("file", ("b.png", PNG))]), False),
        "text-field": (*encoded(data={"file": "not a file"}), False),
        "other-name": (*encoded(files={"image": ("d.png", PNG)}), False),
        "no-filename": (handmade("b1", nameless), "multipart/form-data; boundary=b1", False),
        "preamble": (handmade("b2", one, b"hello\r\n"), "multipart/form-data; boundary=b2", False),
        "truncated": (handmade("b3", one)[:-9], "multipart/form-data; boundary=b3", False),
        "not-multipart": (PNG, "image/png", False),
    }  # fmt: skip


async def starlette_form(body: bytes, content_type: str):
    async def stream():
        yield body

    parser = MultiPartParser(Headers({"content-type": content_type}), stream())
    return await parser.parse()


@pytest.mark.parametrize("name", list(cases()))
async def test_quick_reader_agrees_with_starlette_or_declines(name):
    body, content_type, taken = cases()[name]
    quick = sole_file(body, content_type, "file")
    assert (quick is not None) == taken
    if quick is not None:
        form = await starlette_form(body, content_type)
        assert len(form.multi_items()) == 1
        upload = form["file"]
        assert isinstance(upload, UploadFile) and upload.filename
        assert await upload.read() == quick


@pytest.fixture(scope="module")
async def served(small_checkpoint):
    async with running(make_settings(model_path=small_checkpoint)) as (app, client):
        yield app, client


async def call(asgi, app, body: bytes, content_type: str, query: bytes = b"") -> tuple[int, bytes]:
    """One POST /predict through ``asgi`` with ``scope["app"]`` set as Starlette sets it."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/predict",
        "raw_path": b"/predict",
        "root_path": "",
        "query_string": query,
        "headers": [(b"content-type", content_type.encode()), (b"host", b"test")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "app": app,
    }
    chunks = [body[: len(body) // 2], body[len(body) // 2 :]]  # the body in two messages
    sent: list[dict] = []

    async def receive():
        if chunks:
            chunk = chunks.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    await asgi(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


async def test_shortcut_serves_the_usual_request_and_passes_the_rest_on(served, mnist_png_samples):
    app, _ = served
    passed_on: list[bytes] = []

    async def downstream(scope, receive, send):  # records what reached it, body included
        received, more = b"", True
        while more:
            message = await receive()
            received += message["body"]
            more = message.get("more_body", False)
        passed_on.append(received)
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    shortcut = PredictShortcut(downstream)
    data = mnist_png_samples[0][0]
    body, content_type = encoded(files={"file": ("d.png", data, "image/png")})
    for query in (b"", b"include_image=true", b"include_image=0"):
        status, answer = await call(shortcut, app, body, content_type, query)
        assert status == 200 and b'"digit":' in answer
    assert passed_on == []
    for query in (b"include_image=perhaps", b"include_image=yes", b"x=1"):
        assert (await call(shortcut, app, body, content_type, query))[0] == 299
    for name, (other, other_type, taken) in cases().items():
        if not taken:
            assert (await call(shortcut, app, other, other_type))[0] == 299, name
    assert passed_on[:3] == [body] * 3  # the app gets the body the shortcut read


@pytest.mark.parametrize(
    "upload",
    ["mnist", "large-png", "jpeg", "empty", "text", "truncated", "blank"],
)
async def test_shortcut_and_route_give_the_same_answer(served, mnist_png_samples, upload):
    _, client = served
    digit = mnist_png_samples[3][0]
    pixels = Image.open(io.BytesIO(digit))
    data = {
        "mnist": digit,
        "large-png": image_bytes(pixels.resize((300, 300)), "PNG"),
        "jpeg": image_bytes(pixels.resize((200, 200)).convert("RGB"), "JPEG"),
        "empty": b"",
        "text": b"hello, not an image",
        "truncated": digit[: len(digit) // 2],
        "blank": png_bytes(np.zeros((28, 28), dtype=np.uint8)),
    }[upload]
    files = {"file": ("upload.bin", data, "application/octet-stream")}
    quick = await client.post("/predict", files=files)  # served by the shortcut
    routed = await client.post("/predict", params={"include_image": "no"}, files=files)
    assert quick.status_code == routed.status_code
    assert quick.headers["content-type"] == routed.headers["content-type"] == "application/json"
    if quick.status_code == 200:
        a, b = quick.json(), routed.json()
        assert a["digit"] == b["digit"] and a["input_image"] is b["input_image"] is None
        assert a["probabilities"] == pytest.approx(b["probabilities"], abs=1e-6)
    else:
        assert quick.json() == routed.json()


async def test_tiny_uploads_prepared_together_keep_their_own_answers(served, mnist_png_samples):
    _, client = served
    uploads = [data for data, _ in mnist_png_samples[:24]]
    uploads.insert(7, b"\x89PNG\r\n\x1a\n truncated")
    alone = [await client.post("/predict", files={"file": ("d.png", d)}) for d in uploads]
    together = await asyncio.gather(
        *(client.post("/predict", files={"file": ("d.png", d)}) for d in uploads)
    )
    assert [r.status_code for r in together] == [r.status_code for r in alone]
    assert together[7].status_code == 400
    for a, b in zip(alone, together, strict=True):
        if a.status_code == 200:
            assert a.json()["digit"] == b.json()["digit"]
            assert a.json()["probabilities"] == pytest.approx(b.json()["probabilities"], abs=1e-5)


@pytest.mark.parametrize(
    ("setting", "threaded"),
    [("auto", torch.cuda.is_available()), ("off", False), ("on", True)],  # auto: CUDA only
)
async def test_forward_thread_setting(small_checkpoint, mnist_png_samples, setting, threaded):
    settings = make_settings(model_path=small_checkpoint, forward_thread=setting)
    async with running(settings) as (app, client):
        assert app.state.predictor.forward_thread is threaded
        answers = await asyncio.gather(
            *(
                client.post("/predict", files={"file": ("d.png", d)})
                for d, _ in mnist_png_samples[:8]
            )
        )
    model, _ = load_model(small_checkpoint)
    batch = torch.stack([preprocess([d])[0][0] for d, _ in mnist_png_samples[:8]])
    with torch.inference_mode():
        expected = model(batch).argmax(1).tolist()
    assert [r.json()["digit"] for r in answers] == expected


async def test_serving_pins_blas_to_one_thread_and_freezes_startup_objects(small_checkpoint):
    def blas_threads() -> set[int]:
        return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}

    before = blas_threads()
    async with running(make_settings(model_path=small_checkpoint)):
        assert blas_threads() == {1}
        assert gc.get_freeze_count() > 0
    assert blas_threads() == before
    assert gc.get_freeze_count() == 0
