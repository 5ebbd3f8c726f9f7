"""Soak test: a long stream of mixed valid and invalid requests against one real server.

    python -m bench.soak [--model models/mnist_cnn.pth] [--requests 20000] [--concurrency 16]
                         [--workers 1] [--warmup 2000] [--out bench/results/soak.json]

Starts ``python -m service`` on a free loopback port as the README documents it (settings in
environment variables, access log off, ``WORKERS=1`` unless ``--workers`` says otherwise, and
``MAX_UPLOAD_BYTES`` set small so that an over-limit body is cheap to send) and drives it with
``httpx.AsyncClient`` at ``--concurrency`` requests in flight. The stream is a fixed, seeded mix
of kinds: MNIST test digits as PNG, a 640x480 JPEG photo of a digit, ``/predict/batch`` with a
few files (one of them a text file in some), and invalid requests: a text file, a truncated
PNG, an empty file, a missing field, a body that is not multipart, a blank image (422), a body
over the limit (413), an unknown path (404), a bad query value (422), plus ``/healthz`` and
``/model``. After ``--warmup`` requests (not counted) it reads the server's resident memory
(psutil: the server process and all its children), sends ``--requests`` more, and reads it
again; it samples memory every 1,000 requests in between.

Reports counts per status code and per kind (with the statuses each kind should get), transport
errors by class, requests/s, and the memory before and after with the growth in percent; writes
``bench/results/soak.json`` and prints a Markdown table. Exit status 1 if any response was a
5xx, any request failed in transport, or memory grew by 10 % or more.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import random
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import psutil
from PIL import Image

from bench.inputs import digit_inputs
from digitcore.atomic import atomic_write
from testkit.servers import free_port, launched, server_env
from trainer.data import load_tensors

SERVICE_ENV = {"HOST": "127.0.0.1", "LOG_LEVEL": "warning", "ACCESS_LOG": "false"}
MAX_UPLOAD_BYTES = 256 * 1024  # small, so the over-limit body costs little to send
GROWTH_LIMIT_PCT = 10.0
SAMPLE_EVERY = 1000


@dataclass(frozen=True)
class Kind:
    """One kind of request: its weight in the mix, what it sends, and the statuses it should get."""

    name: str
    weight: int
    expected: frozenset[int]
    build: Callable[[random.Random], dict]  # httpx.AsyncClient.request keyword arguments


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def kinds(data_root: Path) -> list[Kind]:
    """The request mix (weights sum to 100): about 60 % valid, 40 % invalid."""
    images, _ = load_tensors(data_root, train=False)
    digits = [png(images[i].numpy()) for i in range(500)]
    photo = digit_inputs(data_root)["jpeg"][1]
    text = b"these are notes, not an image\n" * 20
    truncated = [d[: len(d) // 2] for d in digits[:50]]
    blank = png(np.full((28, 28), 255, np.uint8))
    oversize = os.urandom(MAX_UPLOAD_BYTES + 64 * 1024)

    def form(data: bytes, name: str = "d.png", mime: str = "image/png", field: str = "file"):
        return {"method": "POST", "url": "/predict", "files": [(field, (name, data, mime))]}

    def batch(rng: random.Random, bad: bool) -> dict:
        files = [("files", ("d.png", rng.choice(digits), "image/png")) for _ in range(3)]
        files.append(("files", ("photo.jpg", photo, "image/jpeg")))
        if bad:
            files.append(("files", ("notes.txt", text, "text/plain")))
        return {"method": "POST", "url": "/predict/batch", "files": files}

    def not_multipart(rng: random.Random) -> dict:
        body, headers = rng.choice(digits), {"Content-Type": "image/png"}
        return {"method": "POST", "url": "/predict", "content": body, "headers": headers}

    def bad_query(rng: random.Random) -> dict:
        return {**form(rng.choice(digits)), "params": {"include_image": "maybe"}}

    ok, corrupt, too_large = frozenset({200}), frozenset({400}), frozenset({413})
    unsupported, invalid, missing = frozenset({415}), frozenset({422}), frozenset({404})
    return [
        Kind("png_digit", 30, ok, lambda r: form(r.choice(digits))),
        Kind("jpeg_photo", 12, ok, lambda r: form(photo, "photo.jpg", "image/jpeg")),
        Kind("batch", 8, ok, lambda r: batch(r, bad=False)),
        Kind("batch_with_bad_file", 4, ok, lambda r: batch(r, bad=True)),
        Kind("healthz", 3, ok, lambda r: {"method": "GET", "url": "/healthz"}),
        Kind("model_info", 3, ok, lambda r: {"method": "GET", "url": "/model"}),
        Kind("text_file", 5, unsupported, lambda r: form(text, "notes.txt", "text/plain")),
        Kind("truncated_png", 5, corrupt, lambda r: form(r.choice(truncated), "cut.png")),
        Kind("empty_file", 4, unsupported, lambda r: form(b"", "empty.png")),
        Kind("missing_field", 4, invalid, lambda r: form(r.choice(digits), field="image")),
        Kind("not_multipart", 4, invalid, not_multipart),
        Kind("blank_image", 4, invalid, lambda r: form(blank, "blank.png")),
        Kind("over_limit", 3, too_large, lambda r: form(oversize, "big.png")),
        Kind("unknown_path", 4, missing, lambda r: {"method": "GET", "url": f"/no/{r.random()}"}),
        Kind("bad_query", 5, invalid, bad_query),
    ]


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and all its live descendants (psutil), in bytes."""
    root = psutil.Process(pid)
    total = 0
    for process in [root, *root.children(recursive=True)]:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


