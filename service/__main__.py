"""``python -m service`` / ``mnist-serve``: run the app under uvicorn with the settings.

Every setting comes from an environment variable (see ``--help``).
"""

from __future__ import annotations

import argparse
import copy
import sys

from pydantic import ValidationError

from service.config import Settings, describe

FACTORY = "service.app:create_app"


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
    return serve(settings)


def serve(settings: Settings) -> int:
    """uvicorn with ``create_app`` as its app factory; exit status 3 when startup fails.

    Each worker process builds the app from the environment and loads the model in its
    lifespan; a bad checkpoint stops the worker with uvicorn's startup-failure status (3),
    and uvicorn's supervisor then stops the others.
    """
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(
        FACTORY,
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        log_config=log_config(settings.log_level),
        access_log=settings.access_log,
    )
    if config.workers == 1:
        server = uvicorn.Server(config)
        server.run()
        return 0 if server.started else STARTUP_FAILURE
    supervisor = Multiprocess(config, sockets=[config.bind_socket()])
    supervisor.run()
    failed = any(worker.exitcode == STARTUP_FAILURE for worker in supervisor.processes)
    return STARTUP_FAILURE if failed else 0


if __name__ == "__main__":
    sys.exit(main())
