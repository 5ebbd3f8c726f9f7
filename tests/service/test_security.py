"""API keys, CORS and request ids, in-process with the lifespan running (small checkpoint)."""

from __future__ import annotations

import re

import pytest

from tests.service.conftest import make_settings, running

pytestmark = pytest.mark.anyio

OPEN_PATHS = [
    "/healthz",
    "/readyz",
    "/v2/health/live",
    "/v2/health/ready",
    "/metrics",
    "/docs",
    "/redoc",
    "/openapi.json",
    "/",
]


@pytest.fixture(scope="module")
def key_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("keys") / "keys.txt"
    path.write_text("# keys of the team\nfile-key-3\n\nfile-key-4  # the CI's\n")
    return path


@pytest.fixture(scope="module")
async def locked(small_checkpoint, key_file):
    settings = make_settings(
        model_path=small_checkpoint, api_keys="key-1, key-2", api_keys_file=key_file
    )
    async with running(settings) as served:
        yield served


def upload(data: bytes) -> dict:
    return {"file": ("digit.png", data, "image/png")}


async def test_api_routes_need_a_key(locked, mnist_png_samples):
    _, client = locked
    data = mnist_png_samples[0][0]
    for method, path, kwargs in [
        ("POST", "/predict", {"files": upload(data)}),
        ("POST", "/predict/batch", {"files": [("files", ("a.png", data, "image/png"))]}),
        ("GET", "/model", {}),
        ("GET", "/v2/models/mnist", {}),
    ]:
        response = await client.request(method, path, **kwargs)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "Bearer"
        body = response.json()  # the v2 protocol's errors are {"error": ...}
        assert "Authorization: Bearer <key>" in body.get("detail", body.get("error"))
        wrong = await client.request(method, path, headers={"X-API-Key": "key-9"}, **kwargs)
        assert wrong.status_code == 401
        assert "the API key is not valid" in wrong.text


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer key-1"},
        {"Authorization": "Bearer key-2"},
        {"X-API-Key": "key-2"},
        {"X-API-Key": "file-key-3"},
        {"Authorization": "Bearer file-key-4"},
    ],
)
async def test_every_configured_key_opens_the_api(locked, mnist_png_samples, headers):
    _, client = locked
    data, label = mnist_png_samples[1]
    response = await client.post("/predict", files=upload(data), headers=headers)
    assert response.status_code == 200 and response.json()["digit"] == label
    assert (await client.get("/model", headers=headers)).status_code == 200


async def test_health_docs_metrics_and_page_stay_open(locked):
    _, client = locked
    for path in OPEN_PATHS:
        assert (await client.get(path)).status_code == 200, path


async def test_openapi_declares_both_key_schemes(locked):
    _, client = locked
    spec = (await client.get("/openapi.json")).json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["HTTPBearer"]["scheme"] == "bearer"
    assert schemes["APIKeyHeader"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "`X-API-Key: <API key>`",
    }
    security = spec["paths"]["/predict"]["post"]["security"]
    assert {"HTTPBearer": []} in security and {"APIKeyHeader": []} in security
    assert "security" not in spec["paths"]["/healthz"]["get"]


async def test_without_keys_the_api_is_open(small_checkpoint, mnist_png_samples):
    async with running(make_settings(model_path=small_checkpoint)) as (_, client):
        data = mnist_png_samples[0][0]
        assert (await client.post("/predict", files=upload(data))).status_code == 200


async def test_request_ids_are_echoed_made_or_replaced(locked):
    _, client = locked
    given = await client.get("/healthz", headers={"X-Request-ID": "order-42.retry_1"})
    assert given.headers["x-request-id"] == "order-42.retry_1"
    made = await client.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    assert made.headers["x-request-id"] != (await client.get("/healthz")).headers["x-request-id"]
    for unsafe in ["x" * 129, "bad id", "<script>", "\xe4".encode("latin-1")]:
        response = await client.get("/healthz", headers={"X-Request-ID": unsafe})
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"]), unsafe


async def test_errors_carry_the_request_id_too(locked):
    _, client = locked
    headers = {"X-Request-ID": "err-1"}
    for response in [
        await client.get("/no-such-route", headers=headers),
        await client.post("/predict", headers=headers),  # 401 before anything else
        await client.post("/predict", headers={**headers, "Content-Length": str(1 << 40)}),
    ]:
        assert response.status_code in (401, 404, 413)
        assert response.headers["x-request-id"] == "err-1"


async def test_cors_is_off_by_default(locked):
    _, client = locked
    response = await client.get("/healthz", headers={"Origin": "https://app.example"})
    assert "access-control-allow-origin" not in response.headers


async def test_cors_allows_the_listed_origins_only(small_checkpoint):
    settings = make_settings(model_path=small_checkpoint, cors_origins="https://app.example")
    async with running(settings) as (_, client):
        preflight = {
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization",
        }
        allowed = await client.options("/predict", headers=preflight)
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        refused = await client.options(
            "/predict", headers={**preflight, "Origin": "https://evil.example"}
        )
        assert "access-control-allow-origin" not in refused.headers
        simple = await client.get("/healthz", headers={"Origin": "https://app.example"})
        assert simple.headers["access-control-allow-origin"] == "https://app.example"
        assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()


async def test_an_unreadable_key_file_stops_startup_naming_it(small_checkpoint, tmp_path):
    from tests.service.conftest import LifespanFailed

    missing = tmp_path / "absent-keys.txt"
    settings = make_settings(model_path=small_checkpoint, api_keys_file=missing)
    with pytest.raises(LifespanFailed, match=f"API_KEYS_FILE={missing}"):
        async with running(settings):
            pass
