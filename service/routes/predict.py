"""``POST /predict`` (one image) and ``POST /predict/batch`` (several, one forward pass).

A request flows: read the upload -> decode and preprocess (:mod:`service.images`; in a worker
thread unless it is a tiny PNG) -> the batched predictor (:mod:`service.inference`) -> JSON.
The usual ``/predict`` request reaches :func:`recognize` through :mod:`service.shortcut`,
without FastAPI's request handling; the route below serves every other one and is what
/docs describes.
"""

from __future__ import annotations

from typing import Annotated

import torch
from fastapi import APIRouter, File, HTTPException, Query, UploadFile
from fastapi.responses import Response
from pydantic_core import to_json

from service.deps import ImageWorkersDep, PredictorDep, SettingsDep
from service.errors import InputRejected, error_responses
from service.images import ImageWorkers, Prepared
from service.inference import Predictor
from service.schemas import BatchItem, BatchResponse, Prediction

router = APIRouter(tags=["predict"])

FORMATS = "PNG, JPEG, GIF (first frame), BMP, TIFF or WebP, any mode"
IncludeImage = Annotated[
    bool, Query(description="also return the 28x28 image the model saw, as a base64 PNG")
]


def to_prediction(probabilities: torch.Tensor, preview: str | None) -> Prediction:
    values = probabilities.tolist()
    digit = max(range(len(values)), key=values.__getitem__)
    return Prediction(
        digit=digit, confidence=values[digit], probabilities=values, input_image=preview
    )


def prediction_json(probabilities: torch.Tensor, preview: str | None) -> Response:
    """The :class:`Prediction` JSON for one row of probabilities, encoded directly.

    pydantic's own encoder, as the response model would use, without building the model:
    a quarter of ``json.dumps``'s cost.
    """
    values = probabilities.tolist()
    digit = max(range(len(values)), key=values.__getitem__)
    body = {"digit": digit, "confidence": values[digit], "probabilities": values}
    body["input_image"] = preview
    return Response(to_json(body), media_type="application/json")


async def recognize(
    data: bytes, include_image: bool, predictor: Predictor, workers: ImageWorkers
) -> Response:
    """One upload's answer: prepared (inline when tiny), predicted in a shared batch."""
    if workers.is_tiny(data):
        prepared = await workers.prepare_tiny(data, include_image)
    else:
        with predictor.expecting():
            prepared = await workers.prepare(data, include_image)
    probabilities = await predictor.predict(prepared.tensor.unsqueeze(0))
    return prediction_json(probabilities[0], prepared.preview)


@router.post(
    "/predict",
    response_model=Prediction,
    responses=error_responses(400, 413, 415, 422, 503),
    summary="Recognize the digit in one image",
    description="Send the image as multipart field `file` (`curl -F file=@digit.png`). "
    f"Accepted: {FORMATS}. Dark ink on light paper, transparent canvases and off-centre digits "
    "are brought to MNIST form first; `?include_image=true` shows the result.",
)
async def predict(
    file: Annotated[UploadFile, File(description=f"the image: {FORMATS}")],
    predictor: PredictorDep,
    workers: ImageWorkersDep,
    include_image: IncludeImage = False,
) -> Response:
    return await recognize(await file.read(), include_image, predictor, workers)


@router.post(
    "/predict/batch",
    response_model=BatchResponse,
    responses=error_responses(413, 422, 503),
    summary="Recognize the digits in several images at once",
    description="Send each image as a repeated multipart field `files` "
    "(`curl -F files=@a.png -F files=@b.png`), at most MAX_BATCH_FILES of them. The answer has "
    "one result per file, in order. A bad file does not fail the request: its result carries the "
    "status and error that `/predict` would have given it, and the good files are predicted "
    "together in one forward pass.",
)
async def predict_batch(
    files: Annotated[list[UploadFile], File(description=f"the images: {FORMATS}")],
    settings: SettingsDep,
    predictor: PredictorDep,
    workers: ImageWorkersDep,
    include_image: IncludeImage = False,
) -> BatchResponse:
    if len(files) > settings.max_batch_files:
        raise HTTPException(
            status_code=413,
            detail=f"{len(files)} files sent; at most {settings.max_batch_files} per request",
        )
    uploads = [await f.read() for f in files]
    with predictor.expecting():
        outcomes = await workers.prepare_many(uploads, include_image)
    good = [outcome for outcome in outcomes if isinstance(outcome, Prepared)]
    rows = iter(await predictor.predict(torch.stack([p.tensor for p in good])) if good else ())
    results = []
    for index, (upload, outcome) in enumerate(zip(files, outcomes, strict=True)):
        if isinstance(outcome, InputRejected):
            item = BatchItem(
                index=index,
                filename=upload.filename,
                status=outcome.status,
                prediction=None,
                error=outcome.detail,
            )
        else:
            prediction = to_prediction(next(rows), outcome.preview)
            item = BatchItem(
                index=index, filename=upload.filename, status=200, prediction=prediction, error=None
            )
        results.append(item)
    return BatchResponse(results=results)
