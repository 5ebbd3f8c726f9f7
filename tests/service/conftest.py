"""Fixtures for the service tests: settings, the app with its lifespan running, a real server.

In-process tests drive the app through ``httpx.ASGITransport`` after running the ASGI
lifespan protocol the way a server does; end-to-end tests start ``python -m service`` as a
subprocess on a free loopback port.
"""

from __future__ import annotations

import asyncio
import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from PIL import Image

from service.app import create_app
from service.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DEFAULTS = {name: field.default for name, field in Settings.model_fields.items()}
SETTING_VARS = {name.upper() for name in Settings.model_fields}


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


def image_bytes(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def digit_samples(mnist_test) -> list[tuple[np.ndarray, int]]:
    """A few MNIST test digits (uint8 28x28 white on black) with their labels."""
    images, labels = mnist_test
    return [(images[i].numpy(), int(labels[i])) for i in (0, 1, 2, 3, 4)]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(**settings: str) -> dict[str, str]:
    """The environment for ``python -m service``: ours, minus stray settings, plus ``settings``."""
    env = {key: value for key, value in os.environ.items() if key.upper() not in SETTING_VARS}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update({key.upper(): str(value) for key, value in settings.items()})
    return env


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def serve(tmp_path: Path, ready_timeout: float = 90, **settings: str) -> Iterator[Server]:
    """``python -m service`` on a free loopback port, ready (``/readyz`` 200) when yielded."""
    port = free_port()
    log = tmp_path / f"server-{port}.log"
    env = server_env(host="127.0.0.1", port=str(port), **settings)
    with open(log, "wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "service"], cwd=ROOT, env=env, stdout=sink, stderr=sink
        )
    server = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if process.poll() is not None:
                raise AssertionError(f"server exited {process.returncode}:\n{server.output()}")
            try:
                if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"server not ready in {ready_timeout}s:\n{server.output()}")
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
