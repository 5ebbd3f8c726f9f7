"""Client errors: how each problem maps to a status, its JSON body, and its OpenAPI entry.

Every problem with a client's input is a 4xx with ``{"detail": "..."}``; nothing a client
sends reaches the generic 500 handler.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from digitcore.formats import FORMAT_NAMES
from service.live import ModelUnusable
from service.pipeline import InputRejected
from service.schemas import ErrorDetail


def error_response(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The one shape of every error: ``{"detail": "..."}`` with ``status``."""
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


_EXAMPLES = {
    400: ("Corrupt or truncated image", "the PNG image is corrupt or truncated"),
    413: ("Body, image or batch too large", "the request body is over the 10 MiB limit"),
    415: (
        "Not an image, or an unsupported format",
        f"the file is not an image in a supported format ({FORMAT_NAMES})",
    ),
    422: (
        "Missing or invalid field, or no digit in the image",
        "multipart field 'file' is missing: send it as multipart/form-data field 'file' "
        "(curl -F file=@digit.png ...)",
    ),
    401: ("No API key, or not a valid one", "the API key is not valid"),
    403: ("A key that may not do this", "this API key may not reload the model"),
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


def _describe_validation(exc: RequestValidationError) -> str:
    problems = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        where, name = (loc[0], loc[1]) if len(loc) > 1 else ("request", ".".join(loc))
        problems.append(f"{where} parameter '{name}': {error.get('msg')}")
    return "; ".join(problems) or "invalid request"


async def _validation_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    return error_response(422, _describe_validation(exc))


async def _http_handler(request: Request, exc: HTTPException) -> JSONResponse:
    return error_response(exc.status_code, str(exc.detail), exc.headers)


async def _unusable_handler(request: Request, exc: ModelUnusable) -> JSONResponse:
    return error_response(422, f"not reloaded, the served model is unchanged: {exc}")


async def _rejected_handler(request: Request, exc: InputRejected) -> JSONResponse:
    return error_response(exc.status, exc.detail)


class UploadTooLarge(HTTPException):
    """Raised from the body-limit middleware's receive(); FastAPI turns it into a 413."""

    def __init__(self, detail: str) -> None:
        super().__init__(status_code=413, detail=detail)


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, _http_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(InputRejected, _rejected_handler)
    app.add_exception_handler(ModelUnusable, _unusable_handler)
