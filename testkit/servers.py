"""A real server process on a free loopback port, ready when handed over, stopped after.

The one place for starting ``python -m service`` (or the naive baseline) as a child process:
the end-to-end tests of every package and the benchmarks in ``bench/`` both launch through it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from service.config import Settings

ROOT = Path(__file__).resolve().parents[1]
SETTING_VARS = {name.upper() for name in Settings.model_fields}


class ServerFailed(RuntimeError):
    """The server exited, or did not answer its ready path in time; the message has its log."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(**settings: str) -> dict[str, str]:
    """The environment for ``python -m service``: ours, minus stray settings, plus ``settings``."""
    env = {key: value for key, value in os.environ.items() if key.upper() not in SETTING_VARS}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update({key.upper(): str(value) for key, value in settings.items()})
    return env


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def launched(
    argv: list[str],
    env: Mapping[str, str],
    port: int,
    log: Path,
    ready: str = "/readyz",
    timeout: float = 90,
    poll: float = 0.1,
) -> Iterator[Server]:
    """Run ``argv`` (serving on ``port``) from the project root; yield once ``ready`` gives 200."""
    with open(log, "wb") as sink:
        process = subprocess.Popen(argv, cwd=ROOT, env=dict(env), stdout=sink, stderr=sink)
    server = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2) as client:
            while True:
                if process.poll() is not None:
                    raise ServerFailed(f"exited {process.returncode}:\n{server.output()}")
                try:
                    if client.get(server.url + ready).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise ServerFailed(f"not ready in {timeout:g} s:\n{server.output()}")
                time.sleep(poll)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def serve(tmp_path: Path, ready_timeout: float = 90, **settings: str) -> Iterator[Server]:
    """``python -m service`` on a free loopback port, ready (``/readyz`` 200) when yielded."""
    port = free_port()
    env = server_env(host="127.0.0.1", port=str(port), **settings)
    argv = [sys.executable, "-m", "service"]
    with launched(argv, env, port, tmp_path / f"server-{port}.log", timeout=ready_timeout) as s:
        yield s
