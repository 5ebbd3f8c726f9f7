"""The reference ``Digit`` CNN, architectures by name, device choice and class probabilities.

Parameter names (``conv1``, ``conv2``, ``fc1``, ``fc2``) match the reference report so that
checkpoints written by either code load into the other.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Digit(nn.Module):
    """conv(1->10, 5) + maxpool + relu, conv(10->20, 3) + relu, fc 2000->500->10, log_softmax."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=3)
        self.fc1 = nn.Linear(20 * 10 * 10, 500)
        self.fc2 = nn.Linear(500, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        x = F.relu(F.max_pool2d(x, 2))
        x = F.relu(self.conv2(x))
        x = F.relu(self.fc1(x.flatten(1)))
        return F.log_softmax(self.fc2(x), dim=1)


ARCHITECTURES: dict[str, type[nn.Module]] = {"Digit": Digit}
DEFAULT_ARCHITECTURE = "Digit"


def build_model(architecture: str = DEFAULT_ARCHITECTURE) -> nn.Module:
    """A fresh model of the named architecture."""
    try:
        return ARCHITECTURES[architecture]()
    except KeyError:
        known = ", ".join(sorted(ARCHITECTURES))
        raise ValueError(f"unknown architecture {architecture!r} (known: {known})") from None


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def resolve_device(requested: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else CPU; ``cpu``/``cuda[:N]`` are taken as asked."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but no CUDA device is available")
    return device


@torch.inference_mode()
def predict_probabilities(
    model: nn.Module, batch: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """Calibrated softmax probabilities ``softmax(logits / T)`` (N x 10, on CPU) for a
    normalized N x 1 x 28 x 28 batch; T = 1 gives the model's own softmax."""
    device = next(model.parameters()).device
    log_probs = model(batch.to(device, non_blocking=True))
    if temperature == 1.0:
        return log_probs.exp().float().cpu()
    return torch.softmax(log_probs / temperature, dim=1).float().cpu()
