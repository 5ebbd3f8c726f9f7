"""The Open Inference Protocol v2 routes: tritonclient against a real server, httpx in-process.

The end-to-end tests drive ``python -m service`` with the real ``tritonclient.http`` client
(binary tensors, its default, and JSON tensors); the in-process tests pin the JSON shapes,
the error bodies and the OpenAPI description.
"""

from __future__ import annotations

import base64
import json
import struct

import httpx
import numpy as np
import pytest
import torch

from digitcore.preprocess import normalize
from service.app import create_app
from service.pipeline import DigitModel, InputRejected, Normalized, Upload
from service.routes.v2 import IMAGE_MODEL, TENSOR_MODEL, VERSION_DIGITS
from testkit.servers import serve
from tests.service.conftest import client_for, make_settings, running

tritonclient_http = pytest.importorskip("tritonclient.http")
from tritonclient.utils import InferenceServerException  # noqa: E402

COUNT = 8


@pytest.fixture(scope="module")
def normalized(mnist_test) -> np.ndarray:
    """The first MNIST test digits as the ``mnist`` model takes them: float32 N x 1 x 28 x 28."""
    images, _ = mnist_test
    return normalize(images[:COUNT].float().unsqueeze(1) / 255).numpy()


@pytest.fixture(scope="module")
def pngs(mnist_png_samples) -> list[bytes]:
    return [data for data, _ in mnist_png_samples[:COUNT]]


@pytest.fixture(scope="module")
def digit_model(small_checkpoint) -> DigitModel:
    return DigitModel.load(small_checkpoint, torch.device("cpu"))


@pytest.fixture(scope="module")
def server(tmp_path_factory, small_checkpoint):
    with serve(tmp_path_factory.mktemp("v2"), model_path=str(small_checkpoint)) as running_server:
        yield running_server


@pytest.fixture(scope="module")
def triton(server):
    client = tritonclient_http.InferenceServerClient(server.url.removeprefix("http://"))
    yield client
    client.close()


def tensor_input(array: np.ndarray, binary: bool):
    tensor = tritonclient_http.InferInput("input", list(array.shape), "FP32")
    return tensor.set_data_from_numpy(array, binary_data=binary)


def image_input(files: list[bytes], binary: bool):
    tensor = tritonclient_http.InferInput("image", [len(files)], "BYTES")
    if binary:
        return tensor.set_data_from_numpy(np.array(files, dtype=np.object_))
    encoded = [base64.b64encode(data) for data in files]  # JSON BYTES elements are base64
    return tensor.set_data_from_numpy(np.array(encoded, dtype=np.object_), binary_data=False)


# --- the real client against a real server ----------------------------------------------


def test_server_and_models_are_live_and_ready(triton):
    assert triton.is_server_live()
    assert triton.is_server_ready()
    assert triton.is_model_ready(TENSOR_MODEL)
    assert triton.is_model_ready(IMAGE_MODEL)
    assert not triton.is_model_ready("no-such-model")
    metadata = triton.get_server_metadata()
    assert "binary_tensor_data" in metadata["extensions"]
    assert metadata["name"] and metadata["version"]


