"""Training throughput: images/s of the input pipeline and of the training step, separately.

    python -m bench.train_speed [--batches 100] [--batch-size 128] [--device auto]

The input pipeline is what :func:`trainer.train.train_one_epoch` does before the model sees
a batch: index the uint8 tensors, scale, augment in batch (affine grid + stroke width) and
normalize. For comparison it also times the per-sample PIL route that torchvision's
``RandomAffine`` on a ``Dataset`` would take. The training step is forward, NLL loss,
backward and an Adam step on a ready batch.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms

from digitcore.model import build_model, resolve_device
from digitcore.preprocess import normalize
from trainer.augment import AugmentConfig, augment
from trainer.data import fetch, load_tensors
from trainer.train import Split


def images_per_second(step, batches: int, batch_size: int) -> float:
    step(0)  # warm-up
    started = time.perf_counter()
    for index in range(batches):
        step(index)
    return batches * batch_size / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data", type=Path, default=Path("data"))
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    fetch(args.data)
    split = Split(*load_tensors(args.data, train=True))
    generator = torch.Generator().manual_seed(0)
    order = torch.randperm(len(split), generator=generator)
    size = args.batch_size

    def batch(index: int) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = split.batch(order[index * size : (index + 1) * size], device)
        return normalize(augment(images, AugmentConfig(), generator)), labels

    pil_affine = transforms.Compose(
        [
            transforms.RandomAffine(12, translate=(0.07, 0.07), scale=(0.88, 1.12)),
            transforms.ToTensor(),
            transforms.Normalize((0.1307,), (0.3081,)),
        ]
    )

    def per_sample_pil(index: int) -> None:
        rows = order[index * size : (index + 1) * size]
        torch.stack([pil_affine(Image.fromarray(split.images[i].numpy())) for i in rows.tolist()])

    model = build_model().to(device).train()
    optimizer = torch.optim.Adam(model.parameters())
    ready = batch(0)

    def train_step(_: int) -> None:
        optimizer.zero_grad(set_to_none=True)
        F.nll_loss(model(ready[0]), ready[1]).backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    print(
        f"device {device}, batch {size}, {args.batches} batches, torch threads "
        f"{torch.get_num_threads()}"
    )
    rates = {
        "input pipeline (tensors, batched augment)": images_per_second(batch, args.batches, size),
        "input pipeline (per-sample PIL affine)": images_per_second(
            per_sample_pil, max(5, args.batches // 10), size
        ),
        "training step (forward, backward, Adam)": images_per_second(
            train_step, args.batches, size
        ),
    }
    for name, rate in rates.items():
        print(f"{name:44s} {rate:>10,.0f} img/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