class Tally:
    def __init__(self) -> None:
        self.statuses: Counter[int] = Counter()
        self.by_kind: dict[str, Counter[str]] = defaultdict(Counter)
        self.transport: Counter[str] = Counter()
        self.unexpected: Counter[str] = Counter()
        self.examples_5xx: list[dict] = []

    def as_dict(self) -> dict:
        return {
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "by_kind": {k: dict(sorted(v.items())) for k, v in sorted(self.by_kind.items())},
            "transport_errors": dict(self.transport),
            "unexpected_status": dict(self.unexpected),
            "examples_5xx": self.examples_5xx[:10],
        }


async def drive(
    client: httpx.AsyncClient,
    mix: list[Kind],
    count: int,
    concurrency: int,
    rng: random.Random,
    tally: Tally | None,
    on_progress: Callable[[int], None] | None = None,
) -> float:
    """Send ``count`` requests drawn from ``mix``, ``concurrency`` at a time; seconds taken."""
    weights = [k.weight for k in mix]
    plan = iter(rng.choices(mix, weights, k=count))
    requests = [(kind, kind.build(rng)) for kind in plan]
    queue = iter(requests)
    done = 0

    async def worker() -> None:
        nonlocal done
        for kind, request in queue:
            try:
                response = await client.request(**request)
            except httpx.HTTPError as exc:
                if tally is not None:
                    tally.transport[type(exc).__name__] += 1
                    tally.by_kind[kind.name][type(exc).__name__] += 1
            else:
                await response.aread()
                if tally is not None:
                    status = response.status_code
                    tally.statuses[status] += 1
                    tally.by_kind[kind.name][str(status)] += 1
                    if status not in kind.expected:
                        tally.unexpected[f"{kind.name}:{status}"] += 1
                    if status >= 500 and len(tally.examples_5xx) < 10:
                        tally.examples_5xx.append(
                            {"kind": kind.name, "status": status, "body": response.text[:300]}
                        )
            done += 1
            if on_progress is not None:
                on_progress(done)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


def markdown(report: dict) -> str:
    tally = report["tally"]
    lines = [
        "| kind | expected | requests | statuses / errors |",
        "|---|---|---:|---|",
    ]
    for name, counts in tally["by_kind"].items():
        shown = ", ".join(f"{k}: {v:,}" for k, v in counts.items())
        expected = "/".join(str(s) for s in report["expected"][name])
        lines.append(f"| {name} | {expected} | {sum(counts.values()):,} | {shown} |")
    mem = report["memory"]
    statuses = ", ".join(f"{k}: {v:,}" for k, v in tally["statuses"].items())
    errors = ", ".join(f"{k}: {v}" for k, v in tally["transport_errors"].items()) or "none"
    lines += [
        "",
        "| measure | value |",
        "|---|---|",
        f"| requests (after {report['warmup']:,} warm-up) | {report['requests']:,} |",
        f"| concurrency / WORKERS | {report['concurrency']} / {report['workers']} |",
        f"| requests/s | {report['rps']:,.0f} |",
        f"| statuses | {statuses} |",
        f"| transport errors | {errors} |",
        f"| unexpected statuses | {sum(tally['unexpected_status'].values()):,} |",
        f"| server RSS after warm-up | {mem['after_warmup_mib']:.1f} MiB |",
        f"| server RSS at the end | {mem['end_mib']:.1f} MiB |",
        f"| growth | {mem['growth_pct']:+.2f} % |",
        f"| verdict | {'PASS' if report['passed'] else 'FAIL: ' + '; '.join(report['problems'])} |",
    ]
    return "\n".join(lines)


