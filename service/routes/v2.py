"""The Open Inference Protocol v2 REST routes (KServe v2, Triton HTTP) under ``/v2``.

Two models, both the served checkpoint behind the one batcher that ``/predict`` uses:

- ``mnist`` takes FP32 ``[-1, 1, 28, 28]``, images already normalized as the model takes them
  (MNIST-form 28x28 ink in [0, 1], then ``(x - 0.1307) / 0.3081``), and skips decoding;
- ``mnist-images`` takes BYTES ``[-1]``, each element an encoded image file (PNG, JPEG, ...),
  and runs it through the same pipeline as ``/predict``.

Both give ``probabilities`` FP32 ``[-1, 10]`` and ``digit`` INT64 ``[-1]``. The version of
both is the first 12 hex digits of the checkpoint file's sha256 (:data:`VERSION_DIGITS`), so a
retrained or reloaded checkpoint is a new version. Tensors travel as JSON or with the binary
tensor data extension (:mod:`service.oip`). Errors are ``{"error": "..."}``: 400 for a bad
request, 404 for an unknown model or version, 503 before the model is loaded. The routes
read the body themselves, as KServe's REST routes do; :class:`V2Route` gives every error of
these routes (their dependencies' too) the protocol's shape.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
import torch
from fastapi import APIRouter, Depends, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from digitcore import IMAGE_SIZE, MNIST_MEAN, MNIST_STD, NUM_CLASSES
from service.config import Settings
from service.deps import NOT_READY, BatcherDep, ModelInfoDep, SettingsDep
from service.errors import UploadTooLarge
from service.oip import (
    BINARY_EXTENSION,
    HEADER_LENGTH,
    ErrorResponse,
    InferenceRequest,
    InferenceResponse,
    ModelMetadata,
    ModelReady,
    ProtocolError,
    ServerLive,
    ServerMetadata,
    ServerReady,
    TensorMetadata,
    bytes_tensor,
    encode_response,
    header_length,
    numeric_tensor,
    parse_request,
    requested_outputs,
)
from service.pipeline import InputRejected, Normalized, Upload
from service.schemas import ModelInfo, Prediction

# Names a client sees; the models' names are settings (V2_MODEL_NAME, V2_IMAGES_MODEL_NAME).
SERVER_NAME = "mnist-digits"
TENSOR_MODEL = Settings.model_fields["v2_model_name"].default
IMAGE_MODEL = Settings.model_fields["v2_images_model_name"].default
TENSOR_INPUT = "input"
IMAGE_INPUT = "image"
PROBABILITIES = "probabilities"
DIGIT = "digit"
PLATFORM = "pytorch"
VERSION_DIGITS = 12  # the model version: this many leading hex digits of the checkpoint's sha256
OUTPUTS = [
    TensorMetadata(name=PROBABILITIES, datatype="FP32", shape=[-1, NUM_CLASSES]),
    TensorMetadata(name=DIGIT, datatype="INT64", shape=[-1]),
]


@dataclass(frozen=True)
class ServedModel:
    name: str
    takes_images: bool
    input: TensorMetadata
    summary: str


TENSOR_SUMMARY = (
    f"normalized 1x28x28 images: MNIST-form ink in [0, 1], then (x - {MNIST_MEAN}) / {MNIST_STD}"
)
IMAGE_SUMMARY = "encoded image files (PNG, JPEG, ...), read as /predict reads them"


@functools.cache
def served_models(tensor_name: str, images_name: str) -> dict[str, ServedModel]:
    """The two models under the names the settings give them (built once per pair of names)."""
    tensor = TensorMetadata(
        name=TENSOR_INPUT, datatype="FP32", shape=[-1, 1, IMAGE_SIZE, IMAGE_SIZE]
    )
    images = TensorMetadata(name=IMAGE_INPUT, datatype="BYTES", shape=[-1])
    return {
        tensor_name: ServedModel(tensor_name, False, tensor, TENSOR_SUMMARY),
        images_name: ServedModel(images_name, True, images, IMAGE_SUMMARY),
    }


async def get_served_models(settings: SettingsDep) -> dict[str, ServedModel]:
    return served_models(settings.v2_model_name, settings.v2_images_model_name)


ServedModels = Annotated[dict[str, ServedModel], Depends(get_served_models)]


def model_version(info: ModelInfo) -> str:
    return info.sha256[:VERSION_DIGITS]


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The protocol's error: ``{"error": "..."}`` with ``status``."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class V2Route(APIRoute):
    """A route whose errors, its dependencies' included, are the protocol's ``{"error"}``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except ProtocolError as exc:
                return error(exc.status, exc.message)
            except InputRejected as exc:
                return error(exc.status, exc.detail)
            except UploadTooLarge as exc:
                return error(exc.status_code, str(exc.detail), {"connection": "close"})
            except HTTPException as exc:
                return error(exc.status_code, str(exc.detail), exc.headers)
            except RequestValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg')}" for e in exc.errors()
                )
                return error(400, problems or "invalid request")

        return answer


