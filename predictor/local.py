"""The local engine: the checkpoint loaded once, here, and the service's pipeline run on each chunk.

The pipeline is :class:`service.pipeline.DigitModel`, the same object the service's batcher
calls, so a file gets the same answer here as from ``POST /predict``.
"""

from __future__ import annotations

import os

from digitcore.checkpoint import CheckpointError, file_sha256
from digitcore.line_reader import LineReaderError
from digitcore.model import resolve_device
from predictor.engines import (
    Answer,
    EngineError,
    describe_model,
    prediction_from,
    reading_from,
)
from service.pipeline import DigitModel, InputRejected, NumberUpload, Upload


class LocalEngine:
    """The checkpoint loaded once, here; each chunk goes through the pipeline as one batch."""

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        device: str = "auto",
        line_reader: str | os.PathLike[str] | None = None,
    ) -> None:
        try:
            self.device = resolve_device(device)
        except (ValueError, RuntimeError) as exc:
            raise EngineError(str(exc)) from None
        try:
            self.pipeline = DigitModel.load(model_path, self.device, line_reader=line_reader)
            sha256 = file_sha256(model_path)
        except (CheckpointError, LineReaderError, OSError) as exc:
            raise EngineError(str(exc)) from None
        checkpoint = self.pipeline.checkpoint
        summary = describe_model(checkpoint.metadata, checkpoint.architecture, sha256)
        self.description = f"{os.fspath(model_path)} ({summary}) on {self.device}"

    def predict(self, items: list[tuple[str, bytes]], with_images: bool) -> list[Answer]:
        outcomes = self.pipeline([Upload(data, with_images) for _, data in items])
        return [
            outcome.detail
            if isinstance(outcome, InputRejected)
            else prediction_from(outcome.model_dump())
            for outcome in outcomes
        ]

    def read(self, items: list[tuple[str, bytes]]) -> list[Answer]:
        outcomes = self.pipeline([NumberUpload(data) for _, data in items])
        return [
            outcome.detail
            if isinstance(outcome, InputRejected)
            else reading_from(outcome.model_dump())
            for outcome in outcomes
        ]

    def close(self) -> None:
        pass
