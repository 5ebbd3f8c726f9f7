"""The training loop: data as tensors, one epoch, evaluate, save; DDP under ``torchrun``.

Reads like pytorch/examples' mnist/main.py, with the reference recipe (Adam, NLL on
log_softmax, batch 128) improved by a one-cycle learning-rate schedule, batched geometric,
elastic and photometric augmentation, an exponential moving average of the weights (what is
saved and served), and outlier exposure (Hendrycks et al. 2019): each batch also carries
non-digits, whose softmax is pushed towards uniform. The number reader's runs of ink
(:mod:`trainer.number_pieces`) join both sides: each batch also carries runs holding one
digit, with their labels, and pieces and pairs of digits are among the non-digits. A
validation split held out from the training set (never the test set) makes every choice
after training: the softmax temperature and the "is it a digit" threshold
(:mod:`trainer.calibration`). Under ``torchrun`` it uses DistributedDataParallel (gloo on
CPU, nccl on GPU), a DistributedSampler, reduces metrics across ranks, and only rank 0
writes files.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

from digitcore import MNIST_MEAN, MNIST_STD
from digitcore.checkpoint import Checkpoint, library_versions, load_checkpoint, save_checkpoint
from digitcore.model import DEFAULT_ARCHITECTURE, build_model, count_parameters
from digitcore.preprocess import normalize
from trainer.augment import AugmentConfig, augment

log = logging.getLogger("trainer")


VALIDATION_SEED = 0  # the validation split is the same images whatever the run's seed
OUTLIER_SEED = 1  # so are the non-digits (drawn once, then cached)
PIECES_SEED = 1  # and the number reader's runs


@dataclass
class TrainConfig:
    epochs: int = 24
    batch_size: int = 128
    lr: float = 1e-3
    max_lr: float = 3e-3
    seed: int = 1
    validation_size: int = 5000  # held out from the training set for every choice
    ema_decay: float = 0.999
    outliers: int = 20000  # non-digits for outlier exposure (0: none)
    outlier_batch: int = 32  # non-digits in each training batch
    outlier_weight: float = 0.5  # lambda of the uniform-softmax loss on them
    number_pieces: int = 20000  # the number reader's digit runs, and as many pieces (0: none)
    run_batch: int = 24  # digit runs in each training batch (the pieces join the non-digits)
    digit_keep: float = 0.995  # share of validation digits the is-digit threshold keeps
    device: str = "auto"
    out: Path = Path("models/mnist_cnn.pth")
    data_root: Path = Path("data")
    resume: Path | None = None
    train_subset: int | None = None
    test_subset: int | None = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    progress: bool = True


@dataclass
class Split:
    images: torch.Tensor  # N x 28 x 28 uint8
    labels: torch.Tensor  # N int64

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, index: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        images = self.images[index].to(device, non_blocking=True).unsqueeze(1).float().div_(255)
        return images, self.labels[index].to(device, non_blocking=True)


@dataclass
class TrainResult:
    """What :func:`run` returns, on every process; rank 0 alone has written the checkpoint."""

    model: nn.Module  # the moving average of the weights: what was saved
    history: list[dict]  # one row per epoch, the resumed checkpoint's rows first
    data: TrainingData
    is_main: bool  # rank 0: the process that writes files and reports


@dataclass
class Distributed:
    rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def sum(self, *values: float) -> list[float]:
        """Sum scalars across ranks (identity when not distributed)."""
        tensor = torch.tensor(values, dtype=torch.float64)
        if self.enabled:
            dist.all_reduce(tensor)
        return tensor.tolist()


def setup_distributed(device: torch.device) -> Distributed:
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Distributed()
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Distributed(dist.get_rank(), dist.get_world_size())


def shard_indices(
    size: int, dist_info: Distributed, shuffle: bool, seed: int, epoch: int
) -> list[int]:
    """This rank's indices for one epoch (a DistributedSampler does the sharding)."""
    sampler = DistributedSampler(
        range(size),
        num_replicas=dist_info.world_size,
        rank=dist_info.rank,
        shuffle=shuffle,
        seed=seed,
        drop_last=False,
    )
    sampler.set_epoch(epoch)
    return list(sampler)


