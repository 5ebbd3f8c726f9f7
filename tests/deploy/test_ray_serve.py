"""The service on Ray Serve: a real two-node Ray cluster on this machine, two replicas, HTTP.

A head and one more node (one CPU each, a small object store, loopback only, no dashboard);
two replicas of :class:`service.ray_serve.MnistDigits` (one CPU each, so one per node) behind
Serve's proxies (one per node, sharing a free loopback port through SO_REUSEPORT, as on a real
cluster behind a load balancer). Real MNIST PNGs go to ``POST /predict`` as multipart field
``file``; the answers must be right, and ``X-Serve-Replica`` must name both replicas.
Everything started here is stopped again, whatever happens.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import ray
import ray._private.ray_constants as ray_constants
from ray import serve
from ray.cluster_utils import Cluster
from ray.serve.schema import ApplicationStatus, ProxyStatus

from service.ray_serve import REPLICA_HEADER, MnistDigits
from testkit.servers import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

MIB = 1024 * 1024
APP = "mnist"
NODE = {
    "num_cpus": 1,
    "object_store_memory": 80 * MIB,
    "node_ip_address": "127.0.0.1",
    "include_dashboard": False,
}
RAY_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",  # nothing leaves the machine
    # Ray's single-machine mode: 127.0.0.1 stays the address everything binds to and dials
    # (otherwise Ray turns 127.0.0.1 into the machine's outward address when connecting).
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
}


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:g} s ({serve.status()})")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def serve_url(default_model_path):
    """Serve's HTTP address once both replicas and both proxies are up; all stopped after."""
    # Ray's files (sessions, sockets, logs) in a short private folder of our own
    temp_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    with pytest.MonkeyPatch.context() as env:
        for key, value in {**RAY_ENV, "RAY_TMPDIR": temp_dir}.items():
            env.setenv(key, value)  # for the processes Ray starts
        # and for this one, whose Ray read the variable when it was imported
        env.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)
        cluster = Cluster(shutdown_at_exit=True)
        try:
            cluster.add_node(**NODE, gcs_server_port=free_port())
            cluster.add_node(**NODE)
            cluster.wait_for_nodes(timeout=120)
            ray.init(address=cluster.address, log_to_driver=False)
            port = free_port()
            serve.start(
                proxy_location="EveryNode", http_options={"host": "127.0.0.1", "port": port}
            )
            settings = {"model_path": str(default_model_path.resolve()), "log_level": "warning"}
            try:
                serve.run(MnistDigits.options(num_replicas=2).bind(settings), name=APP)
            except RuntimeError as exc:  # Serve's message alone does not say why
                raise RuntimeError(f"{exc}\n{serve.status()}") from None
            wait_for(
                lambda: serve.status().applications[APP].status == ApplicationStatus.RUNNING,
                120,
                "application running",
            )
            wait_for(
                lambda: [*serve.status().proxies.values()] == [ProxyStatus.HEALTHY] * 2,
                120,
                "a healthy proxy on each node",
            )
            yield f"http://127.0.0.1:{port}"
        finally:
            try:
                if ray.is_initialized():
                    serve.shutdown()
            finally:
                ray.shutdown()
                cluster.shutdown()
                shutil.rmtree(temp_dir, ignore_errors=True)


def post_digit(url: str, png: bytes) -> httpx.Response:
    # A connection per request, so the kernel spreads them over the proxies, as a load
    # balancer in front of a real cluster would.
    with httpx.Client(timeout=60) as client:
        files = {"file": ("digit.png", png, "image/png")}
        return client.post(f"{url}/predict", files=files, headers={"Connection": "close"})


def test_two_replicas_on_two_nodes_answer_real_digits(serve_url, mnist_png_samples):
    cluster = ray.cluster_resources()
    assert cluster.get("CPU") == 2 and len([n for n in ray.nodes() if n["Alive"]]) == 2
    # each replica holds one CPU and each node has one: one replica per node
    assert ray.available_resources().get("CPU", 0) == 0

    samples = mnist_png_samples[:48]
    with ThreadPoolExecutor(max_workers=4) as pool:
        responses = list(pool.map(lambda s: post_digit(serve_url, s[0]), samples))

    right = 0
    for response, (_, label) in zip(responses, samples, strict=True):
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        assert {"digit", "confidence", "probabilities"} <= body.keys()
        assert isinstance(body["digit"], int) and 0 <= body["digit"] <= 9
        assert 0 <= body["confidence"] <= 1
        assert len(body["probabilities"]) == 10
        assert sum(body["probabilities"]) == pytest.approx(1, abs=1e-3)
        assert body["confidence"] == pytest.approx(max(body["probabilities"]), abs=1e-6)
        right += body["digit"] == label
    assert right >= 0.95 * len(samples), f"{right}/{len(samples)} digits right"

    served = Counter(response.headers[REPLICA_HEADER] for response in responses)
    assert len(served) == 2, f"replicas that answered: {dict(served)}"


def test_every_route_of_the_app_is_served_by_each_replica(serve_url):
    with httpx.Client(base_url=serve_url, timeout=30) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")  # 200 only once the replica's lifespan loaded the model
        assert ready.status_code == 200 and ready.json() == {"status": "ready"}
        assert REPLICA_HEADER in ready.headers
        paths = client.get("/openapi.json").json()["paths"]
        assert {"/predict", "/healthz", "/readyz"} <= paths.keys()
        assert client.get("/docs").status_code == 200


def test_a_bad_upload_is_a_json_4xx_and_the_replicas_keep_serving(serve_url, mnist_png_samples):
    with httpx.Client(base_url=serve_url, timeout=30) as client:
        files = {"file": ("notes.txt", b"not an image at all", "text/plain")}
        bad = client.post("/predict", files=files)
        assert 400 <= bad.status_code < 500
        assert "detail" in bad.json()
        missing = client.post("/predict", data={"other": "field"})
        assert missing.status_code == 422 and "detail" in missing.json()
    png, label = mnist_png_samples[0]
    assert post_digit(serve_url, png).json()["digit"] == label
