"""Training for real on MNIST subsets: accuracy, checkpoint contents, resume, report, DDP."""

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from PIL import Image

from digitcore.checkpoint import load_checkpoint, load_model
from digitcore.model import resolve_device
from trainer.__main__ import main
from trainer.augment import AugmentConfig, augment
from trainer.train import Split, TrainConfig, evaluate, load_splits, run

ROOT = Path(__file__).resolve().parents[2]


def test_short_run_reaches_90_percent_on_1000_test_images(mnist_root, tmp_path):
    out = tmp_path / "m.pth"
    config = TrainConfig(
        epochs=1, train_subset=4000, test_subset=1000, out=out, data_root=mnist_root, progress=False
    )
    _, history, test = run(config, resolve_device("cpu"))
    assert len(test) == 1000
    assert history[-1]["test_accuracy"] >= 0.90
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


def test_cli_trains_resumes_and_writes_the_report(mnist_root, tmp_path):
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
    assert main([*args, "--epochs", "2", "--resume", str(out)]) == 0
    checkpoint = load_checkpoint(out)
    assert checkpoint.epoch == 2
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


def test_augmentation_keeps_shape_and_range_and_off_is_identity(mnist_root):
    train, _ = load_splits(TrainConfig(data_root=mnist_root, train_subset=64, test_subset=10))
    images, _ = train.batch(torch.arange(64), torch.device("cpu"))
    out = augment(images, AugmentConfig(), torch.Generator().manual_seed(0))
    assert out.shape == images.shape
    assert out.min() >= 0 and out.max() <= 1
    assert not torch.equal(out, images)
    assert torch.equal(augment(images, AugmentConfig.off()), images)


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
    assert checkpoint.metadata["test_accuracy"] > 0.5  # 8 steps per rank: learning, not converged
    assert result.stderr.count("epoch 1: train loss") == 1  # rank 0 alone reports and writes
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".pth") == ["ddp.pth"]