router = APIRouter(prefix="/v2", tags=["v2 inference protocol"], route_class=V2Route)
# Liveness and readiness stay open when the API has keys, as /healthz and /readyz do.
health_router = APIRouter(prefix="/v2", tags=["v2 inference protocol"], route_class=V2Route)

_EXAMPLES = {
    400: (
        "Bad request: wrong shape, datatype or input; undecodable image",
        "input 'input' of model 'mnist' has shape [2, 28, 28]; it takes [-1, 1, 28, 28]",
    ),
    404: (
        "Unknown model or version",
        "model 'mnist-x' is not served here (models: mnist, mnist-images)",
    ),
    413: ("Body too large", "the request body is over the 10 MiB limit"),
    503: ("The model is not loaded yet", NOT_READY),
}


def v2_errors(*codes: int) -> dict[int | str, dict]:
    """OpenAPI ``responses=`` entries: the protocol's error model and an example each."""
    return {
        code: {
            "model": ErrorResponse,
            "description": _EXAMPLES[code][0],
            "content": {"application/json": {"example": {"error": _EXAMPLES[code][1]}}},
        }
        for code in codes
    }


def served(
    models: dict[str, ServedModel],
    name: str,
    version: str | None = None,
    info: ModelInfo | None = None,
) -> ServedModel:
    """The model called ``name`` (404 otherwise), at ``version`` if one is asked for."""
    model = models.get(name)
    if model is None:
        raise ProtocolError(404, f"model '{name}' is not served here (models: {', '.join(models)})")
    if version is not None and info is not None and version != model_version(info):
        raise ProtocolError(
            404, f"model '{name}' has no version '{version}' (served: {model_version(info)})"
        )
    return model


# --- server ---------------------------------------------------------------------------------


@router.get("", response_model=ServerMetadata, summary="Server metadata: name, version, extensions")
async def server_metadata(request: Request) -> ServerMetadata:
    return ServerMetadata(
        name=SERVER_NAME, version=request.app.version, extensions=[BINARY_EXTENSION]
    )


@health_router.get("/health/live", response_model=ServerLive, summary="Liveness: 200 while serving")
async def server_live() -> ServerLive:
    return ServerLive(live=True)


@health_router.get(
    "/health/ready",
    response_model=ServerReady,
    responses=v2_errors(503),
    summary="Readiness: 200 once the model is loaded, 503 before",
)
async def server_ready(batcher: BatcherDep) -> ServerReady:
    return ServerReady(ready=True)


# --- models ---------------------------------------------------------------------------------


def _metadata(model: ServedModel, info: ModelInfo) -> ModelMetadata:
    return ModelMetadata(
        name=model.name,
        versions=[model_version(info)],
        platform=PLATFORM,
        inputs=[model.input],
        outputs=OUTPUTS,
    )


