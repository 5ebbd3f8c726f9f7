"""The default recipe over several seeds: mean and standard deviation of what it gives.

    python -m bench.seeds [--seeds 1 2 3] [--parallel 3] [--keep DIR]
                          [--out bench/results/seeds.json]

Each seed is one ``python -m trainer --seed N`` (the default recipe, nothing changed but the
seed) in its own process, writing into a temporary folder (``--keep``: into DIR, where the
checkpoints, their reports and logs stay); ``--parallel`` runs that many at
once, each with one torch thread (``OMP_NUM_THREADS=1``), so they do not fight over cores.
From each checkpoint's metadata it reads MNIST test and validation accuracy (the checkpoint
is the moving average after the last epoch: chosen without the test set), the calibration
error, the unseen non-digits flagged and their AUROC, and the mean corrupted accuracy; it
also sends the held-out non-digits of :mod:`testkit.nondigits` (other fonts and shapes)
through each checkpoint's serving pipeline, in process, and counts those answered
``is_digit: false`` or refused. It prints one row per seed and the mean and standard
deviation (n - 1) of each.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from digitcore.atomic import atomic_write
from digitcore.checkpoint import load_checkpoint
from service.pipeline import DigitModel, InputRejected, Upload
from testkit.nondigits import NonDigit, nondigit_uploads

COLUMNS = {
    "test_accuracy": lambda m: m["test_accuracy"],
    "validation_accuracy": lambda m: m["validation_accuracy"],
    "test_ece": lambda m: m["calibration"]["test_ece"],
    "nondigits_flagged": lambda m: m["nondigits"]["flagged"],
    "nondigits_auroc": lambda m: m["nondigits"]["auroc"],
    "corrupted_accuracy": lambda m: m["corruptions"]["mean_accuracy"],
    "corrupted_ece": lambda m: m["corruptions"]["mean_ece"],
    "held_out_flagged": lambda m: m["held_out_flagged"],
    "training_seconds": lambda m: m["training_seconds"],
}


def held_out_flagged(path: Path, others: list[NonDigit]) -> float:
    """The share of ``others`` that the checkpoint at ``path``, served, does not take for a
    digit (``is_digit: false``, or refused as blank)."""
    model = DigitModel.load(path, torch.device("cpu"))
    answers = model([Upload(other.data) for other in others])
    return sum(isinstance(a, InputRejected) or not a.is_digit for a in answers) / len(answers)


def train(seeds: list[int], parallel: int, folder: Path, data: Path) -> dict[int, dict]:
    """Run the trainer once per seed, ``parallel`` at a time; each seed's metadata, and the
    held-out non-digits it flags."""
    others = nondigit_uploads()
    env = {**os.environ, "OMP_NUM_THREADS": "1"} if parallel > 1 else dict(os.environ)
    pending, running, results = list(seeds), {}, {}
    while pending or running:
        while pending and len(running) < parallel:
            seed = pending.pop(0)
            out = folder / f"seed{seed}.pth"
            command = [sys.executable, "-m", "trainer", "--seed", str(seed), "--out", str(out)]
            command += ["--data", str(data), "--no-progress"]
            log = open(folder / f"seed{seed}.log", "w")  # noqa: SIM115 (closed when it ends)
            running[seed] = (subprocess.Popen(command, stdout=log, stderr=log, env=env), log, out)
        time.sleep(1)
        for seed, (process, log, out) in list(running.items()):
            if process.poll() is None:
                continue
            log.close()
            del running[seed]
            if process.returncode != 0:
                tail = (folder / f"seed{seed}.log").read_text()[-2000:]
                raise RuntimeError(f"seed {seed} failed ({process.returncode}):\n{tail}")
            flagged = held_out_flagged(out, others)
            results[seed] = load_checkpoint(out).metadata | {"held_out_flagged": flagged}
            print(f"seed {seed}: {100 * results[seed]['test_accuracy']:.2f}%", flush=True)
    return results


def summary(rows: dict[int, dict]) -> dict[str, dict[str, float]]:
    values = {name: [read(meta) for meta in rows.values()] for name, read in COLUMNS.items()}
    return {
        name: {
            "mean": statistics.fmean(column),
            "std": statistics.stdev(column) if len(column) > 1 else 0.0,
        }
        for name, column in values.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--parallel", type=int, default=1, help="trainings at once")
    parser.add_argument("--data", type=Path, default=Path("data"), help="MNIST root")
    parser.add_argument("--keep", type=Path, help="folder for the checkpoints (default: none)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/seeds.json"))
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-seeds-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        rows = train(args.seeds, args.parallel, folder.resolve(), args.data.resolve())
    stats = summary(rows)
    percent = [name for name in COLUMNS if name != "training_seconds"]
    print("\n| seed | " + " | ".join(COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for seed, meta in sorted(rows.items()):
        cells = [f"{100 * COLUMNS[n](meta):.2f}" for n in percent]
        print(f"| {seed} | " + " | ".join(cells) + f" | {meta['training_seconds']:.0f} |")
    cells = [f"{100 * stats[n]['mean']:.2f} ± {100 * stats[n]['std']:.2f}" for n in percent]
    seconds = stats["training_seconds"]
    print(
        "| mean ± std | " + " | ".join(cells) + f" | {seconds['mean']:.0f} ± {seconds['std']:.0f} |"
    )
    report = {
        "command": "python -m bench.seeds " + " ".join(argv if argv is not None else sys.argv[1:]),
        "parallel": args.parallel,
        "wall_seconds": time.perf_counter() - started,
        "seeds": {
            str(seed): {n: read(meta) for n, read in COLUMNS.items()} for seed, meta in rows.items()
        },
        "summary": stats,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(args.out, "w") as handle:
        json.dump(report, handle, indent=2)
    print(f"\nwritten {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
