"""What a person reads after training: metrics JSON, curves, confusion matrix, worst errors,
and whether the confidence means something: a reliability diagram, the score of digits
against non-digits, accuracy per corruption.

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
        "reliability": Path(f"{stem}.reliability.png"),
        "scores": Path(f"{stem}.scores.png"),
        "corruptions": Path(f"{stem}.corruptions.png"),
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


def plot_reliability(rows: list[dict], ece: float, path: Path) -> None:
    """Accuracy against confidence per bin (the diagonal is perfect calibration)."""
    figure, (ax, count_ax) = plt.subplots(
        2, 1, figsize=(5.5, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    used = [row for row in rows if row["count"]]
    centres = [(row["low"] + row["high"]) / 2 for row in rows]
    width = rows[0]["high"] - rows[0]["low"]
    ax.bar(
        [(r["low"] + r["high"]) / 2 for r in used],
        [r["accuracy"] for r in used],
        width=width,
        edgecolor="black",
        label="accuracy",
    )
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    ax.plot([r["confidence"] for r in used], [r["accuracy"] for r in used], "o", color="C3")
    ax.set(ylabel="accuracy", title=f"Reliability on MNIST test (ECE {100 * ece:.2f} %)")
    ax.legend(loc="upper left")
    count_ax.bar(centres, [row["count"] for row in rows], width=width, color="C1")
    count_ax.set(xlabel="calibrated confidence", ylabel="answers", yscale="log")
    _save_figure(figure, path)


def plot_scores(
    digit_scores: torch.Tensor, other_scores: torch.Tensor, threshold: float, path: Path
) -> None:
    """Histograms of the calibrated confidence of digits and of non-digits, and the threshold."""
    figure, ax = plt.subplots(figsize=(7, 4))
    bins = np.linspace(0, 1, 41)
    ax.hist(digit_scores.numpy(), bins=bins, alpha=0.6, label="MNIST test digits", density=True)
    ax.hist(other_scores.numpy(), bins=bins, alpha=0.6, label="non-digits (unseen)", density=True)
    ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.2f}")
    ax.set(xlabel="calibrated confidence", ylabel="density", yscale="log", title="Is it a digit?")
    ax.legend()
    _save_figure(figure, path)


def plot_corruptions(accuracy: dict[str, float], path: Path) -> None:
    """Accuracy of the raw model on each corruption of MNIST test."""
    figure, ax = plt.subplots(figsize=(8, 4))
    names = list(accuracy)
    ax.barh(names, [100 * accuracy[name] for name in names], color="C2")
    ax.invert_yaxis()
    mean = 100 * float(np.mean(list(accuracy.values())))
    ax.set(xlabel="accuracy (%)", xlim=(0, 100), title=f"Corrupted MNIST test (mean {mean:.1f} %)")
    ax.grid(axis="x", alpha=0.3)
    _save_figure(figure, path)


def write_report(
    checkpoint: Path,
    history: list[dict],
    metadata: dict,
    images: torch.Tensor,
    labels: torch.Tensor,
    probs: torch.Tensor,
    quality: dict | None = None,
) -> dict[str, Path]:
    """Everything beside ``checkpoint``; ``quality`` (from :func:`trainer.quality.assess`)
    adds the calibration, non-digit and corruption figures."""
    paths = report_paths(checkpoint)
    matrix = confusion_matrix(labels, probs.argmax(1))
    summary = {k: v for k, v in metadata.items() if k != "history"}
    document = {
        "checkpoint": str(checkpoint),
        "summary": summary,
        "history": history,
        "confusion_matrix": matrix.tolist(),
    }
    if quality is not None:
        document["quality"] = {
            key: value for key, value in quality.items() if not isinstance(value, torch.Tensor)
        }
    with atomic_write(paths["metrics"], "w") as handle:
        json.dump(document, handle, indent=2)
    plot_curves(history, paths["curves"])
    plot_confusion(matrix, paths["confusion"])
    plot_confident_errors(images, labels, probs, paths["errors"])
    if quality is None:
        return {k: v for k, v in paths.items() if k in ("metrics", "curves", "confusion", "errors")}
    plot_reliability(
        quality["reliability"], metadata["calibration"]["test_ece"], paths["reliability"]
    )
    plot_scores(
        quality["digit_scores"],
        quality["nondigit_scores"],
        metadata["digit_threshold"],
        paths["scores"],
    )
    plot_corruptions(quality["corruption_accuracy"], paths["corruptions"])
    return paths
