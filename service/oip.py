"""The Open Inference Protocol v2 (KServe v2 / Triton HTTP): its JSON shapes and tensor codec.

The pydantic models are the protocol's REST objects (server and model metadata, the inference
request and response, the error). The codec reads an inference request body, JSON alone or
JSON followed by binary tensor data (the binary tensor data extension: the JSON part's length
in the ``Inference-Header-Content-Length`` header, ``parameters.binary_data_size`` on each
input sent in binary), and writes a response the same way: outputs whose
``parameters.binary_data`` (or the request's ``parameters.binary_data_output``) is true go after
the JSON as little-endian row-major bytes. Nothing here knows the served model.
"""

from __future__ import annotations

import base64
import binascii
import math
import struct
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

HEADER_LENGTH = "Inference-Header-Content-Length"
BINARY_EXTENSION = "binary_tensor_data"
NUMPY_TYPES = {"FP32": "<f4", "INT64": "<i8"}


class ProtocolError(Exception):
    """A request the protocol refuses: the HTTP status and the ``error`` message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ErrorResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"error": "model 'mnist-x' is not served here"}]}
    )

    error: str = Field(description="what was wrong, for a person to read")


class ServerMetadata(BaseModel):
    name: str = Field(description="the server's name")
    version: str = Field(description="the server's version")
    extensions: list[str] = Field(description="protocol extensions the server supports")


class ServerLive(BaseModel):
    live: bool = Field(description="always true while the process serves requests")


class ServerReady(BaseModel):
    ready: bool = Field(description="true once the model is loaded (503 before)")


class ModelReady(BaseModel):
    name: str = Field(description="the model's name")
    ready: bool = Field(description="true once the model is loaded (503 before)")


class TensorMetadata(BaseModel):
    name: str = Field(description="the tensor's name")
    datatype: str = Field(description="the protocol's datatype: FP32, INT64, BYTES, ...")
    shape: list[int] = Field(description="the tensor's shape; -1 is any size (the batch)")


class ModelMetadata(BaseModel):
    name: str = Field(description="the model's name")
    versions: list[str] = Field(description="the versions served (one: the checkpoint's)")
    platform: str = Field(description="the framework the model runs on")
    inputs: list[TensorMetadata] = Field(description="the inputs the model takes")
    outputs: list[TensorMetadata] = Field(description="the outputs the model gives")


class RequestInput(BaseModel):
    name: str = Field(description="the input's name, as in the model's metadata")
    shape: list[int] = Field(description="the tensor's shape")
    datatype: str = Field(description="the tensor's datatype, as in the model's metadata")
    parameters: dict[str, Any] | None = Field(
        None, description="`binary_data_size`: the tensor is sent in binary after the JSON"
    )
    data: list[Any] | None = Field(
        None,
        description="the elements, flat or nested, row-major (absent when sent in binary); "
        "BYTES elements in JSON are base64 strings",
    )


class RequestOutput(BaseModel):
    name: str = Field(description="an output's name, as in the model's metadata")
    parameters: dict[str, Any] | None = Field(
        None, description="`binary_data`: true to get this output in binary after the JSON"
    )


class InferenceRequest(BaseModel):
    id: str | None = Field(None, description="an identifier the response echoes")
    parameters: dict[str, Any] | None = Field(
        None, description="`binary_data_output`: true to get every output in binary"
    )
    inputs: list[RequestInput] = Field(description="the input tensors")
    outputs: list[RequestOutput] | None = Field(
        None, description="the outputs wanted (default: all of them, as JSON)"
    )


class ResponseOutput(BaseModel):
    name: str = Field(description="the output's name")
    shape: list[int] = Field(description="the tensor's shape")
    datatype: str = Field(description="the tensor's datatype")
    parameters: dict[str, Any] | None = Field(
        None, description="`binary_data_size` when the tensor follows the JSON in binary"
    )
    data: list[Any] | None = Field(None, description="the elements, flat, row-major")


class InferenceResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    model_name: str = Field(description="the model that answered")
    model_version: str | None = Field(None, description="its version")
    id: str | None = Field(None, description="the request's id")
    parameters: dict[str, Any] | None = Field(None, description="response parameters")
    outputs: list[ResponseOutput] = Field(description="the output tensors")


# --- reading a request ----------------------------------------------------------------------


def header_length(value: str | None) -> int | None:
    """The ``Inference-Header-Content-Length`` header as a length (None when absent)."""
    if value is None:
        return None
    try:
        length = int(value)
    except ValueError:
        length = -1
    if length < 0:
        raise ProtocolError(400, f"{HEADER_LENGTH} must be a byte count, not {value!r}")
    return length


def parse_request(body: bytes, json_length: int | None) -> tuple[InferenceRequest, list[Any]]:
    """The request and, per input, its binary data (``bytes``) or its JSON ``data`` list."""
    if json_length is not None and json_length > len(body):
        raise ProtocolError(
            400, f"{HEADER_LENGTH} is {json_length} but the body has only {len(body)} bytes"
        )
    header = body if json_length is None else body[:json_length]
    binary = memoryview(body)[len(header) :]
    try:
        request = InferenceRequest.model_validate_json(header)
    except ValidationError as exc:
        raise ProtocolError(400, f"invalid inference request: {_describe(exc)}") from None
    contents: list[Any] = []
    offset = 0
    for tensor in request.inputs:
        size = (tensor.parameters or {}).get("binary_data_size")
        if size is None:
            if tensor.data is None:
                raise ProtocolError(400, f"input '{tensor.name}' has neither data nor binary data")
            contents.append(tensor.data)
            continue
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ProtocolError(400, f"input '{tensor.name}': binary_data_size must be a count")
        if tensor.data is not None:
            raise ProtocolError(400, f"input '{tensor.name}' has both data and binary_data_size")
        if offset + size > len(binary):
            raise ProtocolError(
                400,
                f"input '{tensor.name}' declares {size} bytes of binary data but the body holds "
                f"{len(binary) - offset} more"
                + ("" if json_length is not None else f" (no {HEADER_LENGTH} header was sent)"),
            )
        contents.append(bytes(binary[offset : offset + size]))
        offset += size
    if offset != len(binary):
        raise ProtocolError(
            400, f"the body has {len(binary) - offset} bytes after the inputs' binary data"
        )
    return request, contents


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error.get("loc", ())) or "body"
        problems.append(f"{where}: {error.get('msg')}")
    return "; ".join(problems[:5])


def element_count(shape: list[int]) -> int:
    return math.prod(shape)


def numeric_tensor(tensor: RequestInput, content: Any, dtype: str) -> np.ndarray:
    """An FP32/INT64 input (binary or JSON) as a numpy array of ``tensor.shape``."""
    count = element_count(tensor.shape)
    if isinstance(content, bytes):
        itemsize = np.dtype(dtype).itemsize
        if len(content) != count * itemsize:
            raise ProtocolError(
                400,
                f"input '{tensor.name}' has {len(content)} bytes of binary data; shape "
                f"{tensor.shape} of {tensor.datatype} takes {count * itemsize}",
            )
        return np.frombuffer(content, dtype=dtype).reshape(tensor.shape)
    try:
        array = np.asarray(content)
    except ValueError:
        raise ProtocolError(400, f"input '{tensor.name}': data is not a regular array") from None
    if array.dtype.kind not in "iuf":
        raise ProtocolError(400, f"input '{tensor.name}': data must be numbers")
    if array.size != count:
        raise ProtocolError(
            400,
            f"input '{tensor.name}' has {array.size} elements; shape {tensor.shape} takes {count}",
        )
    return array.astype(dtype).reshape(tensor.shape)


def bytes_tensor(tensor: RequestInput, content: Any) -> list[bytes]:
    """A BYTES input's elements: binary (each a 4-byte little-endian length, then the bytes)
    or JSON (each a base64 string)."""
    count = element_count(tensor.shape)
    if isinstance(content, bytes):
        elements = deserialize_bytes(content, tensor.name)
    else:
        elements = []
        for index, element in enumerate(_flatten(content)):
            if not isinstance(element, str):
                raise ProtocolError(
                    400, f"input '{tensor.name}' element {index}: BYTES data must be strings"
                )
            try:
                elements.append(base64.b64decode(element, validate=True))
            except (binascii.Error, ValueError):
                raise ProtocolError(
                    400,
                    f"input '{tensor.name}' element {index} is not base64: BYTES elements in "
                    "JSON are the file's bytes base64-encoded (or send them as binary data)",
                ) from None
    if len(elements) != count:
        raise ProtocolError(
            400,
            f"input '{tensor.name}' has {len(elements)} elements; shape {tensor.shape} "
            f"takes {count}",
        )
    return elements


def _flatten(data: list[Any]) -> list[Any]:
    flat: list[Any] = []
    for element in data:
        if isinstance(element, list):
            flat.extend(_flatten(element))
        else:
            flat.append(element)
    return flat


def deserialize_bytes(data: bytes, name: str = "") -> list[bytes]:
    """The elements of a binary BYTES tensor (each a ``<I`` length, then that many bytes)."""
    elements = []
    offset = 0
    while offset < len(data):
        if offset + 4 > len(data):
            raise ProtocolError(400, f"input '{name}': truncated BYTES element length")
        (size,) = struct.unpack_from("<I", data, offset)
        offset += 4
        if offset + size > len(data):
            raise ProtocolError(
                400,
                f"input '{name}' element {len(elements)}: declares {size} bytes, "
                f"{len(data) - offset} left",
            )
        elements.append(data[offset : offset + size])
        offset += size
    return elements


def serialize_bytes(elements: list[bytes]) -> bytes:
    """A binary BYTES tensor: each element's ``<I`` length, then its bytes."""
    return b"".join(struct.pack("<I", len(element)) + element for element in elements)


