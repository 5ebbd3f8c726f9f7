"""The checkpoint format: round trip, the reference's own format, and clear errors."""

import os
import pickle

import pytest
import torch

from digitcore.atomic import atomic_write
from digitcore.checkpoint import (
    Checkpoint,
    CheckpointError,
    load_checkpoint,
    load_model,
    save_checkpoint,
)
from digitcore.model import Digit


def _weights_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(
        torch.equal(x, y)
        for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


def test_round_trip_keeps_weights_optimizer_scheduler_and_metadata(tmp_path):
    model = Digit()
    optimizer = torch.optim.Adam(model.parameters())
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=10)
    model(torch.randn(2, 1, 28, 28)).sum().backward()
    optimizer.step()
    scheduler.step()
    meta = {
        "architecture": "Digit",
        "test_accuracy": 0.99,
        "normalization": {"mean": 0.1, "std": 0.3},
    }
    path = tmp_path / "m.pth"
    save_checkpoint(
        path,
        Checkpoint(
            model.state_dict(),
            3,
            optimizer.state_dict(),
            scheduler_state_dict=scheduler.state_dict(),
            metadata=meta,
        ),
    )
    loaded, ckpt = load_model(path)
    assert _weights_equal(model, loaded)
    assert ckpt.epoch == 3
    assert ckpt.metadata["test_accuracy"] == 0.99
    assert ckpt.normalization == (0.1, 0.3)
    assert ckpt.optimizer_state_dict["state"]
    assert ckpt.scheduler_state_dict == scheduler.state_dict()  # plain data: weights_only loads it
    assert ckpt.scheduler_state_dict["last_epoch"] == 1
    assert not loaded.training
    assert [p.name for p in tmp_path.iterdir()] == ["m.pth"]  # no temp files left


def test_reference_three_key_checkpoint_loads(tmp_path):
    model, optimizer = Digit(), None
    optimizer = torch.optim.Adam(model.parameters())
    path = tmp_path / "mnist_cnn.pth"
    torch.save(
        {
            "epoch": 5,
            "model_state_dict": model.state_dict(),
            "optimizer_state_dict": optimizer.state_dict(),
        },
        path,
    )
    loaded, ckpt = load_model(path)
    assert _weights_equal(model, loaded)
    assert ckpt.architecture == "Digit"
    assert ckpt.epoch == 5
    assert ckpt.scheduler_state_dict is None


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "file is empty"),
        (b"this is not a checkpoint at all" * 10, "not a PyTorch checkpoint"),
        (b"PK\x03\x04" + b"\0" * 100, "corrupt or truncated"),
    ],
)
def test_garbage_files_give_one_clear_error(tmp_path, content, problem):
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=problem) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


def test_truncated_checkpoint_is_named(tmp_path):
    path = tmp_path / "m.pth"
    save_checkpoint(path, Checkpoint(Digit().state_dict()))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated") as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(CheckpointError, match="file not found") as info:
        load_checkpoint(tmp_path / "nope.pth")
    assert "nope.pth" in str(info.value)


class Payload:
    def __reduce__(self):
        return (os.system, ("echo should-never-run",))


def test_unsafe_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"model_state_dict": Payload()}, path, pickle_module=pickle)
    with pytest.raises(CheckpointError, match="not a safe PyTorch checkpoint"):
        load_checkpoint(path)


def test_foreign_checkpoints_are_refused(tmp_path):
    path = tmp_path / "other.pth"
    torch.save([1, 2, 3], path)
    with pytest.raises(CheckpointError, match="not a model checkpoint"):
        load_checkpoint(path)
    torch.save({"model_state_dict": {"conv1.weight": torch.zeros(3)}}, path)
    with pytest.raises(CheckpointError, match="weights do not fit architecture 'Digit'"):
        load_model(path)


def test_failed_atomic_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_write(target) as handle:
        handle.write(b"half")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]
