"""What a person reads after training: metrics JSON, curves, confusion matrix, worst errors.

Everything is written beside the checkpoint, atomically, from rank 0 only.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from digitcore.atomic import atomic_write


def report_paths(checkpoint: Path) -> dict[str, Path]:
    stem = checkpoint.with_suffix("")
    return {
        "metrics": Path(f"{stem}.metrics.json"),
        "curves": Path(f"{stem}.curves.png"),
        "confusion": Path(f"{stem}.confusion.png"),
        "errors": Path(f"{stem}.errors.png"),
    }


def confusion_matrix(
    labels: torch.Tensor, predicted: torch.Tensor, classes: int = 10
) -> np.ndarray:
    """Rows = true digit, columns = predicted digit."""
    flat = labels.long() * classes + predicted.long()
    return torch.bincount(flat, minlength=classes * classes).reshape(classes, classes).numpy()


def _save_figure(figure, path: Path) -> None:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    with atomic_write(path) as handle:
        handle.write(buffer.getvalue())


def plot_curves(history: list[dict], path: Path) -> None:
    """Loss and accuracy per epoch, for the rows that have them.

    A resumed reference checkpoint's earlier epochs are known only by number: left out.
    """
    history = [row for row in history if "train_loss" in row and "test_loss" in row]
    epochs = [row["epoch"] for row in history]
    figure, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 4))
    loss_ax.plot(epochs, [r["train_loss"] for r in history], marker="o", label="train")
    loss_ax.plot(epochs, [r["test_loss"] for r in history], marker="o", label="test")
    loss_ax.set(xlabel="epoch", ylabel="NLL loss", title="Loss")
    loss_ax.legend()
    acc_ax.plot(epochs, [100 * r["test_accuracy"] for r in history], marker="o", color="C2")
    acc_ax.set(xlabel="epoch", ylabel="accuracy (%)", title="Test accuracy")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
    _save_figure(figure, path)


def plot_confusion(matrix: np.ndarray, path: Path) -> None:
    figure, ax = plt.subplots(figsize=(6.5, 5.5))
    shown = np.log1p(matrix)
    image = ax.imshow(shown, cmap="Blues")
    for (row, col), value in np.ndenumerate(matrix):
        color = "white" if shown[row, col] > shown.max() / 2 else "black"
        ax.text(col, row, str(value), ha="center", va="center", fontsize=7, color=color)
    ax.set(
        xticks=range(10),
        yticks=range(10),
        xlabel="predicted",
        ylabel="true",
        title=f"Test confusion matrix ({matrix.trace()}/{matrix.sum()} right)",
    )
    figure.colorbar(image, ax=ax, label="log(1 + count)")
    _save_figure(figure, path)


def plot_confident_errors(
    images: torch.Tensor, labels: torch.Tensor, probs: torch.Tensor, path: Path, count: int = 24
) -> None:
    """A grid of the wrong predictions the model was most sure of."""
    confidence, predicted = probs.max(1)
    wrong = (predicted != labels).nonzero().flatten()
    worst = wrong[confidence[wrong].argsort(descending=True)][:count]
    columns = 8
    rows = max(1, -(-len(worst) // columns))
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 1.4, rows * 1.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, index in zip(axes.flat, worst.tolist(), strict=False):
        ax.imshow(images[index].numpy(), cmap="gray", vmin=0, vmax=255)
        ax.set_title(f"{labels[index]}→{predicted[index]} {confidence[index]:.0%}", fontsize=8)
    figure.suptitle("Most confidently wrong test digits (true→predicted confidence)")
    _save_figure(figure, path)


def write_report(
    checkpoint: Path,
    history: list[dict],
    metadata: dict,
    images: torch.Tensor,
    labels: torch.Tensor,
    probs: torch.Tensor,
) -> dict[str, Path]:
    paths = report_paths(checkpoint)
    matrix = confusion_matrix(labels, probs.argmax(1))
    summary = {k: v for k, v in metadata.items() if k != "history"}
    document = {
        "checkpoint": str(checkpoint),
        "summary": summary,
        "history": history,
        "confusion_matrix": matrix.tolist(),
    }
    with atomic_write(paths["metrics"], "w") as handle:
        json.dump(document, handle, indent=2)
    plot_curves(history, paths["curves"])
    plot_confusion(matrix, paths["confusion"])
    plot_confident_errors(images, labels, probs, paths["errors"])
    return paths