# --- writing a response ---------------------------------------------------------------------


def requested_outputs(request: InferenceRequest, available: list[str]) -> list[tuple[str, bool]]:
    """The outputs to return, in order, each with whether it goes in binary."""
    default_binary = bool((request.parameters or {}).get("binary_data_output", False))
    if request.outputs is None:
        return [(name, default_binary) for name in available]
    chosen = []
    for output in request.outputs:
        if output.name not in available:
            raise ProtocolError(
                400, f"unknown output '{output.name}'; this model gives {', '.join(available)}"
            )
        parameters = output.parameters or {}
        if parameters.get("classification"):
            raise ProtocolError(400, "the classification extension is not supported")
        chosen.append((output.name, bool(parameters.get("binary_data", default_binary))))
    return chosen


def encode_response(
    response: InferenceResponse, tensors: dict[str, np.ndarray], wanted: list[tuple[str, bool]]
) -> tuple[bytes, int | None]:
    """The body for ``response`` with ``wanted`` outputs of ``tensors`` filled in, and the JSON
    part's length when binary data follows it (``None`` for a JSON-only body)."""
    blobs = []
    for name, binary in wanted:
        array = tensors[name]
        datatype = next(k for k, v in NUMPY_TYPES.items() if np.dtype(v) == array.dtype)
        output = ResponseOutput.model_construct(
            name=name, shape=list(array.shape), datatype=datatype, parameters=None, data=None
        )
        if binary:
            blob = np.ascontiguousarray(array).tobytes()
            output.parameters = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            output.data = array.reshape(-1).tolist()
        response.outputs.append(output)
    header = response.__pydantic_serializer__.to_json(response, exclude_none=True)
    if not blobs:
        return header, None
    return header + b"".join(blobs), len(header)