def test_model_metadata_for_both_models(triton, small_checkpoint):
    from digitcore.checkpoint import file_sha256

    version = file_sha256(small_checkpoint)[:VERSION_DIGITS]
    outputs = [
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]},
        {"name": "digit", "datatype": "INT64", "shape": [-1]},
    ]
    tensor = triton.get_model_metadata(TENSOR_MODEL)
    assert tensor["name"] == TENSOR_MODEL and tensor["versions"] == [version]
    assert tensor["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 1, 28, 28]}]
    assert tensor["outputs"] == outputs
    images = triton.get_model_metadata(IMAGE_MODEL, model_version=version)
    assert images["inputs"] == [{"name": "image", "datatype": "BYTES", "shape": [-1]}]
    assert images["outputs"] == outputs
    assert triton.is_model_ready(IMAGE_MODEL, model_version=version)
    with pytest.raises(InferenceServerException, match="no version 'abc'"):
        triton.get_model_metadata(TENSOR_MODEL, model_version="abc")


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_mnist_matches_the_digit_model(triton, normalized, digit_model, binary):
    outputs = [
        tritonclient_http.InferRequestedOutput(name, binary_data=binary)
        for name in ("probabilities", "digit")
    ]
    result = triton.infer(
        TENSOR_MODEL, [tensor_input(normalized, binary)], outputs=outputs, request_id="req-7"
    )
    response = result.get_response()
    assert response["id"] == "req-7" and response["model_name"] == TENSOR_MODEL
    probabilities, digits = result.as_numpy("probabilities"), result.as_numpy("digit")
    assert probabilities.dtype == np.float32 and probabilities.shape == (COUNT, 10)
    assert digits.dtype == np.int64 and digits.shape == (COUNT,)
    expected = digit_model([Normalized(torch.from_numpy(image)) for image in normalized])
    np.testing.assert_allclose(
        probabilities, [p.probabilities for p in expected], rtol=1e-4, atol=1e-5
    )
    assert digits.tolist() == [p.digit for p in expected]


def test_mnist_default_outputs_are_binary(triton, normalized):
    result = triton.infer(TENSOR_MODEL, [tensor_input(normalized[:2], True)])
    outputs = {output["name"]: output for output in result.get_response()["outputs"]}
    assert set(outputs) == {"probabilities", "digit"}
    assert all("binary_data_size" in output["parameters"] for output in outputs.values())
    assert result.as_numpy("digit").shape == (2,)


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_mnist_images_matches_predict(triton, server, pngs, binary):
    result = triton.infer(IMAGE_MODEL, [image_input(pngs, binary)])
    with httpx.Client(base_url=server.url, timeout=30) as http:
        answers = [
            http.post("/predict", files={"file": ("d.png", data, "image/png")}).json()
            for data in pngs
        ]
    assert result.as_numpy("digit").tolist() == [answer["digit"] for answer in answers]
    np.testing.assert_allclose(
        result.as_numpy("probabilities"), [a["probabilities"] for a in answers], atol=1e-6
    )


def test_one_requested_output(triton, normalized):
    only = [tritonclient_http.InferRequestedOutput("digit", binary_data=False)]
    result = triton.infer(TENSOR_MODEL, [tensor_input(normalized[:3], True)], outputs=only)
    assert [output["name"] for output in result.get_response()["outputs"]] == ["digit"]
    assert result.as_numpy("probabilities") is None


def test_wrong_shape_and_unknown_model_are_errors(triton, normalized):
    flat = normalized[:2].reshape(2, 28, 28)
    with pytest.raises(InferenceServerException, match=r"has shape \[2, 28, 28\]") as caught:
        triton.infer(TENSOR_MODEL, [tensor_input(flat, True)])
    assert caught.value.status() == "400"
    with pytest.raises(InferenceServerException, match="'mnist-x' is not served") as caught:
        triton.infer("mnist-x", [tensor_input(normalized[:1], True)])
    assert caught.value.status() == "404"


def test_an_element_that_is_not_an_image_names_its_index(triton, pngs):
    with pytest.raises(InferenceServerException, match="element 1:") as caught:
        triton.infer(IMAGE_MODEL, [image_input([pngs[0], b"not an image", pngs[1]], True)])
    assert caught.value.status() == "400"
    assert triton.is_server_ready()


# --- in-process: JSON shapes, errors, OpenAPI -------------------------------------------


@pytest.fixture(scope="module")
async def client(small_checkpoint):
    async with running(make_settings(model_path=small_checkpoint)) as (_, http):
        yield http


def request_json(data, shape=(1, 1, 28, 28), datatype="FP32", name="input") -> dict:
    return {"inputs": [{"name": name, "shape": list(shape), "datatype": datatype, "data": data}]}


@pytest.mark.anyio
async def test_json_shapes(client, normalized):
    assert (await client.get("/v2/health/live")).json() == {"live": True}
    assert (await client.get("/v2/health/ready")).json() == {"ready": True}
    assert (await client.get(f"/v2/models/{IMAGE_MODEL}/ready")).json() == {
        "name": IMAGE_MODEL,
        "ready": True,
    }
    nested = normalized[:2].tolist()  # nested data, as JSON clients send it
    body = {"id": "abc", **request_json(nested, shape=(2, 1, 28, 28))}
    response = await client.post(f"/v2/models/{TENSOR_MODEL}/infer", json=body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    assert set(answer) == {"model_name", "model_version", "id", "outputs"}
    assert answer["id"] == "abc" and len(answer["model_version"]) == VERSION_DIGITS
    probabilities, digit = answer["outputs"]
    assert probabilities["name"] == "probabilities" and probabilities["shape"] == [2, 10]
    assert probabilities["datatype"] == "FP32" and len(probabilities["data"]) == 20
    assert digit == {
        "name": "digit",
        "shape": [2],
        "datatype": "INT64",
        "data": digit["data"],
    }
    version = answer["model_version"]
    by_version = await client.post(f"/v2/models/{TENSOR_MODEL}/versions/{version}/infer", json=body)
    assert by_version.json() == answer


@pytest.mark.anyio
async def test_binary_request_and_response_by_hand(client, pngs):
    files = pngs[:2]
    blob = b"".join(struct.pack("<I", len(data)) + data for data in files)
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "image",
                    "shape": [2],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": len(blob)},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    response = await client.post(
        f"/v2/models/{IMAGE_MODEL}/infer",
        content=header + blob,
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    assert response.status_code == 200
    length = int(response.headers["Inference-Header-Content-Length"])
    meta = json.loads(response.content[:length])
    sizes = [output["parameters"]["binary_data_size"] for output in meta["outputs"]]
    assert sizes == [2 * 10 * 4, 2 * 8]
    assert len(response.content) == length + sum(sizes)
    digits = np.frombuffer(response.content[length + sizes[0] :], dtype="<i8")
    assert digits.shape == (2,)


TENSOR_INFER = f"/v2/models/{TENSOR_MODEL}/infer"
IMAGE_INFER = f"/v2/models/{IMAGE_MODEL}/infer"
ZEROS = [0.0] * 784
HELLO = base64.b64encode(b"hello").decode()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/v2/models/nope/infer", request_json(ZEROS), 404, "'nope' is not served"),
        (f"/v2/models/{TENSOR_MODEL}/versions/0/infer", request_json(ZEROS), 404, "no version"),
        (TENSOR_INFER, request_json(ZEROS, datatype="FP64"), 400, "is FP32, not FP64"),
        (TENSOR_INFER, request_json(ZEROS[:10]), 400, "has 10 elements"),
        (TENSOR_INFER, request_json(["a"] * 784), 400, "must be numbers"),
        (TENSOR_INFER, request_json(ZEROS, name="x"), 400, "takes one input, 'input'"),
        (TENSOR_INFER, {"inputs": "no"}, 400, "invalid inference request"),
        (TENSOR_INFER, {**request_json(ZEROS), "outputs": [{"name": "x"}]}, 400, "unknown output"),
        (IMAGE_INFER, request_json(["%%"], [1], "BYTES", "image"), 400, "is not base64"),
        (IMAGE_INFER, request_json([HELLO], [1], "BYTES", "image"), 400, "element 0:"),
    ],
)
async def test_errors_are_json_with_the_protocols_status(client, path, body, status, message):
    response = await client.post(path, json=body)
    assert response.status_code == status
    assert set(response.json()) == {"error"}
    assert message in response.json()["error"]


