"""``POST /read``: the whole number in a picture (a meter reading, an amount, a year).

The route reads the form's file like ``/predict`` does and hands it to the same batcher and
pipeline (:class:`~service.pipeline.DigitModel`), which splits the picture into digits with
:func:`digitcore.segment.read_digits` and reads each with the served model.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from service.deps import BatcherDep
from service.errors import error_responses
from service.pipeline import MAX_NUMBER_DIGITS, InputRejected, NumberUpload
from service.routes.predict import FORMATS, encoded
from service.schemas import NumberReading
from service.uploads import openapi_form, uploaded_files

router = APIRouter(tags=["predict"])


@router.post(
    "/read",
    response_model=NumberReading,
    responses=error_responses(400, 413, 415, 422, 503),
    summary="Read the whole number in one image",
    description="Send a picture of a number, 1 to "
    f"{MAX_NUMBER_DIGITS} handwritten or printed digits in a row, as multipart field `file` "
    f"(`curl -F file=@number.jpg`). Accepted: {FORMATS}. The answer has the number and each "
    "digit, left to right, with its confidence and its box in the uploaded image's pixels. "
    "A line reader first reads the whole line and says how many digits it holds; digits that "
    "touch are then split where the model reads them best, and each digit's confidence weighs "
    "the model's reading of its ink with the line reader's. A picture with no digit, "
    f"or with more than {MAX_NUMBER_DIGITS}, is answered 422.",
    openapi_extra=openapi_form("file", f"the picture of the number: {FORMATS}"),
)
async def read_number(request: Request, batcher: BatcherDep) -> Response:
    upload = (await uploaded_files(request, "file"))[0]
    (outcome,) = await batcher.submit([NumberUpload(bytes(upload.data))])
    if isinstance(outcome, InputRejected):
        raise outcome
    return encoded(outcome)
