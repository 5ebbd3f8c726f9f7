"""Ray Serve with two replicas against one uvicorn worker, same machine, same load generator.

    python -m bench.ray_compare [--model models/mnist_cnn.pth] [--duration 10]
                                [--concurrency 8 64] [--repeat 1]
                                [--out bench/results/ray_compare.json]

Two servers of the same app (``service.app.create_app``), each on a free loopback port:

- ``uvicorn``: ``python -m service`` with ``WORKERS=1`` (testkit.servers, as bench.load does);
- ``ray``: a local one-node Ray cluster (``--ray-cpus`` CPUs, loopback only, no dashboard, a
  small object store) running :class:`service.ray_serve.MnistDigits` with two replicas of one
  CPU each behind Serve's HTTP proxy.

Both get the service settings of bench.load (``LOG_LEVEL=warning``, ``ACCESS_LOG=false``),
and wrk drives them with bench.load's script and helpers: ``POST /predict`` with the 28x28
MNIST PNG and ``GET /healthz`` (the floor: what the server stack costs without the model),
one wrk thread, ``--duration`` seconds per cell, cells interleaved between the two servers
and ``--repeat`` sweeps keeping each cell's median run. Reports requests/s, p50/p99 latency,
errors and server CPU time per request (Ray: every process of its cluster, proxy and
controller included, and split by role: replicas, proxy, controller, raylet, GCS), and the
ratios Ray / uvicorn; writes JSON and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psutil

from bench.inputs import digit_inputs
from bench.load import (
    SERVICE_ENV,
    Target,
    ensure_wrk,
    markdown,
    measure,
    median_run,
    print_row,
    run_wrk,
)
from digitcore.atomic import atomic_write
from testkit.servers import SETTING_VARS, Server, free_port, launched, server_env

MIB = 1024 * 1024
TARGETS = [
    Target("uvicorn/healthz", "uvicorn", "/healthz", None),
    Target("uvicorn/predict_png", "uvicorn", "/predict", "png"),
    Target("ray/healthz", "ray", "/healthz", None),
    Target("ray/predict_png", "ray", "/predict", "png"),
]


@contextmanager
def ray_serve(model: Path, replicas: int, cpus: int, work: Path, timeout: float = 300):
    """Serve's HTTP address, ``replicas`` replicas of the app ready behind it; all stopped after.

    The cluster runs in this process's tree (the driver starts it), so this process's pid
    covers its CPU time. Ray's files go to ``work``; everything binds to 127.0.0.1.
    """
    # Before Ray is imported: its single-machine mode keeps every address on loopback.
    os.environ.update(
        RAY_TMPDIR=str(work),
        RAY_USAGE_STATS_ENABLED="0",
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
    )
    for name in SETTING_VARS:  # the replicas read the settings given here, not stray ones
        os.environ.pop(name, None)
    import ray
    from ray import serve
    from ray.serve.schema import ApplicationStatus

    from service.ray_serve import MnistDigits

    ray.init(
        num_cpus=cpus,
        object_store_memory=100 * MIB,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
    )
    try:
        port = free_port()
        logs = {"enable_access_log": False, "log_level": "WARNING"}  # as deploy/ray/serve.yaml
        serve.start(
            proxy_location="HeadOnly",
            http_options={"host": "127.0.0.1", "port": port},
            logging_config=logs,
        )
        settings = {
            "model_path": str(model),
            **{key.lower(): value for key, value in SERVICE_ENV.items() if key != "HOST"},
        }
        app = MnistDigits.options(num_replicas=replicas).bind(settings)
        serve.run(app, name="mnist", logging_config=logs)
        deadline = time.monotonic() + timeout
        while serve.status().applications["mnist"].status != ApplicationStatus.RUNNING:
            if time.monotonic() > deadline:
                raise SystemExit(f"Ray Serve not running in {timeout:g} s: {serve.status()}")
            time.sleep(0.5)
        yield Server(f"http://127.0.0.1:{port}", psutil.Process(os.getpid()), work / "ray")
    finally:
        try:
            serve.shutdown()
        finally:
            ray.shutdown()


ROLES = ("ServeReplica", "ProxyActor", "ServeController", "raylet", "gcs_server")


def cpu_by_role(pid: int) -> dict[str, float]:
    """CPU seconds of ``pid``'s live descendants, by Ray role (process title), the rest pooled."""
    totals: dict[str, float] = {}
    for process in psutil.Process(pid).children(recursive=True):
        try:
            title = " ".join(process.cmdline()) or process.name()
            times = process.cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        role = next((r for r in ROLES if r in title), "other")
        totals[role] = totals.get(role, 0.0) + times.user + times.system
    return totals


