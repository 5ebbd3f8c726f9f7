"""Client errors: how each problem maps to a status, its JSON body, and its OpenAPI entry.

Every problem with a client's input is a 4xx with ``{"detail": "..."}``; nothing a client
sends reaches the generic 500 handler.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from digitcore.errors import (
    CorruptImageError,
    ImageInputError,
    ImageTooLargeError,
    NoDigitFoundError,
    UnsupportedImageError,
)
from service.schemas import ErrorDetail

log = logging.getLogger("service")

_STATUS_BY_ERROR: tuple[tuple[type[ImageInputError], int], ...] = (
    (UnsupportedImageError, 415),
    (CorruptImageError, 400),
    (ImageTooLargeError, 413),
    (NoDigitFoundError, 422),
)


class InputRejected(Exception):
    """An upload that cannot be predicted: the status and the reason for the client."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def rejection(exc: Exception) -> InputRejected:
    """The client-facing rejection for any exception raised while decoding client data."""
    for error_type, status in _STATUS_BY_ERROR:
        if isinstance(exc, error_type):
            return InputRejected(status, str(exc))
    if isinstance(exc, ImageInputError):
        return InputRejected(400, str(exc))
    log.warning("undecodable upload (%s: %s)", type(exc).__name__, exc, exc_info=exc)
    return InputRejected(400, f"the image could not be decoded ({type(exc).__name__})")


_EXAMPLES = {
    400: ("Corrupt or truncated image", "the PNG image is corrupt or truncated"),
    413: ("Body, image or batch too large", "the request body is over the 10 MiB limit"),
    415: (
        "Not an image, or an unsupported format",
        "the file is not an image in a supported format (PNG, JPEG, GIF, BMP, TIFF, WebP)",
    ),
    422: (
        "Missing or invalid field, or no digit in the image",
        "multipart field 'file' is missing: send it as multipart/form-data field 'file' "
        "(curl -F file=@digit.png ...)",
    ),
    503: ("The model is not loaded yet", "the model is not loaded yet; retry shortly"),
}


def error_responses(*codes: int) -> dict[int | str, dict]:
    """OpenAPI ``responses=`` entries for ``codes``: the ErrorDetail model and an example each."""
    return {
        code: {
            "model": ErrorDetail,
            "description": _EXAMPLES[code][0],
            "content": {"application/json": {"example": {"detail": _EXAMPLES[code][1]}}},
        }
        for code in codes
    }


def _describe_validation(exc: RequestValidationError, content_type: str) -> str:
    problems = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        where, name = (loc[0], loc[1]) if len(loc) > 1 else ("request", ".".join(loc))
        how = f"send it as multipart/form-data field '{name}' (curl -F {name}=@digit.png ...)"
        if where == "body" and error.get("type") == "missing":
            if content_type.startswith("multipart/form-data"):
                problems.append(f"multipart field '{name}' is missing: {how}")
            else:
                sent = content_type or "none"
                problems.append(
                    f"the request is not multipart/form-data (Content-Type: {sent}): {how}"
                )
        elif where == "body" and "UploadFile" in str(error.get("msg")):
            problems.append(f"multipart field '{name}' holds text, not a file: {how}")
        elif where == "body":
            problems.append(f"multipart field '{name}': {error.get('msg')}")
        else:
            problems.append(f"{where} parameter '{name}': {error.get('msg')}")
    return "; ".join(problems) or "invalid request"


async def _validation_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    content_type = request.headers.get("content-type", "").lower()
    return JSONResponse({"detail": _describe_validation(exc, content_type)}, status_code=422)


async def _rejected_handler(request: Request, exc: InputRejected) -> JSONResponse:
    return JSONResponse({"detail": exc.detail}, status_code=exc.status)


class UploadTooLarge(HTTPException):
    """Raised from the body-limit middleware's receive(); FastAPI turns it into a 413."""

    def __init__(self, detail: str) -> None:
        super().__init__(status_code=413, detail=detail)


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(InputRejected, _rejected_handler)
