"""``python -m trainer`` / ``mnist-train``: fetch MNIST if needed, train, calibrate, save, report.

Runs as one process or under ``torchrun --nproc_per_node=N -m trainer`` (DDP).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from digitcore.checkpoint import load_checkpoint, save_checkpoint
from digitcore.model import resolve_device
from trainer.augment import AugmentConfig
from trainer.data import DataError, fetch
from trainer.quality import assess
from trainer.report import write_report
from trainer.train import TrainConfig, run

log = logging.getLogger("trainer")


def parse_args(argv: list[str] | None) -> TrainConfig:
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(
        prog="mnist-train", description="Train the Digit CNN on MNIST."
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=defaults.epochs,
        help=f"total epochs (default {defaults.epochs})",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=defaults.batch_size,
        help=f"per-process batch size (default {defaults.batch_size})",
    )
    parser.add_argument(
        "--lr",
        type=float,
        default=defaults.lr,
        help=f"Adam's starting learning rate (default {defaults.lr})",
    )
    parser.add_argument(
        "--max-lr",
        type=float,
        default=defaults.max_lr,
        help=f"peak of the one-cycle schedule (default {defaults.max_lr})",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="random seed (default 1)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda")
    parser.add_argument(
        "--out", type=Path, default=defaults.out, help=f"checkpoint path (default {defaults.out})"
    )
    parser.add_argument(
        "--data", type=Path, default=defaults.data_root, help="MNIST root (default data)"
    )
    parser.add_argument("--resume", type=Path, help="continue from this checkpoint (optimizer too)")
    parser.add_argument("--train-subset", type=int, help="train on this many images (quick runs)")
    parser.add_argument("--test-subset", type=int, help="test on this many images (quick runs)")
    parser.add_argument(
        "--outliers",
        type=int,
        default=defaults.outliers,
        help=f"non-digits drawn for outlier exposure, 0 for none (default {defaults.outliers})",
    )
    parser.add_argument(
        "--number-pieces",
        type=int,
        default=defaults.number_pieces,
        help="the number reader's runs of one digit, and as many pieces and pairs of digits, "
        f"0 for none (default {defaults.number_pieces})",
    )
    parser.add_argument("--no-augment", action="store_true", help="train on the images as they are")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    return TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        max_lr=args.max_lr,
        seed=args.seed,
        device=args.device,
        out=args.out,
        data_root=args.data,
        resume=args.resume,
        train_subset=args.train_subset,
        test_subset=args.test_subset,
        outliers=args.outliers,
        number_pieces=args.number_pieces,
        augment=AugmentConfig.off() if args.no_augment else AugmentConfig(),
        progress=not args.no_progress,
    )


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    config = parse_args(argv)
    try:
        device = resolve_device(config.device)
        fetch(config.data_root)
    except (ValueError, DataError) as exc:
        log.error("%s", exc)
        return 1
    result = run(config, device)
    if not result.is_main:  # rank 0 alone calibrates and writes the report
        return 0
    entries, quality = assess(result.model, result.data, config, device)
    checkpoint = load_checkpoint(config.out)
    checkpoint.metadata |= entries
    save_checkpoint(config.out, checkpoint)
    test = result.data.test
    paths = write_report(
        config.out,
        result.history,
        checkpoint.metadata,
        test.images,
        test.labels,
        quality["test_probabilities"],
        quality,
    )
    log.info(
        "saved %s: test accuracy %.2f%%, temperature %.3f, calibration error %.2f%%, "
        "digit threshold %.3f (non-digits flagged %.1f%%), corrupted test %.1f%%",
        config.out,
        100 * result.history[-1]["test_accuracy"],
        entries["temperature"],
        100 * entries["calibration"]["test_ece"],
        entries["digit_threshold"],
        100 * entries["nondigits"]["flagged"],
        100 * entries["corruptions"]["mean_accuracy"],
    )
    log.info("report: %s", ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