def train_one_epoch(
    model: nn.Module,
    ema: AveragedModel,
    data: TrainingData,
    optimizer: torch.optim.Optimizer,
    scheduler,
    config: TrainConfig,
    epoch: int,
    dist_info: Distributed,
    device: torch.device,
    generator: torch.Generator,
) -> dict[str, float]:
    model.train()
    order = torch.tensor(shard_indices(len(data.train), dist_info, True, config.seed, epoch))
    batches = order.split(config.batch_size)
    bar = tqdm(
        batches,
        desc=f"epoch {epoch}/{config.epochs}",
        unit="batch",
        disable=not (config.progress and dist_info.is_main),
        leave=True,
        dynamic_ncols=True,
    )
    loss_sum, seen, started = 0.0, 0, time.perf_counter()
    for step, index in enumerate(bar):
        images, labels = data.train.batch(index, device)
        if data.runs is not None:  # the number reader's runs of one digit, with their labels
            picked = torch.randint(len(data.runs), (config.run_batch,), generator=generator)
            run_images, run_labels = data.runs.batch(picked, device)
            images, labels = torch.cat([images, run_images]), torch.cat([labels, run_labels])
        count = len(labels)
        if data.outliers is not None:
            picked = torch.randint(len(data.outliers), (config.outlier_batch,), generator=generator)
            images = torch.cat([images, data.outliers.batch(picked, device)[0]])
        log_probs = model(normalize(augment(images, config.augment, generator)))
        loss = F.nll_loss(log_probs[:count], labels)
        if data.outliers is not None:  # cross-entropy to the uniform distribution
            loss = loss - config.outlier_weight * log_probs[count:].mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        ema.update_parameters(model)
        loss_sum += loss.item() * count
        seen += count
        if step % 20 == 0 or step == len(batches) - 1:
            rate = seen * dist_info.world_size / (time.perf_counter() - started)
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}", img_s=f"{rate:,.0f}")
    total_loss, total_seen = dist_info.sum(loss_sum, seen)
    elapsed = time.perf_counter() - started
    return {
        "train_loss": total_loss / total_seen,
        "epoch_seconds": elapsed,
        "train_images_per_second": total_seen / elapsed,
    }


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    split: Split,
    device: torch.device,
    dist_info: Distributed | None = None,
    batch_size: int = 1000,
    prefix: str = "test",
) -> dict[str, float]:
    """Summed NLL / N and accuracy on ``split``, sharded over ranks and reduced."""
    dist_info = dist_info or Distributed()
    model.eval()
    index = torch.tensor(shard_indices(len(split), dist_info, False, 0, 0))
    loss_sum, correct = 0.0, 0
    for chunk in index.split(batch_size):
        images, labels = split.batch(chunk, device)
        log_probs = model(normalize(images))
        loss_sum += F.nll_loss(log_probs, labels, reduction="sum").item()
        correct += (log_probs.argmax(1) == labels).sum().item()
    loss_sum, correct, count = dist_info.sum(loss_sum, correct, len(index))
    return {f"{prefix}_loss": loss_sum / count, f"{prefix}_accuracy": correct / count}


@torch.inference_mode()
def predict_split(model: nn.Module, split: Split, device: torch.device) -> torch.Tensor:
    """Log-probabilities for every image of ``split`` (N x 10, on CPU)."""
    model.eval()
    out = []
    for chunk in torch.arange(len(split)).split(1000):
        images, _ = split.batch(chunk, device)
        out.append(model(normalize(images)).cpu())
    return torch.cat(out)


def _subset(split: Split, size: int | None, seed: int) -> Split:
    if size is None or size >= len(split):
        return split
    index = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))[:size]
    return Split(split.images[index], split.labels[index])


def ema_average(decay: float):
    """``AveragedModel``'s averaging step for an exponential moving average whose decay
    warms up as ``(1 + n) / (10 + n)`` over the first updates, so short runs average too."""

    def average(averaged: torch.Tensor, current: torch.Tensor, updates: torch.Tensor):
        rate = min(decay, (1 + float(updates)) / (10 + float(updates)))
        return averaged + (current - averaged) * (1 - rate)

    return average


@dataclass
class TrainingData:
    train: Split
    validation: Split  # held out from MNIST's training set
    test: Split
    outliers: Split | None  # non-digits for outlier exposure (labels unused)
    runs: Split | None = None  # the number reader's runs of one digit


