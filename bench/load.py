"""Load benchmark: ``POST /predict`` against the same server's ``/healthz`` floor and a naive app.

    python -m bench.load [--model models/mnist_cnn.pth] [--duration 10] [--workers N]
                         [--repeat 1] [--variant NAME:KEY=VALUE[,KEY=VALUE...]]
                         [--out bench/results/load.json]

Starts ``python -m service`` the way the README documents it (settings in environment
variables; access log off; ``WORKERS`` one per core unless ``--workers`` says otherwise) and
the naive baseline ``bench/naive_app.py``, each on a free loopback port, and drives them with
wrk (Debian's ``wrk``, installed with apt-get when missing and running as root). Every cell
runs ``--duration`` seconds with one wrk thread; the cells are interleaved by concurrency so
that a change in the machine's load falls on all targets alike, and ``--repeat`` runs the whole
sweep again, keeping for each cell the run with the median throughput.
Targets: ``/healthz`` (the floor), ``/predict`` with a 28x28 PNG and with a 640x480 JPEG photo
of a digit, and the naive app with both. ``--variant`` adds another configuration of the same
server (for example ``batching-off:BATCH_MAX_SIZE=1``), measured on ``/healthz`` and the PNG.

Reports requests/s, p50/p90/p99 latency, errors (non-2xx and socket errors) and the servers'
CPU time per request; writes JSON and a plot, and prints a Markdown table for the README.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.inputs import digit_inputs
from digitcore.atomic import atomic_write
from testkit.servers import ROOT, Server, free_port, launched, server_env

LUA = ROOT / "bench" / "wrk.lua"
SERVICE_ENV = {"HOST": "127.0.0.1", "LOG_LEVEL": "warning", "ACCESS_LOG": "false"}


@dataclass(frozen=True)
class Target:
    name: str
    server: str
    path: str
    upload: str | None  # key of the upload to POST, None for GET


def ensure_wrk() -> str:
    """The wrk binary; installs Debian's package when missing and allowed, else fails clearly."""
    found = shutil.which("wrk")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt and os.geteuid() == 0:
        print("wrk not found; installing Debian's package: apt-get install -y wrk", flush=True)
        install = [apt, "install", "-y", "-qq", "wrk"]
        if subprocess.run(install, check=False).returncode != 0:
            subprocess.run([apt, "update", "-qq"], check=False)
            subprocess.run(install, check=False)
        found = shutil.which("wrk")
        if found:
            return found
    raise SystemExit(
        "bench.load needs the wrk load generator: install it (Debian/Ubuntu: "
        "`sudo apt-get install wrk`) and run again"
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and all its live descendants (psutil), in seconds."""
    root = psutil.Process(pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def run_wrk(wrk: str, url: str, upload: Path | None, connections: int, seconds: int) -> dict:
    argv = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s"]
    argv += ["-s", str(LUA), url]
    if upload is not None:
        content_type = "image/png" if upload.suffix == ".png" else "image/jpeg"
        argv += ["--", str(upload), upload.name, content_type]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    for line in result.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line.removeprefix("BENCH_JSON "))
    raise SystemExit(f"wrk failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")


def measure(wrk: str, server: Server, target: Target, uploads: dict, connections: int, seconds):
    before = cpu_seconds(server.process.pid)
    raw = run_wrk(wrk, server.url + target.path, uploads.get(target.upload), connections, seconds)
    cpu = cpu_seconds(server.process.pid) - before
    requests = raw["requests"]
    errors = sum(raw[k] for k in ("connect", "read", "write", "status", "timeout"))
    return {
        "target": target.name,
        "concurrency": connections,
        "requests": requests,
        "rps": requests / (raw["duration_us"] / 1e6),
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "errors": errors,
        "error_kinds": {k: raw[k] for k in ("connect", "read", "write", "status", "timeout")},
        "server_cpu_ms_per_request": 1000 * cpu / requests if requests else None,
        "load_average": os.getloadavg()[0],
    }


def print_row(name: str, concurrency: int, row: dict) -> None:
    """One measured cell, as it is taken."""
    print(
        f"{name:24s} c={concurrency:<3d} {row['rps']:9,.0f} req/s  "
        f"p50 {row['p50_ms']:7.2f}  p99 {row['p99_ms']:7.2f} ms  errors {row['errors']}",
        flush=True,
    )


def targets_for(variants: list[str]) -> list[Target]:
    targets = [
        Target("healthz", "service", "/healthz", None),
        Target("predict_png", "service", "/predict", "png"),
        Target("predict_jpeg", "service", "/predict", "jpeg"),
        Target("naive_png", "naive", "/predict", "png"),
        Target("naive_jpeg", "naive", "/predict", "jpeg"),
    ]
    for name in variants:
        targets.append(Target(f"{name}/healthz", name, "/healthz", None))
        targets.append(Target(f"{name}/predict_png", name, "/predict", "png"))
    return targets


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    name, _, settings = text.partition(":")
    pairs = [item.split("=", 1) for item in settings.split(",") if item]
    if not name or not pairs or any(len(p) != 2 for p in pairs):
        raise argparse.ArgumentTypeError(f"expected NAME:KEY=VALUE[,KEY=VALUE], got {text!r}")
    return name, {key.upper(): value for key, value in pairs}


def median_run(rows: list[dict]) -> dict:
    """The run with the median throughput, with every run's throughput and all errors."""
    chosen = dict(sorted(rows, key=lambda r: r["rps"])[len(rows) // 2])
    chosen["rps_runs"] = [r["rps"] for r in rows]
    chosen["errors_all_runs"] = sum(r["errors"] for r in rows)
    return chosen


def cell(results: list[dict], target: str, concurrency: int) -> dict | None:
    return next(
        (r for r in results if r["target"] == target and r["concurrency"] == concurrency), None
    )


def ratio(a: float, b: float) -> float:
    return a / b if b else float("inf")


def summary(results: list[dict], concurrency: int, variants: list[str]) -> dict:
    """The issue's targets at ``concurrency``, as measured, and whether each is met."""
    out: dict = {"concurrency": concurrency}
    png, floor = cell(results, "predict_png", concurrency), cell(results, "healthz", concurrency)
    naive = cell(results, "naive_png", concurrency)
    if not (png and floor):
        return out
    out["png_vs_healthz"] = ratio(png["rps"], floor["rps"])
    out["png_p99_over_p50"] = ratio(png["p99_ms"], png["p50_ms"])
    out["png_errors"] = png["errors_all_runs"]
    met = {
        "png >= 25% of healthz": out["png_vs_healthz"] >= 0.25,
        "p99 <= 3x p50": out["png_p99_over_p50"] <= 3,
        "zero errors": out["png_errors"] == 0,
    }
    if naive:
        out["png_vs_naive"] = ratio(png["rps"], naive["rps"])
        out["naive_p99_over_p50"] = ratio(naive["p99_ms"], naive["p50_ms"])
        out["naive_vs_healthz"] = ratio(naive["rps"], floor["rps"])
        met["png >= 3x naive"] = out["png_vs_naive"] >= 3
    for name in variants:
        v_png = cell(results, f"{name}/predict_png", concurrency)
        v_floor = cell(results, f"{name}/healthz", concurrency)
        if v_png and v_floor:
            out[f"{name}: png_vs_healthz"] = ratio(v_png["rps"], v_floor["rps"])
            out[f"{name}: png_vs_main_png"] = ratio(v_png["rps"], png["rps"])
    out["targets_met"] = met
    return out


def markdown(results: list[dict]) -> str:
    lines = [
        "| target | concurrency | requests/s | p50 ms | p90 ms | p99 ms | errors | CPU ms/req |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        cpu = r["server_cpu_ms_per_request"]
        lines.append(
            f"| {r['target']} | {r['concurrency']} | {r['rps']:,.0f} | {r['p50_ms']:.2f} | "
            f"{r['p90_ms']:.2f} | {r['p99_ms']:.2f} | {r['errors']} | "
            f"{'-' if cpu is None else f'{cpu:.3f}'} |"
        )
    return "\n".join(lines)


def plot(results: list[dict], concurrencies: list[int], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r["target"] for r in results))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 8), constrained_layout=True)
    width = 0.8 / len(concurrencies)
    for i, conc in enumerate(concurrencies):
        rows = [cell(results, n, conc) for n in names]
        xs = [k + (i - (len(concurrencies) - 1) / 2) * width for k in range(len(names))]
        nan = float("nan")  # no bar where nothing was measured (log scale)
        top.bar(xs, [r["rps"] or nan if r else nan for r in rows], width, label=f"c={conc}")
        p50 = [r["p50_ms"] or nan if r else nan for r in rows]
        bottom.bar(xs, p50, width, label=f"p50 c={conc}")
        p99 = [r["p99_ms"] or nan if r else nan for r in rows]
        bottom.scatter(xs, p99, marker="_", s=200, c="k")
    for axis, label in ((top, "requests/s"), (bottom, "latency ms (bar p50, dash p99)")):
        axis.set_xticks(range(len(names)), names, rotation=20, ha="right")
        axis.set_yscale("log")
        axis.set_ylabel(label)
        axis.grid(axis="y", alpha=0.3)
        axis.legend(fontsize=8)
    top.set_title(title)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Load benchmark of the service (wrk, loopback).")
    parser.add_argument("--model", type=Path, default=Path("models/mnist_cnn.pth"))
    parser.add_argument("--data", type=Path, default=Path("data"), help="MNIST root")
    parser.add_argument("--duration", type=int, default=10, help="seconds per cell")
    parser.add_argument("--warmup", type=int, default=2, help="seconds per target, unrecorded")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="the service's WORKERS (default: one per core, the recommendation)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="sweeps; each cell keeps its median")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="another setting for the service (repeatable)")  # fmt: skip
    parser.add_argument("--variant", action="append", default=[], type=parse_variant)
    parser.add_argument("--no-naive", action="store_true", help="skip the naive baseline")
    parser.add_argument("--out", type=Path, default=Path("bench/results/load.json"))
    args = parser.parse_args(argv)
    wrk = ensure_wrk()
    model = args.model.resolve()
    if not model.is_file():
        raise SystemExit(f"no model at {args.model}: train one first (make model)")
    base = {**SERVICE_ENV, "MODEL_PATH": str(model), "WORKERS": str(args.workers)}
    base.update(dict(item.split("=", 1) for item in args.set))
    base = {key.upper(): value for key, value in base.items()}
    configs = {"service": base, **{name: {**base, **extra} for name, extra in args.variant}}
    targets = [
        t
        for t in targets_for([name for name, _ in args.variant])
        if not (args.no_naive and t.server == "naive")
    ]
    shown = " ".join(f"{k}={v}" for k, v in base.items() if k != "MODEL_PATH")
    print(f"service: python -m service with {shown} (MODEL_PATH={args.model})", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        uploads = {}
        for key, (name, data) in digit_inputs(args.data).items():
            uploads[key] = work / name
            uploads[key].write_bytes(data)
        servers: dict[str, Server] = {}
        for name, env in configs.items():
            port = free_port()
            argv_ = [sys.executable, "-m", "service"]
            env_ = server_env(**{**env, "PORT": str(port)})
            log = work / f"{name}.log"
            servers[name] = stack.enter_context(launched(argv_, env_, port, log, timeout=180))
        if not args.no_naive:
            port = free_port()
            argv_ = [sys.executable, "-m", "bench.naive_app", "--model", str(model)]
            argv_ += ["--port", str(port)]
            log = work / "naive.log"
            naive = launched(argv_, server_env(), port, log, ready="/healthz", timeout=180)
            servers["naive"] = stack.enter_context(naive)
        for target in targets:  # warm every path up (first-request costs, lazy imports)
            server = servers[target.server]
            run_wrk(wrk, server.url + target.path, uploads.get(target.upload), 8, args.warmup)
        runs: dict[tuple[str, int], list[dict]] = {}
        for _ in range(args.repeat):
            for conc in args.concurrency:
                for target in targets:
                    server = servers[target.server]
                    row = measure(wrk, server, target, uploads, conc, args.duration)
                    runs.setdefault((target.name, conc), []).append(row)
                    print_row(target.name, conc, row)
        results = [median_run(rows) for rows in runs.values()]
    top = max(args.concurrency)
    report = {
        "command": "python -m bench.load " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "service_settings": {  # the model as given, not this machine's absolute path
            name: {**env, "MODEL_PATH": str(args.model)} for name, env in configs.items()
        },
        "naive": None if args.no_naive else "bench/naive_app.py (torch default threads)",
        "duration_s": args.duration,
        "repeat": args.repeat,
        "load_generator": "wrk -t1 --timeout 5s",
        "results": results,
        "summary": summary(results, top, [name for name, _ in args.variant]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(args.out, "w") as handle:
        json.dump(report, handle, indent=2)
    title = f"bench.load: WORKERS={args.workers}, {os.cpu_count()} CPUs, {args.duration:g} s/cell"
    if args.repeat > 1:
        title += f", median of {args.repeat} sweeps"
    plot(results, args.concurrency, args.out.with_suffix(".png"), title)
    print()
    print(markdown(results))
    print()
    for key, value in report["summary"].items():
        shown = f"{value:.3g}" if isinstance(value, float) else value
        print(f"{key:34s} {shown}")
    print(f"written {args.out} and {args.out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
