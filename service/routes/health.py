"""``GET /healthz`` (the process is alive) and ``GET /readyz`` (the model is loaded).

``/healthz`` is a constant, pre-encoded answer on the event loop: the cheapest route the
server has, so it stays prompt under load and serves as the benchmarks' floor.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from service.deps import NOT_READY
from service.errors import error_response, error_responses
from service.schemas import Health, Ready

router = APIRouter(tags=["health"])

_OK = b'{"status":"ok"}'
_READY = b'{"status":"ready"}'


@router.get("/healthz", response_model=Health, summary="Liveness: the process serves requests")
async def healthz() -> Response:
    return Response(_OK, media_type="application/json")


@router.get(
    "/readyz",
    response_model=Ready,
    responses=error_responses(503),
    summary="Readiness: 200 once the model is loaded, 503 before",
)
async def readyz(request: Request) -> Response:
    if request.app.state.live is None:
        return error_response(503, NOT_READY)
    return Response(_READY, media_type="application/json")
