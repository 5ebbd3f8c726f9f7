"""``GET /model``: which checkpoint is served, its training metadata, and the device."""

from __future__ import annotations

from fastapi import APIRouter

from service.deps import ModelInfoDep
from service.errors import error_responses
from service.schemas import ModelInfo

router = APIRouter(tags=["model"])


@router.get(
    "/model",
    response_model=ModelInfo,
    responses=error_responses(503),
    summary="The served model: architecture, parameters, checkpoint sha256, metadata, device",
)
async def model_info(info: ModelInfoDep) -> ModelInfo:
    return info