@pytest.mark.anyio
async def test_bad_binary_framing_is_a_400(client):
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": [1, 1, 28, 28],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 784 * 4},
                }
            ]
        }
    ).encode()
    nan = np.full(784, np.nan, dtype="<f4").tobytes()
    for content, length, message in (
        (header + b"\0" * 100, len(header), "declares 3136 bytes"),
        (header, 10**6, "the body has only"),
        (header + nan, len(header), "NaN"),
        (header + nan, None, "invalid inference request"),
    ):
        headers = {} if length is None else {"Inference-Header-Content-Length": str(length)}
        response = await client.post(TENSOR_INFER, content=content, headers=headers)
        assert response.status_code == 400
        assert message in response.json()["error"]


@pytest.mark.anyio
async def test_not_ready_is_503(small_checkpoint):
    app = create_app(make_settings(model_path=small_checkpoint))  # lifespan not run
    async with client_for(app) as http:
        assert (await http.get("/v2/health/live")).status_code == 200
        for response in (
            await http.get("/v2/health/ready"),
            await http.get(f"/v2/models/{TENSOR_MODEL}/ready"),
            await http.post(TENSOR_INFER, json=request_json(ZEROS)),
        ):
            assert response.status_code == 503
            assert set(response.json()) == {"error"}


@pytest.mark.anyio
async def test_model_names_are_settings(small_checkpoint, normalized):
    settings = make_settings(
        model_path=small_checkpoint, v2_model_name="digits", v2_images_model_name="digit-files"
    )
    async with running(settings) as (_, http):
        meta = (await http.get("/v2/models/digits")).json()
        assert meta["name"] == "digits" and meta["inputs"][0]["datatype"] == "FP32"
        files = (await http.get("/v2/models/digit-files")).json()
        assert files["name"] == "digit-files" and files["inputs"][0]["datatype"] == "BYTES"
        body = request_json(normalized[:1].flatten().tolist())
        answer = await http.post("/v2/models/digits/infer", json=body)
        assert answer.status_code == 200 and answer.json()["model_name"] == "digits"
        gone = await http.get(f"/v2/models/{TENSOR_MODEL}")
        assert gone.status_code == 404 and "digits, digit-files" in gone.json()["error"]
    with pytest.raises(ValueError, match="must differ"):
        make_settings(v2_model_name="same", v2_images_model_name="same")


