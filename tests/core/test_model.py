"""The reference Digit architecture: names, shapes, parameter count, device choice."""

import pytest
import torch

from digitcore.model import (
    Digit,
    build_model,
    count_parameters,
    predict_probabilities,
    resolve_device,
)


def test_parameter_count_and_names_match_the_reference():
    model = Digit()
    assert count_parameters(model) == 1_007_590
    shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
    assert shapes == {
        "conv1.weight": (10, 1, 5, 5),
        "conv1.bias": (10,),
        "conv2.weight": (20, 10, 3, 3),
        "conv2.bias": (20,),
        "fc1.weight": (500, 2000),
        "fc1.bias": (500,),
        "fc2.weight": (10, 500),
        "fc2.bias": (10,),
    }


def test_forward_gives_log_probabilities_for_a_batch():
    model = Digit().eval()
    out = model(torch.randn(7, 1, 28, 28))
    assert out.shape == (7, 10)
    assert torch.allclose(out.exp().sum(1), torch.ones(7), atol=1e-5)
    assert (out <= 0).all()


def test_predict_probabilities_sums_to_one_on_cpu():
    probs = predict_probabilities(Digit().eval(), torch.randn(3, 1, 28, 28))
    assert probs.device.type == "cpu"
    assert torch.allclose(probs.sum(1), torch.ones(3), atol=1e-5)


def test_unknown_architecture_is_named():
    with pytest.raises(ValueError, match="unknown architecture 'Nope'"):
        build_model("Nope")


def test_auto_device_is_cpu_without_cuda_and_cuda_request_is_refused():
    if torch.cuda.is_available():
        assert resolve_device("auto").type == "cuda"
    else:
        assert resolve_device("auto").type == "cpu"
        with pytest.raises(ValueError, match="no CUDA device"):
            resolve_device("cuda")
    assert resolve_device("cpu").type == "cpu"


def test_eval_and_training_forward_agree():
    """One graph: no dropout, no batch norm, no branch on ``self.training``."""
    model, x = Digit(), torch.randn(16, 1, 28, 28)
    with torch.no_grad():
        trained_path = model.train()(x)
        served_path = model.eval()(x)
    assert torch.equal(trained_path, served_path)
