"""Confidence that means something: temperature scaling, calibration error, the digit threshold.

Temperature scaling (Guo et al. 2017) divides the logits by one number T fitted on held-out
data, which leaves every argmax unchanged and makes the softmax's maximum match how often
it is right. The "is it a digit" threshold is a quantile of that calibrated score on
held-out digits, so a known share of real digits passes it.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from scipy.optimize import minimize_scalar
from scipy.stats import mannwhitneyu

ECE_BINS = 15
TEMPERATURE_RANGE = (0.05, 20.0)


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The T > 0 minimizing the NLL of ``softmax(logits / T)`` on ``labels`` (a 1-D search)."""
    logits, labels = logits.double(), labels.long()

    def nll(log_t: float) -> float:
        return F.cross_entropy(logits / math.exp(log_t), labels).item()

    low, high = (math.log(bound) for bound in TEMPERATURE_RANGE)
    best = minimize_scalar(nll, bounds=(low, high), method="bounded", options={"xatol": 1e-4})
    return float(math.exp(best.x))


def calibrated(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Probabilities ``softmax(logits / T)``."""
    return torch.softmax(logits / temperature, dim=1)


def expected_calibration_error(
    probabilities: torch.Tensor, labels: torch.Tensor, bins: int = ECE_BINS
) -> float:
    """ECE: the mean |accuracy - confidence| over ``bins`` equal-width confidence bins,
    weighted by how many answers fall in each (Naeini et al. 2015; Guo et al. 2017)."""
    rows = reliability(probabilities, labels, bins)
    total = sum(row["count"] for row in rows)
    return sum(row["count"] / total * abs(row["accuracy"] - row["confidence"]) for row in rows)


def reliability(
    probabilities: torch.Tensor, labels: torch.Tensor, bins: int = ECE_BINS
) -> list[dict[str, float]]:
    """Per confidence bin: its range, how many answers, their mean confidence and accuracy."""
    confidence, predicted = probabilities.max(dim=1)
    correct = (predicted == labels).double()
    edges = torch.linspace(0, 1, bins + 1, dtype=torch.float64)
    rows = []
    for low, high in itertools.pairwise(edges):
        inside = (confidence.double() > low) & (confidence.double() <= high)
        count = int(inside.sum())
        rows.append(
            {
                "low": float(low),
                "high": float(high),
                "count": count,
                "confidence": float(confidence[inside].double().mean()) if count else 0.0,
                "accuracy": float(correct[inside].mean()) if count else 0.0,
            }
        )
    return rows


def digit_threshold(scores: torch.Tensor, keep: float) -> float:
    """The highest score threshold that at least ``keep`` of these digits' scores reach."""
    ordered = scores.double().sort().values
    index = min(math.floor((1 - keep) * len(ordered)), len(ordered) - 1)
    return float(ordered[index])


def auroc(positive: torch.Tensor, negative: torch.Tensor) -> float:
    """Area under the ROC curve of telling ``positive`` scores (higher) from ``negative`` ones:
    the probability that a random positive outscores a random negative (Mann-Whitney U)."""
    result = mannwhitneyu(positive.double().numpy(), negative.double().numpy())
    return float(result.statistic) / (len(positive) * len(negative))


def calibrate(
    validation_log_probs: torch.Tensor,
    validation_labels: torch.Tensor,
    test_log_probs: torch.Tensor,
    test_labels: torch.Tensor,
    keep: float,
) -> dict:
    """Fit T and the digit threshold on validation; measure both on test.

    Returns the checkpoint metadata entries ``temperature``, ``digit_threshold`` and
    ``calibration`` (calibration errors before and after, the share of digits kept).
    """
    temperature = fit_temperature(validation_log_probs, validation_labels)
    validation = calibrated(validation_log_probs, temperature)
    test = calibrated(test_log_probs, temperature)
    threshold = digit_threshold(validation.max(dim=1).values, keep)
    return {
        "temperature": temperature,
        "digit_threshold": threshold,
        "calibration": {
            "bins": ECE_BINS,
            "validation_ece": expected_calibration_error(validation, validation_labels),
            "test_ece": expected_calibration_error(test, test_labels),
            "test_ece_before": expected_calibration_error(test_log_probs.exp(), test_labels),
            "validation_digits_kept": float(
                (validation.max(dim=1).values >= threshold).double().mean()
            ),
            "test_digits_kept": float((test.max(dim=1).values >= threshold).double().mean()),
        },
    }