def ratios(results: list[dict], concurrency: int) -> dict:
    """Ray / uvicorn for each measure and path at ``concurrency``."""
    cells = {r["target"]: r for r in results if r["concurrency"] == concurrency}
    out = {}
    for path in ("predict_png", "healthz"):
        ray_cell, uvicorn_cell = cells.get(f"ray/{path}"), cells.get(f"uvicorn/{path}")
        if not (ray_cell and uvicorn_cell):
            continue
        for key in ("rps", "p50_ms", "p99_ms", "server_cpu_ms_per_request"):
            if ray_cell[key] and uvicorn_cell[key]:
                out[f"{path} {key} ray/uvicorn"] = ray_cell[key] / uvicorn_cell[key]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Ray Serve (2 replicas) vs uvicorn (1 worker).")
    parser.add_argument("--model", type=Path, default=Path("models/mnist_cnn.pth"))
    parser.add_argument("--data", type=Path, default=Path("data"), help="MNIST root")
    parser.add_argument("--duration", type=int, default=10, help="seconds per cell")
    parser.add_argument("--warmup", type=int, default=2, help="seconds per target, unrecorded")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 64])
    parser.add_argument("--repeat", type=int, default=1, help="sweeps; each cell keeps its median")
    parser.add_argument("--replicas", type=int, default=2, help="Ray Serve replicas (1 CPU each)")
    parser.add_argument("--ray-cpus", type=int, default=None,
                        help="CPUs the Ray node offers (default: --replicas)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("bench/results/ray_compare.json"))
    args = parser.parse_args(argv)
    wrk = ensure_wrk()
    model = args.model.resolve()
    if not model.is_file():
        raise SystemExit(f"no model at {args.model}: train one first (make model)")
    uvicorn_env = {**SERVICE_ENV, "MODEL_PATH": str(model), "WORKERS": "1"}
    with tempfile.TemporaryDirectory(prefix="ray-") as tmp, ExitStack() as stack:
        work = Path(tmp)  # short: Ray's socket paths live under it
        uploads = {}
        for key, (name, data) in digit_inputs(args.data).items():
            uploads[key] = work / name
            uploads[key].write_bytes(data)
        port = free_port()
        argv_ = [sys.executable, "-m", "service"]
        env = server_env(**{**uvicorn_env, "PORT": str(port)})
        servers = {"uvicorn": stack.enter_context(launched(argv_, env, port, work / "uv.log"))}
        print(f"uvicorn: python -m service, WORKERS=1, on {servers['uvicorn'].url}", flush=True)
        started = time.monotonic()
        cpus = args.ray_cpus or args.replicas
        servers["ray"] = stack.enter_context(ray_serve(model, args.replicas, cpus, work))
        print(
            f"ray: {args.replicas} Serve replicas on {servers['ray'].url} "
            f"(ready in {time.monotonic() - started:.0f} s)",
            flush=True,
        )
        for target in TARGETS:  # first-request costs, lazy imports, connection set-up
            server = servers[target.server]
            run_wrk(wrk, server.url + target.path, uploads.get(target.upload), 8, args.warmup)
        runs: dict[tuple[str, int], list[dict]] = {}
        for _ in range(args.repeat):
            for conc in args.concurrency:
                for target in TARGETS:
                    before = cpu_by_role(os.getpid()) if target.server == "ray" else {}
                    row = measure(wrk, servers[target.server], target, uploads, conc, args.duration)
                    if before:
                        after = cpu_by_role(os.getpid())
                        row["ray_cpu_ms_per_request_by_role"] = {
                            role: 1000 * (after[role] - before.get(role, 0.0)) / row["requests"]
                            for role in after
                            if row["requests"]
                        }
                    runs.setdefault((target.name, conc), []).append(row)
                    print_row(target.name, conc, row)
        results = [median_run(rows) for rows in runs.values()]
    report = {
        "command": "python -m bench.ray_compare "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_1m_at_end": os.getloadavg()[0],
        },
        "uvicorn": "python -m service, WORKERS=1 (one process, one CPU's worth of work)",
        "ray": f"Ray Serve {args.replicas} replicas x num_cpus=1, one node of {cpus} CPUs, "
        "HeadOnly HTTP proxy; CPU time counts every Ray process (proxy, controller, replicas)",
        "settings": {**uvicorn_env, "MODEL_PATH": str(args.model)},
        "duration_s": args.duration,
        "repeat": args.repeat,
        "load_generator": "wrk -t1 --timeout 5s (bench/wrk.lua)",
        "results": results,
        "ratios": {str(c): ratios(results, c) for c in args.concurrency},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(args.out, "w") as handle:
        json.dump(report, handle, indent=2)
    print()
    print(markdown(results))
    print()
    for row in results:
        if "ray_cpu_ms_per_request_by_role" in row:
            shares = sorted(row["ray_cpu_ms_per_request_by_role"].items(), key=lambda i: -i[1])
            shown = ", ".join(f"{role} {ms:.2f}" for role, ms in shares)
            print(f"{row['target']} c={row['concurrency']}: CPU ms/request by role: {shown}")
    for conc, values in report["ratios"].items():
        for key, value in values.items():
            print(f"c={conc:<3s} {key:44s} {value:.2f}")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
