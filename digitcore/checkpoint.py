"""The checkpoint format: the reference's three keys plus metadata, saved atomically.

A checkpoint is a dict with ``epoch``, ``model_state_dict`` and ``optimizer_state_dict`` (what
the reference report wrote), the trainer's ``scheduler_state_dict`` (the learning-rate
schedule, so that a resumed run continues it; absent from the reference's checkpoints), the
trainer's ``training_state_dict`` (the weights being trained, when the served
``model_state_dict`` is their moving average) and an optional ``metadata`` dict
(architecture, normalization, test accuracy and loss, epochs, seed, training time, library
versions, creation time, and the calibration: ``temperature`` and ``digit_threshold``).
Loading always uses ``weights_only=True`` and turns every failure into one
:class:`CheckpointError` that names the file and what is wrong.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from digitcore import MNIST_MEAN, MNIST_STD
from digitcore.atomic import atomic_write
from digitcore.model import DEFAULT_ARCHITECTURE, build_model

REQUIRED_KEYS = ("model_state_dict",)


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; the message names the file and the problem."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        super().__init__(f"checkpoint {os.fspath(path)}: {problem}")
        self.path = os.fspath(path)
        self.problem = problem


@dataclass
class Checkpoint:
    model_state_dict: dict[str, torch.Tensor]
    epoch: int = 0
    optimizer_state_dict: dict[str, Any] | None = None
    scheduler_state_dict: dict[str, Any] | None = None
    training_state_dict: dict[str, torch.Tensor] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def architecture(self) -> str:
        return self.metadata.get("architecture", DEFAULT_ARCHITECTURE)

    @property
    def normalization(self) -> tuple[float, float]:
        norm = self.metadata.get("normalization", {})
        return float(norm.get("mean", MNIST_MEAN)), float(norm.get("std", MNIST_STD))

    @property
    def temperature(self) -> float:
        """T of the calibrated softmax(logits / T); 1 for a checkpoint without one."""
        return float(self.metadata.get("temperature") or 1.0)

    @property
    def digit_threshold(self) -> float | None:
        """The calibrated confidence below which an answer is "not a digit"; None: no such
        threshold, every answer is a digit."""
        value = self.metadata.get("digit_threshold")
        return None if value is None else float(value)


def library_versions() -> dict[str, str]:
    import torchvision

    return {"torch": str(torch.__version__), "torchvision": str(torchvision.__version__)}


def save_checkpoint(path: str | os.PathLike[str], checkpoint: Checkpoint) -> None:
    """Write ``checkpoint`` to ``path`` atomically (temp file, fsync, rename)."""
    payload: dict[str, Any] = {
        "epoch": checkpoint.epoch,
        "model_state_dict": checkpoint.model_state_dict,
        "optimizer_state_dict": checkpoint.optimizer_state_dict,
        "scheduler_state_dict": checkpoint.scheduler_state_dict,
        "training_state_dict": checkpoint.training_state_dict,
        "metadata": checkpoint.metadata,
    }
    with atomic_write(path) as handle:
        torch.save(payload, handle)


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a checkpoint (ours or the reference's three-key form) with ``weights_only=True``."""
    file = Path(path)
    if not file.exists():
        raise CheckpointError(file, "file not found (train a model first: make train)")
    if not file.is_file():
        raise CheckpointError(file, "not a regular file")
    if file.stat().st_size == 0:
        raise CheckpointError(file, "file is empty")
    with open(file, "rb") as handle:
        zip_magic = handle.read(4) == b"PK\x03\x04"
    if not zip_magic:
        raise CheckpointError(file, "not a PyTorch checkpoint (expected a torch.save zip archive)")
    if not zipfile.is_zipfile(file):
        raise CheckpointError(file, "corrupt or truncated file (the zip archive is incomplete)")
    try:
        raw = torch.load(file, map_location="cpu", weights_only=True)
    except (zipfile.BadZipFile, EOFError, RuntimeError) as exc:
        raise CheckpointError(file, f"corrupt or truncated file ({_first_line(exc)})") from None
    except pickle.UnpicklingError as exc:
        raise CheckpointError(file, f"not a safe PyTorch checkpoint ({_first_line(exc)})") from None
    except Exception as exc:
        raise CheckpointError(
            file, f"unreadable ({type(exc).__name__}: {_first_line(exc)})"
        ) from None
    if not isinstance(raw, dict) or any(key not in raw for key in REQUIRED_KEYS):
        raise CheckpointError(file, "not a model checkpoint (no 'model_state_dict' entry)")
    return Checkpoint(
        model_state_dict=raw["model_state_dict"],
        epoch=int(raw.get("epoch") or 0),
        optimizer_state_dict=raw.get("optimizer_state_dict"),
        scheduler_state_dict=raw.get("scheduler_state_dict"),
        training_state_dict=raw.get("training_state_dict"),
        metadata=dict(raw.get("metadata") or {}),
    )


def model_from_checkpoint(path: str | os.PathLike[str], checkpoint: Checkpoint) -> nn.Module:
    """Build the checkpoint's architecture and load its weights; mismatches name the file."""
    try:
        model = build_model(checkpoint.architecture)
    except ValueError as exc:
        raise CheckpointError(path, str(exc)) from None
    try:
        model.load_state_dict(checkpoint.model_state_dict)
    except RuntimeError as exc:
        raise CheckpointError(
            path, f"weights do not fit architecture {checkpoint.architecture!r}: {_first_line(exc)}"
        ) from None
    return model


def load_model(
    path: str | os.PathLike[str], device: torch.device | str = "cpu"
) -> tuple[nn.Module, Checkpoint]:
    """Load ``path`` into an eval-mode model on ``device``; returns the model and its checkpoint."""
    checkpoint = load_checkpoint(path)
    model = model_from_checkpoint(path, checkpoint).to(device).eval()
    return model, checkpoint


def file_sha256(path: str | os.PathLike[str]) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
