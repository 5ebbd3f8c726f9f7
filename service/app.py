"""The app factory and its lifespan: load the model once, serve it, release it.

``create_app(settings)`` builds the FastAPI app; its lifespan loads the checkpoint onto the
configured device, warms the model up and puts the predictor on ``app.state``, where the
routes' dependencies (and the ``/predict`` shortcut, :mod:`service.shortcut`) find it. While
it serves, native thread pools are sized on purpose: torch per ``TORCH_THREADS``, BLAS at one.
``service.app:app`` is an app built from the environment.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from threadpoolctl import threadpool_limits

from digitcore.checkpoint import CheckpointError, file_sha256, load_model
from digitcore.model import count_parameters, resolve_device
from service.config import Settings
from service.errors import install_handlers
from service.images import ImageWorkers
from service.inference import Predictor
from service.middleware import BodyLimit, QuietStartupFailure, StartupError
from service.routes import health, model, page, predict
from service.schemas import ModelInfo
from service.shortcut import PredictShortcut

log = logging.getLogger("service")

DESCRIPTION = """Recognizes the handwritten digit in an uploaded image with a small CNN trained
on MNIST. Send an image as multipart field `file` to `POST /predict`:
`curl -F file=@digit.png http://localhost:8000/predict`. Errors are JSON `{"detail": "..."}`."""


def _load(settings: Settings) -> tuple[Predictor, ModelInfo]:
    try:
        device = resolve_device(settings.device)
    except ValueError as exc:
        raise StartupError(f"DEVICE={settings.device}: {exc}") from None
    try:
        model_, checkpoint = load_model(settings.model_path, device)
        sha256 = file_sha256(settings.model_path)
    except CheckpointError as exc:
        raise StartupError(str(exc)) from None
    except OSError as exc:
        raise StartupError(f"checkpoint {settings.model_path}: {exc.strerror or exc}") from None
    meta = checkpoint.metadata
    info = ModelInfo(
        architecture=checkpoint.architecture,
        parameters=count_parameters(model_),
        sha256=sha256,
        path=str(settings.model_path),
        device=str(device),
        epoch=checkpoint.epoch,
        test_accuracy=meta.get("test_accuracy"),
        epochs=meta.get("epochs"),
        created=meta.get("created"),
        metadata=meta,
    )
    predictor = Predictor(
        model_,
        max_batch=settings.batch_max_size,
        max_wait_ms=settings.batch_wait_ms,
        threads=settings.torch_threads,
        # On CPU a forward pass is pure computation: on the event loop it costs no thread hop
        # and no GIL hand-over. A GPU pass is mostly waiting, which a thread lets overlap.
        forward_thread=settings.forward_thread == "on"
        or (settings.forward_thread == "auto" and device.type == "cuda"),
    )
    return predictor, info


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    predictor, info = _load(settings)
    # numpy/scipy's BLAS would start a thread per core for every call from every decoding
    # thread; requests are the parallelism here, so BLAS runs single-threaded (as torch does).
    blas = threadpool_limits(limits=1, user_api="blas")
    try:
        await predictor.start()
        image_workers = ImageWorkers(
            settings.preprocess_threads, settings.max_image_pixels, settings.inline_max_pixels
        )
        await image_workers.warm_up()
        # Everything loaded so far lives as long as the process: keep it out of the collector's
        # full passes (hundreds of thousands of objects, tens of ms each) while serving.
        gc.collect()
        gc.freeze()
        app.state.model_info = info
        app.state.image_workers = image_workers
        app.state.predictor = predictor
        log.info(
            "serving %s (%s parameters, test accuracy %s) from %s on %s; sha256 %s",
            info.architecture,
            f"{info.parameters:,}",
            info.test_accuracy,
            info.path,
            info.device,
            info.sha256[:12],
        )
        yield
    finally:
        app.state.predictor = None
        await predictor.stop()
        blas.restore_original_limits()
        gc.unfreeze()
        if predictor.forward_passes:
            log.info(
                "predicted %s images in %s forward passes (%.1f per pass)",
                f"{predictor.images_predicted:,}",
                f"{predictor.forward_passes:,}",
                predictor.images_predicted / predictor.forward_passes,
            )


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
    app.state.predictor = None
    app.state.model_info = None
    app.state.image_workers = None
    install_handlers(app)
    for module in (predict, health, model, page):
        app.include_router(module.router)
    app.add_middleware(PredictShortcut)  # inside the body limit, outside everything else
    app.add_middleware(BodyLimit, max_bytes=settings.max_upload_bytes)
    app.add_middleware(QuietStartupFailure)
    return app


def __getattr__(name: str) -> FastAPI:
    # ``service.app:app`` is built on first access, so importing this module reads no settings.
    if name == "app":
        globals()["app"] = built = create_app()
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
