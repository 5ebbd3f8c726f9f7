"""``python -m service`` / ``mnist-serve``: run the app under uvicorn with the settings.

Every setting comes from an environment variable (see ``--help``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator

from pydantic import ValidationError
from uvicorn.supervisors import Multiprocess

from service.config import Settings, describe
from service.logs import log_config

FACTORY = "service.app:create_app"


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(
        prog="mnist-serve",
        description="Serve the digit model over HTTP. Settings come from environment variables:",
        epilog=describe(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    ).parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        print(f"mnist-serve: invalid setting: {problems}", file=sys.stderr)
        return 2
    return serve(settings)


class Supervisor(Multiprocess):
    """uvicorn's supervisor, except that SIGHUP has every worker reload the model in place
    (each worker's own handler, :func:`service.app.reload_on_sighup`) instead of restarting
    the workers: no worker stops, and a bad file changes nothing."""

    def handle_hup(self) -> None:
        for worker in self.processes:
            if worker.pid is not None and worker.exitcode is None:
                os.kill(worker.pid, signal.SIGHUP)


def serve(settings: Settings) -> int:
    """uvicorn with ``create_app`` as its app factory; exit status 3 when startup fails.

    Each worker process builds the app from the environment and loads the model in its
    lifespan; a bad checkpoint stops the worker with uvicorn's startup-failure status (3),
    and uvicorn's supervisor then stops the others.
    """
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE

    config = uvicorn.Config(
        FACTORY,
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        log_config=log_config(settings.log_level, settings.log_format),
        access_log=settings.access_log,
    )
    if config.workers == 1:
        server = uvicorn.Server(config)
        # uvicorn raises the SIGTERM or SIGINT it stopped for again once it has shut down
        # gracefully, to the handler it found: let that be one that ends normally (status 0).
        for stop in (signal.SIGTERM, signal.SIGINT):
            signal.signal(stop, _stopped)
        server.run()
        return 0 if server.started else STARTUP_FAILURE
    with metrics_directory():
        supervisor = Supervisor(config, sockets=[config.bind_socket()])
        supervisor.run()
    failed = any(worker.exitcode == STARTUP_FAILURE for worker in supervisor.processes)
    return STARTUP_FAILURE if failed else 0


def _stopped(signum: int, frame: object) -> None:
    """The graceful stop is over; the process ends with status 0."""


@contextlib.contextmanager
def metrics_directory() -> Iterator[None]:
    """A fresh ``PROMETHEUS_MULTIPROC_DIR`` for the workers' metrics, unless one is given.

    With several workers, each writes its metrics there and ``/metrics`` adds them up
    (prometheus-client's multiprocess mode). Removed when the service stops.
    """
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        yield
        return
    directory = tempfile.mkdtemp(prefix="mnist-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    try:
        yield
    finally:
        del os.environ["PROMETHEUS_MULTIPROC_DIR"]
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
