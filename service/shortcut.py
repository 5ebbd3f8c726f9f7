"""The hot path: the usual ``POST /predict`` answered without FastAPI's request machinery.

At a few thousand requests a second, FastAPI's routing, form parsing, validation and
dependency solving cost more than recognising a 28x28 digit. This ASGI middleware, inside the
body limit and outside everything else, serves the request that makes up nearly all traffic:
``POST /predict`` whose body is one file field ``file`` (:func:`service.multipart.sole_file`),
with no query or only ``include_image=true|false|1|0``, once the model is loaded and no test
overrides a dependency. It calls the same :func:`service.routes.predict.recognize` as the
route and answers what the route would: the prediction, or the rejection's status and detail.
Every other request (other paths, unusual bodies, bad queries, not ready) goes on, body
included, to the FastAPI app, whose documented ``/predict`` route and errors stay the contract.
"""

from __future__ import annotations

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import InputRejected
from service.multipart import sole_file
from service.routes.predict import recognize

PATH = "/predict"
# The query strings served here; any other goes to FastAPI, which validates it.
QUICK_QUERIES = {
    b"": False,
    b"include_image=false": False,
    b"include_image=true": True,
    b"include_image=0": False,
    b"include_image=1": True,
}


class PredictShortcut:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != PATH
            or scope["method"] != "POST"
            or scope.get("root_path")
        ):
            await self.app(scope, receive, send)
            return
        app = scope.get("app")
        state = getattr(app, "state", None)
        predictor = getattr(state, "predictor", None)
        workers = getattr(state, "image_workers", None)
        include_image = QUICK_QUERIES.get(scope["query_string"])
        if include_image is None or predictor is None or workers is None:
            await self.app(scope, receive, send)
            return
        if getattr(app, "dependency_overrides", None):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:  # the client left
            return
        data = sole_file(body, _header(scope, b"content-type"), "file")
        if data is None:
            await self.app(scope, _replay(body, receive), send)
            return
        try:
            response = await recognize(data, include_image, predictor, workers)
        except InputRejected as exc:
            response = JSONResponse({"detail": exc.detail}, status_code=exc.status)
        await response(scope, receive, send)


async def _read_body(receive: Receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands out the already-read body again, then the client's messages."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None
