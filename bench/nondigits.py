"""Is it a digit? The service's ``is_digit`` on non-digits it never saw and on real digits.

    python -m bench.nondigits [--model models/mnist_cnn.pth] [--digits 2000]
                              [--out bench/results/nondigits.json]

Everything goes through a real ``python -m service`` on a loopback port, as uploads:
the held-out non-digits of :mod:`testkit.nondigits` (letters, words, symbols, shapes and
smileys in fonts and forms training never used), the first ``--digits`` MNIST test digits as
PNG files, and every realistic set of :mod:`testkit.realistic`. It reports the share of
non-digits flagged (``is_digit: false``, or refused as blank), the share of digits kept, per
set, and the AUROC of the confidence as a digit-or-not score (a refusal scores 0).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from digitcore.atomic import atomic_write
from testkit.batches import batch_answers
from testkit.nondigits import nondigit_uploads
from testkit.realistic import BELOW_GOAL, SETS, generate
from testkit.servers import serve
from trainer.calibration import auroc
from trainer.data import fetch, load_tensors

SERVICE_SETTINGS = {"log_level": "warning", "access_log": "false"}


@dataclass(frozen=True)
class Upload:
    data: bytes
    name: str
    label: int | None = None


def mnist_uploads(count: int, data_root: Path) -> list[Upload]:
    fetch(data_root)
    images, labels = load_tensors(data_root, train=False)
    uploads = []
    for index in range(count):
        buffer = io.BytesIO()
        Image.fromarray(images[index].numpy(), mode="L").save(buffer, format="PNG")
        uploads.append(Upload(buffer.getvalue(), f"mnist-{index}", int(labels[index])))
    return uploads


def scores(answers: list[dict | None]) -> torch.Tensor:
    return torch.tensor([0.0 if a is None else a["confidence"] for a in answers])


def kept(answers: list[dict | None]) -> float:
    return sum(a is not None and a["is_digit"] for a in answers) / len(answers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/mnist_cnn.pth"))
    parser.add_argument("--data", type=Path, default=Path("data"), help="MNIST root")
    parser.add_argument("--digits", type=int, default=2000, help="MNIST test digits sent")
    parser.add_argument("--out", type=Path, default=Path("bench/results/nondigits.json"))
    args = parser.parse_args(argv)
    others = nondigit_uploads()
    digits = mnist_uploads(args.digits, args.data)
    images, labels = (t.numpy() for t in load_tensors(args.data, train=False))
    with tempfile.TemporaryDirectory(prefix="bench-nondigits-") as tmp:
        settings = {**SERVICE_SETTINGS, "model_path": str(args.model.resolve())}
        with serve(Path(tmp), **settings) as server:
            other_answers = batch_answers(server.url, others)
            digit_answers = batch_answers(server.url, digits)
            sets = {}
            for name in [*SETS, *BELOW_GOAL]:
                samples = list(generate(name, images, labels))
                answers = batch_answers(server.url, samples)
                right = sum(
                    a is not None and a["digit"] == s.label
                    for a, s in zip(answers, samples, strict=True)
                )
                sets[name] = {"images": len(samples), "kept": kept(answers), "right": right}
    flagged = 1 - kept(other_answers)
    area = auroc(scores(digit_answers), scores(other_answers))
    by_kind: dict[str, list] = {}
    for sample, answer in zip(others, other_answers, strict=True):
        by_kind.setdefault(sample.kind, []).append(answer)
    report = {
        "command": "python -m bench.nondigits " + " ".join(argv or sys.argv[1:]),
        "model": str(args.model),
        "nondigits": {"images": len(others), "flagged": flagged, "auroc_vs_mnist": area},
        "nondigits_flagged_by_kind": {k: 1 - kept(v) for k, v in by_kind.items()},
        "mnist_test": {"images": len(digits), "kept": kept(digit_answers)},
        "realistic_sets": sets,
    }
    print(
        f"held-out non-digits: {len(others)}, flagged {100 * flagged:.1f}%, AUROC {100 * area:.2f}%"
    )
    for kind, share in report["nondigits_flagged_by_kind"].items():
        print(f"  {kind:10s} flagged {100 * share:.1f}%")
    print(f"MNIST test digits: {len(digits)}, kept as digits {100 * kept(digit_answers):.2f}%")
    print("| set | images | right % | kept as digits % |\n|---|---:|---:|---:|")
    for name, row in sets.items():
        print(
            f"| {name} | {row['images']} | {100 * row['right'] / row['images']:.1f} | "
            f"{100 * row['kept']:.1f} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(args.out, "w") as handle:
        json.dump(report, handle, indent=2)
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
