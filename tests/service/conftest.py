"""Fixtures for the service tests: settings, the app with its lifespan running, a real server.

In-process tests drive the app through ``httpx.ASGITransport`` after running the ASGI
lifespan protocol the way a server does; end-to-end tests start ``python -m service`` as a
subprocess on a free loopback port.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from PIL import Image

from service.app import create_app
from service.config import Settings

DEFAULTS = {name: field.default for name, field in Settings.model_fields.items()}


def make_settings(**overrides) -> Settings:
    """Settings from the documented defaults plus ``overrides``, whatever the environment holds."""
    return Settings(**{**DEFAULTS, **overrides})


class LifespanFailed(RuntimeError):
    """The app reported ``lifespan.startup.failed``; the message is what a server would log."""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run the ASGI lifespan protocol through the whole middleware stack, as uvicorn does."""
    to_app: asyncio.Queue = asyncio.Queue()
    from_app: asyncio.Queue = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
    task = asyncio.create_task(app(scope, to_app.get, from_app.put))
    await to_app.put({"type": "lifespan.startup"})
    message = await from_app.get()
    if message["type"] != "lifespan.startup.complete":
        await asyncio.gather(task, return_exceptions=True)
        raise LifespanFailed(message.get("message", ""))
    try:
        yield
    finally:
        await to_app.put({"type": "lifespan.shutdown"})
        await from_app.get()
        await task


@asynccontextmanager
async def client_for(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """A fresh app for ``settings`` with its model loaded, and a client for it."""
    app = create_app(settings)
    async with lifespan(app), client_for(app) as client:
        yield app, client


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


def curl_form(field: str, filename: str, data: bytes, content_type: str) -> tuple[bytes, str]:
    """The body and Content-Type that ``curl -F field=@filename`` sends."""
    boundary = "------------------------d74496d66958873e"
    body = (
        (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def image_bytes(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def digit_samples(mnist_test) -> list[tuple[np.ndarray, int]]:
    """A few MNIST test digits (uint8 28x28 white on black) with their labels."""
    images, labels = mnist_test
    return [(images[i].numpy(), int(labels[i])) for i in (0, 1, 2, 3, 4)]
