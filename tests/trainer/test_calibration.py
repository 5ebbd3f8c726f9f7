"""Temperature scaling, calibration error, the digit threshold and AUROC on data whose answer
is known."""

import itertools

import pytest
import torch

from trainer.calibration import (
    auroc,
    calibrate,
    calibrated,
    digit_threshold,
    expected_calibration_error,
    fit_temperature,
    reliability,
)


def _labels_drawn_from(logits: torch.Tensor, temperature: float, seed: int = 0) -> torch.Tensor:
    """Labels sampled from softmax(logits / T): the calibrated model is the one with T."""
    probabilities = torch.softmax(logits / temperature, dim=1)
    return torch.multinomial(probabilities, 1, generator=torch.Generator().manual_seed(seed))[:, 0]


@pytest.mark.parametrize("true_temperature", [0.5, 1.0, 2.5])
def test_fitted_temperature_recovers_the_one_the_labels_were_drawn_with(true_temperature):
    logits = torch.randn(20000, 10, generator=torch.Generator().manual_seed(1)) * 3
    labels = _labels_drawn_from(logits, true_temperature)
    fitted = fit_temperature(logits, labels)
    assert fitted == pytest.approx(true_temperature, rel=0.06)
    # and it is what makes the probabilities calibrated
    assert expected_calibration_error(calibrated(logits, fitted), labels) < 0.015
    assert expected_calibration_error(calibrated(logits, 1.0), labels) > (
        0.03 if true_temperature != 1.0 else 0.0
    )


def test_calibration_error_is_the_weighted_gap_per_bin():
    # 100 answers at confidence 0.95, 90 right (gap 0.05); 100 at 0.55, 55 right (gap 0)
    probabilities = torch.zeros(200, 10)
    probabilities[:100, 0], probabilities[:100, 1] = 0.95, 0.05
    probabilities[100:, 0], probabilities[100:, 1] = 0.55, 0.45
    labels = torch.zeros(200, dtype=torch.long)
    labels[90:100] = 1
    labels[155:] = 1
    assert expected_calibration_error(probabilities, labels) == pytest.approx(0.5 * 0.05)
    rows = reliability(probabilities, labels)
    assert len(rows) == 15 and sum(row["count"] for row in rows) == 200
    top = next(row for row in rows if row["low"] < 0.95 <= row["high"])
    assert top["count"] == 100 and top["accuracy"] == pytest.approx(0.9)


def test_digit_threshold_keeps_the_asked_share():
    scores = torch.rand(10000, generator=torch.Generator().manual_seed(3))
    threshold = digit_threshold(scores, keep=0.99)
    kept = (scores >= threshold).double().mean().item()
    assert 0.99 <= kept <= 0.9905


def test_auroc_is_the_share_of_pairs_ranked_right():
    positive = torch.tensor([0.9, 0.8, 0.4, 0.7])
    negative = torch.tensor([0.1, 0.5, 0.8])
    pairs = list(itertools.product(positive.tolist(), negative.tolist()))
    expected = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs) / len(pairs)
    assert auroc(positive, negative) == pytest.approx(expected)
    assert auroc(torch.ones(5), torch.zeros(5)) == 1.0


def test_calibrate_fits_on_validation_and_reports_on_test():
    generator = torch.Generator().manual_seed(4)
    logits = torch.randn(8000, 10, generator=generator) * 4
    labels = _labels_drawn_from(logits, 2.0, seed=5)
    log_probs = torch.log_softmax(logits, dim=1)
    entries = calibrate(log_probs[:4000], labels[:4000], log_probs[4000:], labels[4000:], 0.99)
    assert entries["temperature"] == pytest.approx(2.0, rel=0.1)
    numbers = entries["calibration"]
    assert numbers["test_ece"] < numbers["test_ece_before"]
    assert numbers["validation_digits_kept"] >= 0.99
    assert 0.97 <= numbers["test_digits_kept"] <= 1.0
