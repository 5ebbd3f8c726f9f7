"""The app factory and its lifespan: load the model once, serve it, reload it, release it.

``create_app(settings)`` builds the FastAPI app: routes (one router per concern; the API ones
behind the API-key dependency), exception handlers, and middleware that only wraps (request
ids, metrics, CORS, the body limit). Its lifespan loads the checkpoint onto the configured
device (:class:`service.live.LiveModel`), starts the batcher that every prediction route
submits to, and reloads the model on SIGHUP. ``service.app:app`` is an app built from the
environment; ``python -m service`` runs ``create_app`` as uvicorn's app factory.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import threading
from collections.abc import AsyncIterator

import torch
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline
from threadpoolctl import threadpool_limits

from service.config import Settings, read_api_keys, split_list
from service.errors import install_handlers
from service.live import LiveModel, ModelUnusable
from service.logs import RequestId
from service.metrics import HttpMetrics, Metrics
from service.middleware import BodyLimit, QuietStartupFailure, StartupError
from service.routes import admin, health, metrics, model, page, predict, read, v2
from service.security import ApiKey

log = logging.getLogger("service")

DESCRIPTION = """Recognizes the handwritten digit in an uploaded image with a small CNN trained
on MNIST. Send an image as multipart field `file` to `POST /predict`:
`curl -F file=@digit.png http://localhost:8000/predict`. Errors are JSON `{"detail": "..."}`.
When the service has API keys, send one as `Authorization: Bearer <key>` or `X-API-Key: <key>`."""


@contextlib.contextmanager
def reload_on_sighup(live: LiveModel):
    """SIGHUP reloads the model, as ``POST /admin/reload`` does (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    reloads: set[asyncio.Task] = set()

    async def reload() -> None:
        try:
            await live.reload()
        except ModelUnusable as exc:
            log.error("SIGHUP: not reloaded, still serving sha256 %s: %s", live.info.sha256, exc)

    def on_sighup() -> None:
        task = loop.create_task(reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, on_sighup)
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGHUP)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    threads_before = torch.get_num_threads()
    torch.set_num_threads(settings.torch_threads)
    # numpy/scipy's BLAS would start a thread per core for every call; requests are the
    # parallelism here (one worker process per core), so BLAS runs single-threaded as torch does.
    blas = threadpool_limits(limits=1, user_api="blas")
    try:
        try:
            app.state.api_keys = read_api_keys(settings)
        except OSError as exc:
            raise StartupError(f"API_KEYS_FILE={settings.api_keys_file}: {exc.strerror}") from None
        try:
            live = LiveModel(settings, app.state.metrics)
        except ModelUnusable as exc:
            raise StartupError(str(exc)) from None
        await live.batcher.start()
        # Everything loaded so far lives as long as the process: keep it out of the collector's
        # full passes (hundreds of thousands of objects, tens of ms each) while serving.
        gc.collect()
        gc.freeze()
        app.state.live = live
        info = live.info
        log.info(
            "serving %s (%s parameters, test accuracy %s) from %s on %s; sha256 %s; API %s",
            info.architecture,
            f"{info.parameters:,}",
            info.test_accuracy,
            info.path,
            info.device,
            info.sha256[:12],
            f"with {len(app.state.api_keys)} key(s)" if app.state.api_keys else "open",
        )
        try:
            with reload_on_sighup(live):
                yield
        finally:
            app.state.live = None
            await live.batcher.stop()
            gc.unfreeze()
            app.state.metrics.worker_stopped()
            if live.batcher.batches:
                log.info(
                    "predicted %s images in %s batches (%.1f per batch)",
                    f"{live.batcher.items:,}",
                    f"{live.batcher.batches:,}",
                    live.batcher.items / live.batcher.batches,
                )
    finally:
        blas.restore_original_limits()
        torch.set_num_threads(threads_before)


def create_app(settings: Settings | None = None) -> FastAPI:
    """A new app for ``settings`` (default: from the environment); the model loads at startup."""
    settings = settings or Settings()
    app = FastAPIOffline(  # /docs and /redoc with their assets served here, not from a CDN
        title="MNIST digit recognizer",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.live = None
    app.state.api_keys = ()
    app.state.metrics = Metrics()
    install_handlers(app)
    for open_router in (health.router, v2.health_router, metrics.router, page.router):
        app.include_router(open_router)
    # The key check is attached only when keys are configured: an open API pays nothing for it.
    keyed = bool(settings.api_keys.get_secret_value().strip() or settings.api_keys_file)
    for api in (predict, read, model, v2):
        app.include_router(api.router, dependencies=[ApiKey] if keyed else [])
    if settings.admin_api_key is not None and settings.admin_api_key.get_secret_value():
        app.include_router(admin.router)
    # Outermost last: request id, metrics, CORS, the body limit, then the app.
    app.add_middleware(BodyLimit, max_bytes=settings.max_upload_bytes)
    app.add_middleware(QuietStartupFailure)
    origins = split_list(settings.cors_origins)
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "X-API-Key", "X-Request-ID", "Content-Type"],
            expose_headers=["X-Request-ID"],
        )
    app.add_middleware(HttpMetrics, metrics=app.state.metrics)
    app.add_middleware(RequestId)
    return app


def __getattr__(name: str) -> FastAPI:
    # ``service.app:app`` is built on first access, so importing this module reads no settings.
    if name == "app":
        globals()["app"] = built = create_app()
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
