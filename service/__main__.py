"""``python -m service`` / ``mnist-serve``: run the app under uvicorn with the settings.

Every setting comes from an environment variable (see ``--help``).
"""

from __future__ import annotations

import argparse
import copy
import subprocess
import sys
from pathlib import Path

from pydantic import ValidationError

from service.config import Settings, describe


def log_config(level: str) -> dict:
    """uvicorn's logging setup, plus the service's own logger at ``level``."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["service"] = {"handlers": ["default"], "level": level.upper()}
    return config


# Run in a child process: see checkpoint_problem.
_CHECK = """
import sys
from digitcore.checkpoint import CheckpointError, load_checkpoint
try:
    load_checkpoint(sys.argv[1])
except CheckpointError as exc:
    sys.exit(str(exc))
"""


def checkpoint_problem(path: Path) -> str | None:
    """Why the checkpoint cannot be served, or ``None``; read in a short-lived child process.

    With several workers, this process only supervises them: importing torch here to read the
    checkpoint would cost half a GiB of memory held for nothing while serving.
    """
    result = subprocess.run(
        [sys.executable, "-c", _CHECK, str(path)], capture_output=True, text=True, check=False
    )
    if result.returncode == 0:
        return None
    lines = result.stderr.strip().splitlines()
    return lines[-1] if lines else f"checkpoint {path}: unreadable (exit {result.returncode})"


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
    import uvicorn

    if settings.workers > 1:
        problem = checkpoint_problem(settings.model_path)
        if problem:  # one clear line here rather than one per worker process
            print(f"mnist-serve: {problem}", file=sys.stderr)
            return 1
        target = "service.app:app"
    else:
        from service.app import create_app

        target = create_app(settings)
    uvicorn.run(
        target,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        log_config=log_config(settings.log_level),
        access_log=settings.access_log,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
