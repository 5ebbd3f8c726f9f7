"""The service on Ray Serve: the same FastAPI app, one copy per replica, behind Serve's proxy.

    serve run service.ray_serve:app_builder model_path=models/mnist_cnn.pth
    serve deploy deploy/ray/serve.yaml          # on a running cluster (ray start --head)

:class:`MnistDigits` is a Serve deployment whose ingress is :func:`service.app.create_app`'s
app: every route, dependency, error handler and middleware as under uvicorn, and its lifespan
(load the checkpoint, warm up, start the batcher), which Serve runs in each replica when the
replica starts (uvicorn's ``LifespanOn``) and shuts down with it. The app is built in the
replica (``serve.ingress()`` late-bound through ``__serve_build_asgi_app__``), so its
settings are the replica's: the environment there (``runtime_env.env_vars`` in the Serve
config: ``MODEL_PATH``, ``DEVICE``, ...) overridden by the application's ``args``.

Each response carries ``X-Serve-Replica`` (the replica's id), to see how Serve spreads the
load. Serve's periodic health check (:meth:`MnistDigits.check_health`) asks the app's own
``GET /readyz`` in process, as Kubernetes' readiness probe does over HTTP; a replica that is
not ready is replaced.

Needs the optional extra: ``pip install -e '.[ray]'``.
"""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from ray import serve
from ray.serve import Application
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.app import create_app
from service.config import Settings

REPLICA_HEADER = "X-Serve-Replica"


class ReplicaHeader:
    """Pure-ASGI middleware: ``X-Serve-Replica: <replica id>`` on every HTTP response."""

    def __init__(self, app: ASGIApp, replica: str) -> None:
        self.app = app
        self.replica = replica

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REPLICA_HEADER] = self.replica
            await send(message)

        await self.app(scope, receive, send_with_header)


def settings_from(overrides: dict[str, Any] | None) -> Settings:
    """Settings from this process's environment, ``overrides`` (field names) taking precedence."""
    return Settings(**{key.lower(): value for key, value in (overrides or {}).items()})


@serve.deployment(
    name="MnistDigits",
    ray_actor_options={"num_cpus": 1},  # one core per replica: TORCH_THREADS is 1 by default
    max_ongoing_requests=64,  # the batcher groups what is in flight into forward passes
    health_check_period_s=10,
)
@serve.ingress()
class MnistDigits:
    """One replica: the service's app, built here with this replica's settings."""

    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        self.settings = settings_from(settings)
        self.replica_id = serve.get_replica_context().replica_tag

    def __serve_build_asgi_app__(self) -> FastAPI:
        # Serve calls this after __init__ and then runs the app's lifespan (the model loads).
        app = create_app(self.settings)
        app.add_middleware(ReplicaHeader, replica=self.replica_id)
        return app

    async def check_health(self) -> None:
        """Serve's periodic health check: the app's own ``GET /readyz``, in process."""
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://replica") as client:
            response = await client.get("/readyz")
        if response.status_code != 200:
            raise RuntimeError(f"/readyz answered {response.status_code}: {response.text}")


def app_builder(args: dict[str, Any]) -> Application:
    """The Serve application (``import_path: service.ray_serve:app_builder``).

    ``args`` (the config's ``args:``, or ``key=value`` after ``serve run``) are settings by
    field name (``model_path``, ``device``, ``batch_max_size``, ...), checked here so that a
    typo fails the deploy at once instead of every replica; unset ones come from each
    replica's environment.
    """
    args = dict(args or {})
    unknown = sorted(key for key in args if key.lower() not in Settings.model_fields)
    if unknown:
        known = ", ".join(Settings.model_fields)
        raise ValueError(f"unknown setting(s) {', '.join(unknown)}; known: {known}")
    settings_from(args)  # validates the values (raises pydantic's ValidationError)
    return MnistDigits.bind(args)
