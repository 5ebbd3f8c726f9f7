"""``python -m service`` / ``mnist-serve``: run the app under uvicorn with the settings.

Every setting comes from an environment variable (see ``--help``).
"""

from __future__ import annotations

import argparse
import copy
import sys

from pydantic import ValidationError

from service.config import Settings, describe


def log_config(level: str) -> dict:
    """uvicorn's logging setup, plus the service's own logger at ``level``."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["service"] = {"handlers": ["default"], "level": level.upper()}
    return config


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
        from digitcore.checkpoint import CheckpointError, load_checkpoint

        try:  # one clear line here rather than one per worker process
            load_checkpoint(settings.model_path)
        except CheckpointError as exc:
            print(f"mnist-serve: {exc}", file=sys.stderr)
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
