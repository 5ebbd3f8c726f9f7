"""After training, on data the weights never saw: calibrate, then measure what it is worth.

Fits the temperature and the "is it a digit" threshold on the validation split
(:func:`trainer.calibration.calibrate`), then measures on MNIST test, on non-digits drawn
with a seed training never used, and on the corruption suite; the figures go into the
checkpoint's metadata (what ``GET /model`` shows) and into the training report.
"""

from __future__ import annotations

import torch
from torch import nn

from trainer.calibration import (
    auroc,
    calibrate,
    calibrated,
    expected_calibration_error,
    reliability,
)
from trainer.corruptions import CORRUPTIONS, corruption_probabilities
from trainer.outliers import load_outliers
from trainer.train import OUTLIER_SEED, Split, TrainConfig, TrainingData, predict_split

UNSEEN_SEED_OFFSET = 10_000  # non-digits drawn with OUTLIER_SEED + this were never trained on
UNSEEN_COUNT = 1000
CORRUPTED_IMAGES = 2000  # at most this many test images are corrupted for the report


def assess(
    model: nn.Module, data: TrainingData, config: TrainConfig, device: torch.device
) -> tuple[dict, dict]:
    """``(metadata entries, report figures)`` for the trained ``model``."""
    validation = predict_split(model, data.validation, device)
    test = predict_split(model, data.test, device)
    entries = calibrate(
        validation, data.validation.labels, test, data.test.labels, config.digit_keep
    )
    temperature, threshold = entries["temperature"], entries["digit_threshold"]
    test_probs = calibrated(test, temperature)
    digit_scores = test_probs.max(dim=1).values

    unseen_seed = OUTLIER_SEED + UNSEEN_SEED_OFFSET  # drawings only: no rows of digits
    unseen = load_outliers(config.data_root, UNSEEN_COUNT, unseen_seed).images
    unseen_split = Split(unseen, torch.zeros(len(unseen), dtype=torch.long))
    other_scores = calibrated(predict_split(model, unseen_split, device), temperature).max(1).values
    entries["nondigits"] = {
        "images": len(unseen),
        "flagged": float((other_scores < threshold).double().mean()),
        "auroc": auroc(digit_scores, other_scores),
    }

    images = data.test.images[:CORRUPTED_IMAGES]
    labels = data.test.labels[:CORRUPTED_IMAGES]
    accuracy, ece = {}, {}
    for name in CORRUPTIONS:
        probs = corruption_probabilities(model, images, device, name)
        probs = calibrated(probs.clamp_min(1e-30).log(), temperature)
        accuracy[name] = float((probs.argmax(1) == labels).double().mean())
        ece[name] = expected_calibration_error(probs, labels)
    entries["corruptions"] = {
        "images": len(labels),
        "mean_accuracy": sum(accuracy.values()) / len(accuracy),
        "mean_ece": sum(ece.values()) / len(ece),
    }
    quality = {
        "reliability": reliability(test_probs, data.test.labels),
        "digit_scores": digit_scores,
        "nondigit_scores": other_scores,
        "corruption_accuracy": accuracy,
        "corruption_ece": ece,
        "test_probabilities": test_probs,
    }
    return entries, quality
