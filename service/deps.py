"""FastAPI dependencies: how routes get the settings, the batcher and the model's facts.

The lifespan puts them on ``app.state``; tests replace them with ``app.dependency_overrides``.
They are ``async`` so that resolving them costs no thread hop.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from service.config import Settings
from service.inference import Batcher
from service.pipeline import Outcome, Upload
from service.schemas import ModelInfo

NOT_READY = "the model is not loaded yet; retry shortly"

PredictionBatcher = Batcher[Upload, Outcome]


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def _loaded(request: Request, name: str):
    value = getattr(request.app.state, name, None)
    if value is None:
        raise HTTPException(status_code=503, detail=NOT_READY)
    return value


async def get_batcher(request: Request) -> PredictionBatcher:
    return _loaded(request, "batcher")


async def get_model_info(request: Request) -> ModelInfo:
    return _loaded(request, "model_info")


SettingsDep = Annotated[Settings, Depends(get_settings)]
BatcherDep = Annotated[PredictionBatcher, Depends(get_batcher)]
ModelInfoDep = Annotated[ModelInfo, Depends(get_model_info)]
