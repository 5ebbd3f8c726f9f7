"""``POST /predict`` (one image) and ``POST /predict/batch`` (several, one forward pass).

Both take the same path: the route reads the form's files (:mod:`service.uploads`), the
batcher (:mod:`service.inference`) runs the pipeline (:class:`service.pipeline.DigitModel`)
on them together with other requests' uploads, and each answer is a
:class:`~service.schemas.Prediction` or a rejection, encoded by :func:`encoded`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from digitcore.formats import FORMAT_NAMES
from service.deps import BatcherDep, SettingsDep
from service.errors import error_responses
from service.pipeline import InputRejected, Upload
from service.schemas import BatchItem, BatchResponse, Prediction
from service.uploads import openapi_form, uploaded_files

router = APIRouter(tags=["predict"])

FORMATS = f"{FORMAT_NAMES} (a GIF's first frame), any mode"
IncludeImage = Annotated[
    bool, Query(description="also return the 28x28 image the model saw, as a base64 PNG")
]


def encoded(answer: BaseModel) -> Response:
    """The JSON response for a response model, encoded once by pydantic's serializer."""
    return Response(answer.__pydantic_serializer__.to_json(answer), media_type="application/json")


def batch_item(index: int, filename: str | None, outcome: Prediction | InputRejected) -> BatchItem:
    """One file's result in a batch: its prediction, or the status and error of its rejection."""
    if isinstance(outcome, InputRejected):
        return BatchItem(
            index=index,
            filename=filename,
            status=outcome.status,
            prediction=None,
            error=outcome.detail,
        )
    return BatchItem(index=index, filename=filename, status=200, prediction=outcome, error=None)


@router.post(
    "/predict",
    response_model=Prediction,
    responses=error_responses(400, 413, 415, 422, 503),
    summary="Recognize the digit in one image",
    description="Send the image as multipart field `file` (`curl -F file=@digit.png`). "
    f"Accepted: {FORMATS}. Dark ink on light paper, transparent canvases and off-centre digits "
    "are brought to MNIST form first; `?include_image=true` shows the result.",
    openapi_extra=openapi_form("file", f"the image: {FORMATS}"),
)
async def predict(
    request: Request, batcher: BatcherDep, include_image: IncludeImage = False
) -> Response:
    upload = (await uploaded_files(request, "file"))[0]
    (outcome,) = await batcher.submit([Upload(bytes(upload.data), include_image)])
    if isinstance(outcome, InputRejected):
        raise outcome
    return encoded(outcome)


@router.post(
    "/predict/batch",
    response_model=BatchResponse,
    responses=error_responses(400, 413, 422, 503),
    summary="Recognize the digits in several images at once",
    description="Send each image as a repeated multipart field `files` "
    "(`curl -F files=@a.png -F files=@b.png`), at most MAX_BATCH_FILES of them. The answer has "
    "one result per file, in order. A bad file does not fail the request: its result carries the "
    "status and error that `/predict` would have given it, and the good files are predicted "
    "together in one forward pass.",
    openapi_extra=openapi_form("files", f"the images: {FORMATS}", many=True),
)
async def predict_batch(
    request: Request,
    settings: SettingsDep,
    batcher: BatcherDep,
    include_image: IncludeImage = False,
) -> Response:
    files = await uploaded_files(request, "files")
    if len(files) > settings.max_batch_files:
        raise HTTPException(
            status_code=413,
            detail=f"{len(files)} files sent; at most {settings.max_batch_files} per request",
        )
    outcomes = await batcher.submit([Upload(bytes(f.data), include_image) for f in files])
    results = [
        batch_item(index, upload.filename, outcome)
        for index, (upload, outcome) in enumerate(zip(files, outcomes, strict=True))
    ]
    return encoded(BatchResponse(results=results))
