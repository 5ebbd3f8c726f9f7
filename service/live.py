"""The model being served, and its replacement without a pause (``POST /admin/reload``, SIGHUP).

:func:`load_checked` loads the checkpoint at ``MODEL_PATH``, validates it (its keys and
shapes load into the architecture; a self-test reads the built-in digits of
``selftest/digits.png``, two MNIST test digits of each class, in order) and warms it up, all
off the event loop. :class:`LiveModel` then hands the batcher the new model in one step:
requests already submitted finish on the old one, later ones get the new one. A file that
fails any check is refused with :class:`ModelUnusable` and the old model keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path

import anyio
import numpy as np
import torch
from PIL import Image

from digitcore import IMAGE_SIZE
from digitcore.checkpoint import CheckpointError, file_sha256
from digitcore.line_reader import LineReaderError
from digitcore.model import count_parameters, resolve_device
from digitcore.preprocess import to_tensor
from service.config import Settings
from service.inference import Batcher
from service.metrics import Metrics
from service.pipeline import DigitModel, Outcome, Upload, log_unexpected
from service.schemas import ModelInfo

log = logging.getLogger("service")

SELFTEST_DIGITS = Path(__file__).resolve().parent / "selftest" / "digits.png"
SELFTEST_MIN_RIGHT = 0.7  # a trained model reads nearly all; an untrained one about 1 in 10


class ModelUnusable(Exception):
    """The checkpoint cannot be served; the message says which file and why."""


def self_test(digit_model: DigitModel) -> float:
    """The share of the built-in digits the model reads right; too few is :class:`ModelUnusable`."""
    strip = np.asarray(Image.open(SELFTEST_DIGITS), dtype=np.float32) / 255
    digits = strip.reshape(IMAGE_SIZE, -1, IMAGE_SIZE).transpose(1, 0, 2)
    labels = torch.arange(len(digits)) // (len(digits) // 10)
    images = torch.stack([to_tensor(digit) for digit in digits])
    right = float((digit_model.predict(images).argmax(1) == labels).float().mean())
    if right < SELFTEST_MIN_RIGHT:
        raise ModelUnusable(
            f"checkpoint {digit_model.path}: it reads only {right:.0%} of the built-in test "
            f"digits right (at least {SELFTEST_MIN_RIGHT:.0%} needed)"
        )
    return right


def load_checked(settings: Settings) -> tuple[DigitModel, ModelInfo]:
    """Load, validate and warm up the checkpoint at ``MODEL_PATH`` (blocking)."""
    try:
        device = resolve_device(settings.device)
    except ValueError as exc:
        raise ModelUnusable(f"DEVICE={settings.device}: {exc}") from None
    line_reader = settings.line_reader_path if settings.line_reader_path.is_file() else None
    if line_reader is None:
        log.warning("no line reader at %s: /read cuts numbers by the digit model alone",
                    settings.line_reader_path)  # fmt: skip
    try:
        digit_model = DigitModel.load(
            settings.model_path, device, settings.max_image_pixels, line_reader
        )
        sha256 = file_sha256(settings.model_path)
    except (CheckpointError, LineReaderError) as exc:
        raise ModelUnusable(str(exc)) from None
    except OSError as exc:
        raise ModelUnusable(f"checkpoint {settings.model_path}: {exc.strerror or exc}") from None
    self_test(digit_model)
    digit_model.warm_up([1, settings.batch_max_size])
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
        temperature=checkpoint.temperature,
        digit_threshold=checkpoint.digit_threshold,
        calibration_error=(meta.get("calibration") or {}).get("test_ece"),
        corruption_calibration_error=(meta.get("corruptions") or {}).get("mean_ece"),
        created=meta.get("created"),
        loaded_at=datetime.now(UTC).isoformat(timespec="seconds"),
        metadata=meta,
        line_reader=None
        if line_reader is None
        else {
            "path": str(line_reader),
            "sha256": file_sha256(line_reader),
            "metadata": digit_model.line_reader.metadata,
        },
    )
    return digit_model, info


class LiveModel:
    """The served model, its facts and the batcher in front of it; reloadable in place."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        digit_model, self.info = load_checked(settings)
        self.batcher: Batcher[Upload, Outcome] = Batcher(
            self._handler(digit_model),
            max_batch=settings.batch_max_size,
            max_wait_ms=settings.batch_wait_ms,
            on_batch=metrics.batch,
            on_answers=log_unexpected,
        )
        self._lock = asyncio.Lock()
        metrics.serving(self.info.sha256, self.info.architecture)

    def _handler(self, digit_model: DigitModel):
        def predict(uploads: list[Upload]) -> list[Outcome]:
            outcomes = digit_model(uploads)
            self.metrics.outcomes(outcomes)
            return outcomes

        return predict

    async def reload(self) -> ModelInfo:
        """Load ``MODEL_PATH`` again and serve it; :class:`ModelUnusable` leaves all as it was."""
        async with self._lock:
            digit_model, info = await anyio.to_thread.run_sync(load_checked, self.settings)
            self.batcher.replace(self._handler(digit_model))
            self.info = info
            self.metrics.serving(info.sha256, info.architecture)
            log.info("reloaded %s: now serving sha256 %s", info.path, info.sha256[:12])
            return info
