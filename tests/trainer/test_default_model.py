"""The model `make train` wrote with the default recipe: at least 99.2% on the MNIST test set."""

import torch

from digitcore.checkpoint import load_model
from trainer.train import Split, evaluate


def test_default_model_scores_at_least_99_2_percent(default_model_path, mnist_test):
    model, checkpoint = load_model(default_model_path)
    result = evaluate(model, Split(*mnist_test), torch.device("cpu"))
    assert result["test_accuracy"] >= 0.992
    assert abs(checkpoint.metadata["test_accuracy"] - result["test_accuracy"]) < 1e-9
    assert checkpoint.metadata["architecture"] == "Digit"