async def soak(args: argparse.Namespace, url: str, pid: int, mix: list[Kind]) -> dict:
    rng = random.Random(args.seed)
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=None)
    async with httpx.AsyncClient(base_url=url, timeout=args.timeout, limits=limits) as client:
        print(f"warm-up: {args.warmup:,} requests", flush=True)
        warm = Tally()
        await drive(client, mix, args.warmup, args.concurrency, rng, warm)
        before = rss_bytes(pid)
        samples = [{"requests": 0, "rss_mib": before / (1 << 20)}]
        print(f"server RSS after warm-up: {before / (1 << 20):.1f} MiB", flush=True)

        def progress(done: int) -> None:
            if done % SAMPLE_EVERY == 0:
                rss = rss_bytes(pid) / (1 << 20)
                samples.append({"requests": done, "rss_mib": rss})
                print(f"  {done:>7,} requests  RSS {rss:7.1f} MiB", flush=True)

        tally = Tally()
        seconds = await drive(client, mix, args.requests, args.concurrency, rng, tally, progress)
        after = rss_bytes(pid)
    return {
        "seconds": seconds,
        "tally": tally,
        "warmup_tally": warm,
        "before": before,
        "after": after,
        "samples": samples,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Soak test of the service (mixed requests).")
    parser.add_argument("--model", type=Path, default=Path("models/mnist_cnn.pth"))
    parser.add_argument("--data", type=Path, default=Path("data"), help="MNIST root")
    parser.add_argument("--requests", type=int, default=20_000, help="measured requests")
    parser.add_argument("--warmup", type=int, default=2_000, help="requests before measuring")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1, help="the service's WORKERS")
    parser.add_argument("--timeout", type=float, default=60, help="seconds per request")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench/results/soak.json"))
    args = parser.parse_args(argv)
    model = args.model.resolve()
    if not model.is_file():
        raise SystemExit(f"no model at {args.model}: train one first (make model)")
    mix = kinds(args.data)
    settings = {
        **SERVICE_ENV,
        "MODEL_PATH": str(model),
        "WORKERS": str(args.workers),
        "MAX_UPLOAD_BYTES": str(MAX_UPLOAD_BYTES),
    }
    shown = " ".join(f"{k}={v}" for k, v in settings.items() if k != "MODEL_PATH")
    print(f"service: python -m service with {shown} (MODEL_PATH={args.model})", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
        port = free_port()
        env = server_env(**settings, PORT=str(port))
        log = Path(tmp) / "server.log"
        argv_ = [sys.executable, "-m", "service"]
        with launched(argv_, env, port, log, timeout=180) as server:
            time.sleep(1 if args.workers > 1 else 0)  # let every worker finish starting
            run = asyncio.run(soak(args, server.url, server.process.pid, mix))
            alive = server.process.poll() is None
            server_log = server.output()
    tally: Tally = run["tally"]
    before, after = run["before"], run["after"]
    growth = 100 * (after - before) / before
    server_errors = sum(v for k, v in tally.statuses.items() if k >= 500)
    problems = []
    if server_errors:
        problems.append(f"{server_errors} responses were 5xx")
    if tally.transport:
        problems.append(f"{sum(tally.transport.values())} transport errors")
    if growth >= GROWTH_LIMIT_PCT:
        problems.append(f"memory grew {growth:.1f} % (limit {GROWTH_LIMIT_PCT:g} %)")
    if not alive:
        problems.append("the server exited during the run")
    report = {
        "command": "python -m bench.soak " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "service_settings": {**settings, "MODEL_PATH": str(args.model)},
        "warmup": args.warmup,
        "requests": args.requests,
        "concurrency": args.concurrency,
        "workers": args.workers,
        "seconds": run["seconds"],
        "rps": args.requests / run["seconds"],
        "mix": {k.name: k.weight for k in mix},
        "expected": {k.name: sorted(k.expected) for k in mix},
        "tally": tally.as_dict(),
        "warmup_tally": run["warmup_tally"].as_dict(),
        "memory": {
            "after_warmup_mib": before / (1 << 20),
            "end_mib": after / (1 << 20),
            "growth_pct": growth,
            "limit_pct": GROWTH_LIMIT_PCT,
            "samples": run["samples"],
        },
        "passed": not problems,
        "problems": problems,
    }
    if server_errors or not alive:
        report["server_log_tail"] = server_log[-4000:]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(args.out, "w") as handle:
        json.dump(report, handle, indent=2)
    print()
    print(markdown(report))
    print(f"\nwritten {args.out}")
    return 0 if not problems else 1


if __name__ == "__main__":
    raise SystemExit(main())
