"""FastAPI dependencies: how routes get the settings, the live model, its batcher and facts.

The lifespan puts them on ``app.state``; tests replace them with ``app.dependency_overrides``.
They are ``async`` so that resolving them costs no thread hop.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from service.config import Settings
from service.inference import Batcher
from service.live import LiveModel
from service.pipeline import Outcome, Upload
from service.schemas import ModelInfo

NOT_READY = "the model is not loaded yet; retry shortly"

PredictionBatcher = Batcher[Upload, Outcome]


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_live_model(request: Request) -> LiveModel:
    live = request.app.state.live
    if live is None:
        raise HTTPException(status_code=503, detail=NOT_READY)
    return live


async def get_batcher(request: Request) -> PredictionBatcher:
    return (await get_live_model(request)).batcher


async def get_model_info(live: Annotated[LiveModel, Depends(get_live_model)]) -> ModelInfo:
    return live.info


SettingsDep = Annotated[Settings, Depends(get_settings)]
LiveModelDep = Annotated[LiveModel, Depends(get_live_model)]
BatcherDep = Annotated[PredictionBatcher, Depends(get_batcher)]
ModelInfoDep = Annotated[ModelInfo, Depends(get_model_info)]
