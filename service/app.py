"""The app factory and its lifespan: load the model once, serve it, release it.

``create_app(settings)`` builds the FastAPI app; its lifespan loads the checkpoint onto the
configured device (:class:`service.pipeline.DigitModel`), warms it up and starts the batcher
that every prediction route submits to (:mod:`service.inference`); routes find both on
``app.state`` through their dependencies. ``service.app:app`` is an app built from the
environment; ``python -m service`` runs ``create_app`` as uvicorn's app factory.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import torch
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from threadpoolctl import threadpool_limits

from digitcore.checkpoint import CheckpointError, file_sha256
from digitcore.model import count_parameters, resolve_device
from service.config import Settings
from service.errors import install_handlers
from service.inference import Batcher
from service.middleware import BodyLimit, QuietStartupFailure, StartupError
from service.pipeline import DigitModel
from service.routes import health, model, page, predict
from service.schemas import ModelInfo

log = logging.getLogger("service")

DESCRIPTION = """Recognizes the handwritten digit in an uploaded image with a small CNN trained
on MNIST. Send an image as multipart field `file` to `POST /predict`:
`curl -F file=@digit.png http://localhost:8000/predict`. Errors are JSON `{"detail": "..."}`."""


def load(settings: Settings) -> tuple[DigitModel, ModelInfo]:
    """The checkpoint at ``MODEL_PATH`` on ``DEVICE``; a :class:`StartupError` says what's wrong."""
    try:
        device = resolve_device(settings.device)
    except ValueError as exc:
        raise StartupError(f"DEVICE={settings.device}: {exc}") from None
    try:
        digit_model = DigitModel.load(settings.model_path, device, settings.max_image_pixels)
        sha256 = file_sha256(settings.model_path)
    except CheckpointError as exc:
        raise StartupError(str(exc)) from None
    except OSError as exc:
        raise StartupError(f"checkpoint {settings.model_path}: {exc.strerror or exc}") from None
    checkpoint = digit_model.checkpoint
    meta = checkpoint.metadata
    info = ModelInfo(
        architecture=checkpoint.architecture,
        parameters=count_parameters(digit_model.model),
        sha256=sha256,
        path=str(settings.model_path),
        device=str(device),
        epoch=checkpoint.epoch,
        test_accuracy=meta.get("test_accuracy"),
        epochs=meta.get("epochs"),
        created=meta.get("created"),
        metadata=meta,
    )
    return digit_model, info


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    threads_before = torch.get_num_threads()
    torch.set_num_threads(settings.torch_threads)
    # numpy/scipy's BLAS would start a thread per core for every call; requests are the
    # parallelism here (one worker process per core), so BLAS runs single-threaded as torch does.
    blas = threadpool_limits(limits=1, user_api="blas")
    try:
        digit_model, info = load(settings)
        digit_model.warm_up([1, settings.batch_max_size])
        batcher = Batcher(
            digit_model, max_batch=settings.batch_max_size, max_wait_ms=settings.batch_wait_ms
        )
        await batcher.start()
        # Everything loaded so far lives as long as the process: keep it out of the collector's
        # full passes (hundreds of thousands of objects, tens of ms each) while serving.
        gc.collect()
        gc.freeze()
        app.state.model_info = info
        app.state.batcher = batcher
        log.info(
            "serving %s (%s parameters, test accuracy %s) from %s on %s; sha256 %s",
            info.architecture,
            f"{info.parameters:,}",
            info.test_accuracy,
            info.path,
            info.device,
            info.sha256[:12],
        )
        try:
            yield
        finally:
            app.state.batcher = None
            await batcher.stop()
            gc.unfreeze()
            if batcher.batches:
                log.info(
                    "predicted %s images in %s batches (%.1f per batch)",
                    f"{batcher.items:,}",
                    f"{batcher.batches:,}",
                    batcher.items / batcher.batches,
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
    app.state.batcher = None
    app.state.model_info = None
    install_handlers(app)
    for module in (predict, health, model, page):
        app.include_router(module.router)
    app.add_middleware(BodyLimit, max_bytes=settings.max_upload_bytes)
    app.add_middleware(QuietStartupFailure)
    return app


def __getattr__(name: str) -> FastAPI:
    # ``service.app:app`` is built on first access, so importing this module reads no settings.
    if name == "app":
        globals()["app"] = built = create_app()
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
