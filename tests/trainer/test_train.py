"""Training for real on MNIST subsets: accuracy, checkpoint contents, resume, report, DDP."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

import trainer.train
from digitcore.checkpoint import load_checkpoint, load_model
from digitcore.model import resolve_device
from trainer.__main__ import main
from trainer.augment import AugmentConfig, augment
from trainer.train import Split, TrainConfig, TrainResult, evaluate, load_splits, run

ROOT = Path(__file__).resolve().parents[2]


def test_one_short_epoch_of_the_default_recipe_learns_digits(mnist_root, tmp_path):
    # 32 steps of heavily augmented digits and non-digits: far from the recipe's end, but
    # far above chance (10%)
    out = tmp_path / "m.pth"
    config = TrainConfig(
        epochs=1, train_subset=4000, test_subset=1000, out=out, data_root=mnist_root, progress=False
    )
    result = run(config, resolve_device("cpu"))
    assert isinstance(result, TrainResult) and result.is_main
    history, test = result.history, result.data.test
    assert len(test) == 1000
    assert history[-1]["test_accuracy"] >= 0.75
    reloaded, checkpoint = load_model(out)
    assert (
        evaluate(reloaded, test, torch.device("cpu"))["test_accuracy"]
        == history[-1]["test_accuracy"]
    )
    meta = checkpoint.metadata
    for key in (
        "architecture",
        "normalization",
        "test_accuracy",
        "test_loss",
        "epochs",
        "seed",
        "training_seconds",
        "versions",
        "created",
    ):
        assert key in meta, key
    assert meta["versions"]["torch"].startswith("2.14.1")
    assert checkpoint.optimizer_state_dict["state"]
    schedule = checkpoint.scheduler_state_dict
    assert schedule["total_steps"] == schedule["last_epoch"] == 32  # 4000 / 128, all taken


def test_cli_trains_resumes_and_writes_the_report(mnist_root, tmp_path, caplog):
    out = tmp_path / "cli.pth"
    args = [
        "--data",
        str(mnist_root),
        "--train-subset",
        "2000",
        "--test-subset",
        "500",
        "--out",
        str(out),
        "--no-progress",
    ]
    assert main([*args, "--epochs", "1"]) == 0
    assert load_checkpoint(out).epoch == 1
    with caplog.at_level(logging.INFO, logger="trainer"):
        assert main([*args, "--epochs", "2", "--resume", str(out)]) == 0
    # The first run's one-cycle schedule ended with its one epoch: a new one for the second.
    assert "new one-cycle learning-rate schedule over the remaining 1 epoch(s)" in caplog.text
    checkpoint = load_checkpoint(out)
    assert checkpoint.epoch == 2
    assert checkpoint.scheduler_state_dict["total_steps"] == 16  # 2000 / 128: one epoch
    assert [row["epoch"] for row in checkpoint.metadata["history"]] == [1, 2]
    metrics = json.loads((tmp_path / "cli.metrics.json").read_text())
    assert len(metrics["history"]) == 2
    matrix = metrics["confusion_matrix"]
    assert sum(map(sum, matrix)) == 500
    for name in ("curves", "confusion", "errors"):
        with Image.open(tmp_path / f"cli.{name}.png") as image:
            assert image.format == "PNG" and image.size[0] > 200


def test_training_is_reproducible_from_the_seed(mnist_root, tmp_path):
    def train(name):
        config = TrainConfig(
            epochs=1,
            train_subset=1000,
            test_subset=200,
            out=tmp_path / name,
            data_root=mnist_root,
            progress=False,
        )
        run(config, resolve_device("cpu"))
        return load_checkpoint(tmp_path / name).model_state_dict

    first, second = train("a.pth"), train("b.pth")
    assert all(torch.equal(first[k], second[k]) for k in first)


class Interrupted(Exception):
    """Stands for the process being killed right after a checkpoint was written."""


def _small_two_epoch_config(mnist_root, out, **changes) -> TrainConfig:
    return TrainConfig(
        epochs=2,
        train_subset=640,  # 5 steps an epoch
        test_subset=100,
        out=out,
        data_root=mnist_root,
        progress=False,
        **changes,
    )


def _interrupted_after_first_epoch(mnist_root, out, monkeypatch) -> None:
    save = trainer.train.save_checkpoint

    def save_then_die(path, checkpoint):
        save(path, checkpoint)
        raise Interrupted

    with monkeypatch.context() as patch:
        patch.setattr(trainer.train, "save_checkpoint", save_then_die)
        with pytest.raises(Interrupted):
            run(_small_two_epoch_config(mnist_root, out), resolve_device("cpu"))


def test_resumed_run_continues_the_schedule_of_an_uninterrupted_one(
    mnist_root, tmp_path, monkeypatch, caplog
):
    cpu = resolve_device("cpu")
    straight = run(_small_two_epoch_config(mnist_root, tmp_path / "straight.pth"), cpu)
    expected = load_checkpoint(tmp_path / "straight.pth")

    out = tmp_path / "resumed.pth"
    _interrupted_after_first_epoch(mnist_root, out, monkeypatch)
    first = load_checkpoint(out)
    assert first.epoch == 1
    assert first.scheduler_state_dict["last_epoch"] == 5  # one epoch of steps taken ...
    assert first.scheduler_state_dict["total_steps"] == 10  # ... of the two planned

    with caplog.at_level(logging.INFO, logger="trainer"):
        resumed = run(_small_two_epoch_config(mnist_root, out, resume=out), cpu)
    assert "continuing its learning-rate schedule at step 5 of 10" in caplog.text
    final = load_checkpoint(out)
    assert final.scheduler_state_dict == expected.scheduler_state_dict
    assert final.scheduler_state_dict["last_epoch"] == final.scheduler_state_dict["_step_count"] - 1
    assert [row["lr"] for row in resumed.history] == [row["lr"] for row in straight.history]
    lrs = [group["lr"] for group in final.optimizer_state_dict["param_groups"]]
    assert lrs == [group["lr"] for group in expected.optimizer_state_dict["param_groups"]]
    assert all(
        torch.equal(final.model_state_dict[k], expected.model_state_dict[k])
        for k in expected.model_state_dict
    )


def test_checkpoint_without_scheduler_state_resumes_on_a_fresh_schedule(
    mnist_root, tmp_path, monkeypatch, caplog
):
    interrupted = tmp_path / "interrupted.pth"
    _interrupted_after_first_epoch(mnist_root, interrupted, monkeypatch)
    first = load_checkpoint(interrupted)
    reference = tmp_path / "reference.pth"  # the reference report's three keys, nothing else
    torch.save(
        {
            "epoch": first.epoch,
            "model_state_dict": first.model_state_dict,
            "optimizer_state_dict": first.optimizer_state_dict,
        },
        reference,
    )
    assert load_checkpoint(reference).scheduler_state_dict is None
    out = tmp_path / "continued.pth"
    args = ["--data", str(mnist_root), "--train-subset", "640", "--test-subset", "100"]
    args += ["--epochs", "2", "--resume", str(reference), "--out", str(out), "--no-progress"]
    with caplog.at_level(logging.INFO, logger="trainer"):
        assert main(args) == 0
    assert (
        f"resuming from {reference} after epoch 1: new one-cycle learning-rate schedule over "
        "the remaining 1 epoch(s) (the checkpoint has no scheduler state)" in caplog.text
    )
    final = load_checkpoint(out)
    assert final.epoch == 2
    schedule = final.scheduler_state_dict
    assert schedule["total_steps"] == schedule["last_epoch"] == 5
    assert [row["epoch"] for row in final.metadata["history"]] == [1, 2]
    assert (tmp_path / "continued.curves.png").exists()


def test_augmentation_keeps_shape_and_range_and_off_is_identity(mnist_root):
    data = load_splits(TrainConfig(data_root=mnist_root, train_subset=64, test_subset=10))
    images, _ = data.train.batch(torch.arange(64), torch.device("cpu"))
    out = augment(images, AugmentConfig(), torch.Generator().manual_seed(0))
    assert out.shape == images.shape
    assert out.min() >= 0 and out.max() <= 1
    assert not torch.equal(out, images)
    assert torch.equal(augment(images, AugmentConfig.off()), images)


def test_the_number_readers_runs_join_the_digits_and_the_non_digits(mnist_root):
    runs = load_splits(TrainConfig(data_root=mnist_root, train_subset=64, test_subset=10))
    plain = load_splits(
        TrainConfig(data_root=mnist_root, train_subset=64, test_subset=10, number_pieces=0)
    )
    assert plain.runs is None and torch.equal(runs.train.images, plain.train.images)
    assert len(runs.runs) == 20000 and set(runs.runs.labels.tolist()) == set(range(10))
    assert len(runs.outliers) == len(plain.outliers) + 20000
    assert torch.equal(runs.validation.images, plain.validation.images)  # never touched


def test_split_batches_are_scaled_to_unit_range():
    split = Split(torch.full((4, 28, 28), 255, dtype=torch.uint8), torch.arange(4))
    images, labels = split.batch(torch.tensor([0, 2]), torch.device("cpu"))
    assert images.shape == (2, 1, 28, 28) and images.max() == 1.0
    assert labels.tolist() == [0, 2]


def test_torchrun_two_processes_writes_one_valid_checkpoint(mnist_root, tmp_path):
    out = tmp_path / "ddp.pth"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "trainer",
            "--epochs",
            "1",
            "--train-subset",
            "2000",
            "--test-subset",
            "500",
            "--data",
            str(mnist_root),
            "--out",
            str(out),
            "--no-progress",
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = load_checkpoint(out)
    assert checkpoint.metadata["world_size"] == 2
    assert checkpoint.metadata["test_accuracy"] > 0.3  # 8 steps per rank: learning, not converged
    assert result.stderr.count("epoch 1: train loss") == 1  # rank 0 alone reports and writes
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".pth") == ["ddp.pth"]
