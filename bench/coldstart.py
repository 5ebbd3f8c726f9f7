"""Cold start and memory: process start to ``/readyz`` 200, and resident memory per process.

    python -m bench.coldstart [--model models/mnist_cnn.pth] [--workers 1 2] [--runs 3]

For each WORKERS value, starts ``python -m service`` (as the README documents) ``--runs`` times
on a free loopback port, polls ``/readyz`` every 10 ms and records the time from starting the
process to the first 200. Then it measures resident memory (psutil) of the server
process and of each worker process: once ready, and again after 2,000 predictions of a 28x28
PNG (a warmed-up worker). Also reports where the import time goes (``python -X importtime``).
Results go to ``bench/results/coldstart.json`` and a Markdown table.
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

import httpx
import psutil

from bench.inputs import digit_inputs
from bench.load import SERVICE_ENV
from digitcore.atomic import atomic_write
from testkit.servers import ROOT, free_port, launched, server_env


def rss_mib(pid: int) -> float:
    """Resident memory of process ``pid`` (psutil), in MiB."""
    return psutil.Process(pid).memory_info().rss / (1 << 20)


def workers_of(pid: int, count: int) -> list[int]:
    """The uvicorn worker processes (spawned children; not multiprocessing's resource tracker)."""
    if count == 1:
        return [pid]
    children = psutil.Process(pid).children()
    return sorted(c.pid for c in children if "spawn_main" in " ".join(c.cmdline()))


def one_start(model: Path, workers: int, png: bytes, load: bool, log: Path) -> dict:
    port = free_port()
    settings = {**SERVICE_ENV, "MODEL_PATH": str(model), "WORKERS": str(workers)}
    env = server_env(**settings, PORT=str(port))
    argv = [sys.executable, "-m", "service"]
    started = time.perf_counter()
    with launched(argv, env, port, log, timeout=180, poll=0.01) as server:
        ready_s = time.perf_counter() - started
        time.sleep(1 if workers > 1 else 0)  # let every worker finish starting
        pid = server.process.pid
        result: dict = {"ready_s": ready_s, "server_rss_mib": rss_mib(pid)}
        result["worker_rss_mib"] = [rss_mib(p) for p in workers_of(pid, workers)]
        if load:
            with httpx.Client(base_url=server.url, timeout=5) as client:
                for _ in range(2000):
                    response = client.post("/predict", files={"file": ("d.png", png)})
                    assert response.status_code == 200
            result["worker_rss_after_2000_mib"] = [rss_mib(p) for p in workers_of(pid, workers)]
        return result


def import_times(top: int = 8) -> list[dict]:
    """The slowest top-level imports of the service (cumulative), from ``-X importtime``."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import service.app"],
        cwd=ROOT,
        env=server_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in result.stderr.splitlines():
        fields = line.removeprefix("import time:").split("|")
        if len(fields) != 3 or not fields[1].strip().isdigit():
            continue
        name = fields[2].removeprefix(" ")
        depth = (len(name) - len(name.lstrip())) // 2  # importtime indents two spaces a level
        rows.append((name.strip(), depth, int(fields[1]) / 1000))
    total = next(ms for name, _, ms in rows if name == "service.app")
    nested = sorted((r for r in rows if 1 <= r[1] <= 2), key=lambda r: -r[2])
    slowest = [{"module": name, "cumulative_ms": ms} for name, _, ms in nested[:top]]
    return [{"module": "service.app (total)", "cumulative_ms": total}, *slowest]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Cold start and memory of the service.")
    parser.add_argument("--model", type=Path, default=Path("models/mnist_cnn.pth"))
    parser.add_argument("--data", type=Path, default=Path("data"), help="MNIST root")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench/results/coldstart.json"))
    args = parser.parse_args(argv)
    model = args.model.resolve()
    if not model.is_file():
        raise SystemExit(f"no model at {args.model}: train one first (make model)")
    png = digit_inputs(args.data)["png"][1]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-coldstart-") as tmp:
        for workers in args.workers:
            log = Path(tmp) / f"server-{workers}.log"
            runs = [one_start(model, workers, png, i == 0, log) for i in range(args.runs)]
            first = runs[0]
            row = {
                "workers": workers,
                "ready_s_median": statistics.median(r["ready_s"] for r in runs),
                "ready_s_runs": [r["ready_s"] for r in runs],
                "server_rss_mib": first["server_rss_mib"],
                "worker_rss_mib": first["worker_rss_mib"],
                "worker_rss_after_2000_mib": first.get("worker_rss_after_2000_mib"),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    imports = import_times()
    report = {"command": "python -m bench.coldstart", "cpus": os.cpu_count(), "starts": rows}
    report["imports"] = imports
    with atomic_write(args.out, "w") as handle:
        json.dump(report, handle, indent=2)
    print()
    print("| WORKERS | start to /readyz 200 (median) | RSS per worker, ready | after 2,000 "
          "predictions | supervisor RSS |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|")
    for r in rows:
        ready = ", ".join(f"{m:.0f}" for m in r["worker_rss_mib"])
        after = ", ".join(f"{m:.0f}" for m in r["worker_rss_after_2000_mib"] or [])
        supervisor = f"{r['server_rss_mib']:.0f} MiB" if r["workers"] > 1 else "-"
        print(
            f"| {r['workers']} | {r['ready_s_median']:.2f} s | {ready} MiB | {after} MiB | "
            f"{supervisor} |"
        )
    print()
    print("| import (cumulative) | ms |")
    print("|---|---:|")
    for r in imports:
        print(f"| {r['module']} | {r['cumulative_ms']:.0f} |")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