_METADATA = {
    "response_model": ModelMetadata,
    "responses": v2_errors(404, 503),
    "summary": "Model metadata: versions, platform, inputs and outputs",
    "description": f"`{TENSOR_MODEL}`: {TENSOR_SUMMARY}. `{IMAGE_MODEL}`: "
    f"{IMAGE_SUMMARY}. The version is the first {VERSION_DIGITS} hex digits of the "
    "checkpoint's sha256.",
}


@router.get("/models/{name}", **_METADATA)
async def model_metadata(name: str, info: ModelInfoDep, models: ServedModels) -> ModelMetadata:
    return _metadata(served(models, name), info)


@router.get("/models/{name}/versions/{version}", **_METADATA)
async def model_version_metadata(
    name: str, version: str, info: ModelInfoDep, models: ServedModels
) -> ModelMetadata:
    return _metadata(served(models, name, version, info), info)


_READY = {
    "response_model": ModelReady,
    "responses": v2_errors(404, 503),
    "summary": "Model readiness: 200 once loaded, 503 before, 404 for an unknown model",
}


@router.get("/models/{name}/ready", **_READY)
async def model_ready(name: str, batcher: BatcherDep, models: ServedModels) -> ModelReady:
    return ModelReady(name=served(models, name).name, ready=True)


@router.get("/models/{name}/versions/{version}/ready", **_READY)
async def model_version_ready(
    name: str, version: str, info: ModelInfoDep, models: ServedModels
) -> ModelReady:
    return ModelReady(name=served(models, name, version, info).name, ready=True)


# --- inference ------------------------------------------------------------------------------


def _inline(schema: dict) -> dict:
    """A pydantic JSON schema with its ``$defs`` inlined (for ``openapi_extra``)."""
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(value) for value in node]
        return node

    return resolve(schema)


_BINARY_BODY = (
    f"the JSON inference request ({HEADER_LENGTH} bytes), then each input with "
    "`parameters.binary_data_size` as that many bytes: little-endian, row-major; a BYTES element "
    "is a 4-byte little-endian length, then the bytes"
)
_INFER = {
    "response_model": InferenceResponse,
    "responses": {
        200: {
            "description": f"The outputs. With binary outputs requested, the body is the JSON "
            f"response ({HEADER_LENGTH} bytes, also a response header), then each output with "
            "`parameters.binary_data_size` as that many bytes.",
            "content": {"application/octet-stream": {"schema": {"type": "string"}}},
        },
        **v2_errors(400, 404, 413, 503),
    },
    "summary": "Run inference: JSON or binary tensors",
    "description": f"`{TENSOR_MODEL}`: input `{TENSOR_INPUT}` FP32 [-1, 1, 28, 28], "
    f"{TENSOR_SUMMARY}. `{IMAGE_MODEL}`: input `{IMAGE_INPUT}` BYTES [-1], "
    f"{IMAGE_SUMMARY}; in JSON each element is the file base64-encoded. Outputs "
    f"`{PROBABILITIES}` FP32 [-1, 10] and `{DIGIT}` INT64 [-1]. Outputs come as JSON unless "
    "`parameters.binary_data` (per output) or `parameters.binary_data_output` (request) asks for "
    "binary. An image that cannot be read fails the request (400) naming its element.",
    "openapi_extra": {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": _inline(InferenceRequest.model_json_schema())},
                "application/octet-stream": {
                    "schema": {"type": "string", "description": _BINARY_BODY}
                },
            },
        }
    },
}
HeaderLength = Annotated[
    str | None,
    Header(
        alias=HEADER_LENGTH,
        description="length of the JSON part when binary tensor data follows it",
    ),
]


@router.post("/models/{name}/infer", **_INFER)
async def infer(
    name: str,
    request: Request,
    batcher: BatcherDep,
    info: ModelInfoDep,
    settings: SettingsDep,
    models: ServedModels,
    inference_header: HeaderLength = None,
) -> Response:
    return await _infer(served(models, name), request, batcher, info, settings.max_batch_files)