@pytest.mark.anyio
async def test_openapi_describes_the_v2_routes(client):
    spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    for path in (
        "/v2",
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/{name}",
        "/v2/models/{name}/versions/{version}",
        "/v2/models/{name}/ready",
        "/v2/models/{name}/versions/{version}/ready",
        "/v2/models/{name}/infer",
        "/v2/models/{name}/versions/{version}/infer",
    ):
        assert path in paths
    infer = paths["/v2/models/{name}/infer"]["post"]
    request_schema = infer["requestBody"]["content"]["application/json"]["schema"]
    assert {"inputs", "outputs", "id", "parameters"} <= set(request_schema["properties"])
    ok = infer["responses"]["200"]["content"]
    assert ok["application/json"]["schema"]["$ref"].endswith("/InferenceResponse")
    assert "application/octet-stream" in ok
    assert infer["responses"]["400"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ErrorResponse"
    )
    assert any(p["name"] == "Inference-Header-Content-Length" for p in infer["parameters"])
    schemas = spec["components"]["schemas"]
    assert {"InferenceResponse", "ModelMetadata", "ServerMetadata", "ErrorResponse"} <= set(schemas)


# --- the pipeline's pass-through for normalized tensors ----------------------------------


def test_normalized_tensors_go_through_the_model_beside_uploads(digit_model, pngs, normalized):
    mixed = digit_model(
        [Normalized(torch.from_numpy(normalized[0])), Upload(pngs[1]), Upload(b"x")]
    )
    alone = digit_model.predict(torch.from_numpy(normalized[:1]))[0].tolist()
    assert mixed[0].probabilities == pytest.approx(alone, abs=1e-6)
    assert mixed[0].input_image is None
    assert mixed[1].digit == digit_model([Upload(pngs[1])])[0].digit
    assert isinstance(mixed[2], InputRejected)
