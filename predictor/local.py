"""The local engine: the checkpoint loaded once, here, and the shared pipeline run on each chunk.

Each file goes through ``digitcore.preprocess`` (decode, MNIST-style 28x28, normalize), the
good ones of a chunk go through the model in one forward pass.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from digitcore.checkpoint import CheckpointError, file_sha256, load_model
from digitcore.errors import ImageInputError
from digitcore.mnistify import mnistify
from digitcore.model import predict_probabilities, resolve_device
from digitcore.preprocess import decode_image, to_tensor
from predictor.engines import Answer, EngineError, Prediction, describe_model


class LocalEngine:
    """The checkpoint loaded once, here; each chunk is preprocessed and run as one batch."""

    def __init__(self, model_path: str | os.PathLike[str], device: str = "auto") -> None:
        try:
            self.device = resolve_device(device)
        except (ValueError, RuntimeError) as exc:
            raise EngineError(str(exc)) from None
        try:
            self.model, checkpoint = load_model(model_path, self.device)
            sha256 = file_sha256(model_path)
        except (CheckpointError, OSError) as exc:
            raise EngineError(str(exc)) from None
        summary = describe_model(checkpoint.metadata, checkpoint.architecture, sha256)
        self.description = f"{os.fspath(model_path)} ({summary}) on {self.device}"

    def predict(self, items: list[tuple[str, bytes]], with_images: bool) -> list[Answer]:
        answers: list[Answer | None] = []
        tensors: list[torch.Tensor] = []
        views: list[np.ndarray] = []
        for _, data in items:
            try:
                mnist = mnistify(decode_image(data))
                tensor = to_tensor(mnist)
            except ImageInputError as exc:
                answers.append(str(exc))
                continue
            except Exception as exc:  # a pipeline bug must not stop the other files
                answers.append(f"internal error: {type(exc).__name__}: {exc}")
                continue
            answers.append(None)
            tensors.append(tensor)
            views.append(mnist)
        probabilities = []
        if tensors:
            probabilities = predict_probabilities(self.model, torch.stack(tensors)).tolist()
        good = iter(zip(probabilities, views, strict=True))
        return [
            answer if answer is not None else self._prediction(*next(good), with_images)
            for answer in answers
        ]

    @staticmethod
    def _prediction(probs: list[float], view: np.ndarray, with_image: bool) -> Prediction:
        digit = max(range(len(probs)), key=probs.__getitem__)
        return Prediction(digit, probs[digit], probs, view if with_image else None)

    def close(self) -> None:
        pass