@router.post("/models/{name}/versions/{version}/infer", **_INFER)
async def infer_version(
    name: str,
    version: str,
    request: Request,
    batcher: BatcherDep,
    info: ModelInfoDep,
    settings: SettingsDep,
    models: ServedModels,
    inference_header: HeaderLength = None,
) -> Response:
    model = served(models, name, version, info)
    return await _infer(model, request, batcher, info, settings.max_batch_files)


async def _infer(
    model: ServedModel, request: Request, batcher: BatcherDep, info: ModelInfo, max_images: int
) -> Response:
    body = await request.body()
    if request.headers.get("content-encoding", "identity").lower() != "identity":
        raise ProtocolError(400, "compressed request bodies are not supported; send it plain")
    inference, contents = parse_request(body, header_length(request.headers.get(HEADER_LENGTH)))
    if len(inference.inputs) != 1 or inference.inputs[0].name != model.input.name:
        sent = ", ".join(f"'{tensor.name}'" for tensor in inference.inputs) or "none"
        raise ProtocolError(
            400, f"model '{model.name}' takes one input, '{model.input.name}' (sent: {sent})"
        )
    tensor, content = inference.inputs[0], contents[0]
    _check_input(model, tensor.datatype, tensor.shape)
    wanted = requested_outputs(inference, [PROBABILITIES, DIGIT])
    if not model.takes_images:
        array = numeric_tensor(tensor, content, "<f4")
        if not np.isfinite(array).all():
            raise ProtocolError(400, f"input '{tensor.name}' holds NaN or infinite values")
        images = torch.from_numpy(array.copy())
        items: list[Upload | Normalized] = [Normalized(image) for image in images]
    else:
        files = bytes_tensor(tensor, content)
        if len(files) > max_images:
            raise ProtocolError(400, f"{len(files)} images sent; at most {max_images} per request")
        items = [Upload(data) for data in files]
    outcomes = await batcher.submit(items)
    rejected = [
        f"element {index}: {outcome.detail}"
        for index, outcome in enumerate(outcomes)
        if isinstance(outcome, InputRejected)
    ]
    if rejected:
        raise ProtocolError(400, f"input '{tensor.name}' " + "; ".join(rejected))
    predictions: list[Prediction] = outcomes  # type: ignore[assignment]
    tensors = {
        PROBABILITIES: np.array([p.probabilities for p in predictions], dtype=np.float32).reshape(
            -1, NUM_CLASSES
        ),
        DIGIT: np.array([p.digit for p in predictions], dtype=np.int64),
    }
    response = InferenceResponse.model_construct(
        model_name=model.name,
        model_version=model_version(info),
        id=inference.id,
        parameters=None,
        outputs=[],
    )
    content_bytes, json_length = encode_response(response, tensors, wanted)
    if json_length is None:
        return Response(content_bytes, media_type="application/json")
    return Response(
        content_bytes,
        media_type="application/octet-stream",
        headers={HEADER_LENGTH: str(json_length)},
    )


def _check_input(model: ServedModel, datatype: str, shape: list[int]) -> None:
    expected = model.input
    if datatype != expected.datatype:
        raise ProtocolError(
            400,
            f"input '{expected.name}' of model '{model.name}' is {expected.datatype}, "
            f"not {datatype}",
        )
    fits = len(shape) == len(expected.shape) and all(
        want in (-1, got) for want, got in zip(expected.shape, shape, strict=True)
    )
    if not fits or not shape or shape[0] < 1 or math.prod(shape) < 1:
        raise ProtocolError(
            400,
            f"input '{expected.name}' of model '{model.name}' has shape {shape}; it takes "
            f"{expected.shape} (a batch of at least one)",
        )


@router.api_route(
    "/{path:path}", methods=["GET", "POST"], include_in_schema=False, summary="Not found"
)
async def not_found(path: str, request: Request) -> Response:
    return error(404, f"no v2 endpoint {request.method} /v2/{path}")