def validation_split(total: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of MNIST's training set: the ``size`` held out for validation (the same
    whatever the run's seed), and the rest, for training."""
    order = torch.randperm(total, generator=torch.Generator().manual_seed(VALIDATION_SEED))
    return order[:size], order[size:]


def load_splits(config: TrainConfig) -> TrainingData:
    """MNIST's training set split into train and a fixed validation part, the test set, and
    the non-digits (drawn once, then cached beside the data)."""
    from trainer.data import load_tensors
    from trainer.number_pieces import load_pieces
    from trainer.outliers import load_outliers

    images, labels = load_tensors(config.data_root, train=True)
    held, kept = validation_split(len(labels), config.validation_size)
    train = _subset(Split(images[kept], labels[kept]), config.train_subset, config.seed)
    validation = Split(images[held], labels[held])
    test = _subset(
        Split(*load_tensors(config.data_root, train=False)), config.test_subset, config.seed + 1
    )
    outliers = None
    if config.outliers > 0:  # the same cached set whatever the subset
        drawn = load_outliers(config.data_root, config.outliers, OUTLIER_SEED, images[kept]).images
        outliers = Split(drawn, torch.zeros(len(drawn), dtype=torch.long))
    runs = None
    if config.number_pieces > 0:  # the same cached set whatever the subset
        pieces = load_pieces(
            config.data_root, config.number_pieces, PIECES_SEED, images[kept], labels[kept]
        )
        runs = Split(pieces.digits, pieces.labels)
        drawn = pieces.pieces if outliers is None else torch.cat([outliers.images, pieces.pieces])
        outliers = Split(drawn, torch.zeros(len(drawn), dtype=torch.long))
    return TrainingData(train, validation, test, outliers, runs)


def run(config: TrainConfig, device: torch.device) -> TrainResult:
    """Train per ``config`` (resuming from ``config.resume`` if set), saving after every epoch.

    What is evaluated and saved is the moving average of the weights (``ema``).
    """
    dist_info = setup_distributed(device)
    if dist_info.enabled and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    torch.manual_seed(config.seed)
    data = load_splits(config)
    model = build_model(DEFAULT_ARCHITECTURE).to(device)
    ema = AveragedModel(model, avg_fn=ema_average(config.ema_decay))
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    steps_per_epoch = -(-len(data.train) // (config.batch_size * dist_info.world_size))
    history: list[dict] = []
    if config.resume is None:
        scheduler = one_cycle(optimizer, config.max_lr, config.epochs * steps_per_epoch)
    else:
        history, scheduler = resume_from(
            config.resume, model, ema, optimizer, config, steps_per_epoch, not dist_info.is_main
        )
    start_epoch = len(history) + 1
    ddp_model = DistributedDataParallel(model) if dist_info.enabled else model
    generator = torch.Generator().manual_seed(config.seed * 1000 + dist_info.rank)
    if dist_info.is_main:
        log.info(
            "training %s (%s parameters) on %s: %d train / %d validation / %d test images, "
            "%d non-digits, %d number runs, %d process(es)",
            DEFAULT_ARCHITECTURE,
            f"{count_parameters(model):,}",
            device,
            len(data.train),
            len(data.validation),
            len(data.test),
            0 if data.outliers is None else len(data.outliers),
            0 if data.runs is None else len(data.runs),
            dist_info.world_size,
        )
    for epoch in range(start_epoch, config.epochs + 1):
        generator.manual_seed(config.seed * 1000 + dist_info.rank * 100 + epoch)
        row = {"epoch": epoch, "lr": scheduler.get_last_lr()[0]}
        row |= train_one_epoch(
            ddp_model, ema, data, optimizer, scheduler, config, epoch, dist_info, device, generator
        )
        row |= evaluate(ema.module, data.validation, device, dist_info, prefix="validation")
        row |= evaluate(ema.module, data.test, device, dist_info)
        history.append(row)
        if dist_info.is_main:
            log.info(
                "epoch %d: train loss %.4f, validation accuracy %.2f%%, test accuracy %.2f%% "
                "(%.1f s)",
                epoch,
                row["train_loss"],
                100 * row["validation_accuracy"],
                100 * row["test_accuracy"],
                row["epoch_seconds"],
            )
            save_checkpoint(
                config.out,
                make_checkpoint(model, ema, optimizer, scheduler, config, history, dist_info),
            )
    if dist_info.enabled:
        dist.barrier()
        dist.destroy_process_group()
    return TrainResult(ema.module, history, data, dist_info.is_main)


def resume_from(
    path: Path,
    model: nn.Module,
    ema: AveragedModel,
    optimizer: torch.optim.Optimizer,
    config: TrainConfig,
    steps_per_epoch: int,
    quiet: bool = False,
) -> tuple[list[dict], torch.optim.lr_scheduler.OneCycleLR]:
    """Load weights, optimizer and schedule from ``path``: its per-epoch history, the scheduler.

    The saved schedule is continued with ``load_state_dict`` when it has exactly the steps
    left that this run takes (same epochs, batch size, subset and process count), so a
    resumed run follows the learning rates of an uninterrupted one. A checkpoint without
    ``scheduler_state_dict`` (the reference's, or one written before the trainer saved it)
    or whose schedule does not fit (``--epochs`` raised, say) gets a fresh one-cycle schedule
    over the remaining epochs; the log says which.
    """
    previous = load_checkpoint(path)
    model.load_state_dict(previous.training_state_dict or previous.model_state_dict)
    ema.module.load_state_dict(previous.model_state_dict)
    history = list(previous.metadata.get("history", []))
    history = history or [{"epoch": e} for e in range(1, previous.epoch + 1)]
    done = len(history)
    # A checkpoint of ours holds the average and the trained weights: the average goes on.
    # Others (the reference's) hold one set of weights: the average starts from it.
    ema.n_averaged.fill_(done * steps_per_epoch if previous.training_state_dict else 0)
    remaining = max(config.epochs - done, 0) * steps_per_epoch
    saved = previous.scheduler_state_dict
    saved_left = None if saved is None else saved["total_steps"] - saved["last_epoch"]
    if saved is not None and previous.optimizer_state_dict and saved_left == remaining:
        # The optimizer's param groups hold the schedule's lr, betas and bounds: load them
        # after building the scheduler, whose constructor resets them to its first step.
        scheduler = one_cycle(optimizer, config.max_lr, saved["total_steps"])
        optimizer.load_state_dict(previous.optimizer_state_dict)
        scheduler.load_state_dict(saved)
        if not quiet:
            log.info(
                "resuming from %s after epoch %d: continuing its learning-rate schedule "
                "at step %d of %d",
                path,
                done,
                saved["last_epoch"],
                saved["total_steps"],
            )
        return history, scheduler
    if previous.optimizer_state_dict:
        optimizer.load_state_dict(previous.optimizer_state_dict)
    # Built after loading the optimizer, so the new schedule sets its own lr and betas.
    # With no epochs left it is never stepped; one step keeps OneCycleLR's arguments valid.
    scheduler = one_cycle(optimizer, config.max_lr, max(remaining, 1))
    if not quiet:
        why = (
            "the checkpoint has no scheduler state"
            if saved is None
            else f"its schedule has {saved_left} steps left, this run takes {remaining}"
        )
        log.info(
            "resuming from %s after epoch %d: new one-cycle learning-rate schedule over "
            "the remaining %d epoch(s) (%s)",
            path,
            done,
            max(config.epochs - done, 0),
            why,
        )
    return history, scheduler


def one_cycle(
    optimizer: torch.optim.Optimizer, max_lr: float, total_steps: int
) -> torch.optim.lr_scheduler.OneCycleLR:
    """A fresh one-cycle schedule of ``total_steps`` optimizer steps peaking at ``max_lr``."""
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, total_steps=total_steps)


def make_checkpoint(
    model: nn.Module,
    ema: AveragedModel,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    config: TrainConfig,
    history: list[dict],
    dist_info: Distributed,
) -> Checkpoint:
    last = history[-1]
    return Checkpoint(
        epoch=last["epoch"],
        model_state_dict=ema.module.state_dict(),
        training_state_dict=model.state_dict(),
        optimizer_state_dict=optimizer.state_dict(),
        scheduler_state_dict=scheduler.state_dict(),
        metadata={
            "architecture": DEFAULT_ARCHITECTURE,
            "normalization": {"mean": MNIST_MEAN, "std": MNIST_STD},
            "test_accuracy": last["test_accuracy"],
            "test_loss": last["test_loss"],
            "validation_accuracy": last.get("validation_accuracy"),
            "epochs": last["epoch"],
            "seed": config.seed,
            "batch_size": config.batch_size,
            "world_size": dist_info.world_size,
            "ema_decay": config.ema_decay,
            "outliers": config.outliers,
            "number_pieces": config.number_pieces,
            "run_batch": config.run_batch,
            "training_seconds": sum(row.get("epoch_seconds", 0.0) for row in history),
            "train_images": config.train_subset or 60000 - config.validation_size,
            "validation_images": config.validation_size,
            "versions": library_versions(),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "history": history,
        },
    )
