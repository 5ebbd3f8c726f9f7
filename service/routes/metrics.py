"""``GET /metrics``: the service's Prometheus metrics (open, like the health routes)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from service.metrics import CONTENT_TYPE

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format"}},
    summary="Prometheus metrics: HTTP traffic, predictions, batches, the served model",
)
async def prometheus_metrics(request: Request) -> Response:
    return Response(request.app.state.metrics.exposition(), media_type=CONTENT_TYPE)
