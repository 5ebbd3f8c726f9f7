"""Digits as people send them, through the real HTTP API: each realistic set scores >= 98%.

The sets (testkit/realistic.py) are made from MNIST *test* images with a fixed seed: photos of
ink on paper, transparent and white canvases, marker, pencil, non-square frames and phone
photos. They go to a real ``python -m service`` as multipart uploads, in requests of up to 16 files.
"""

from __future__ import annotations

import httpx
import pytest

from testkit.realistic import SETS, generate
from testkit.servers import serve

CHUNK_FILES = 16
CHUNK_BYTES = 8 * 1024 * 1024  # under the service's default 10 MiB request limit


def chunks(samples: list) -> list[list]:
    """Consecutive groups of at most CHUNK_FILES files and CHUNK_BYTES bytes."""
    groups: list[list] = [[]]
    for sample in samples:
        group = groups[-1]
        too_big = sum(len(s.data) for s in group) + len(sample.data) > CHUNK_BYTES
        if group and (len(group) == CHUNK_FILES or too_big):
            groups.append(group := [])
        group.append(sample)
    return groups


@pytest.fixture(scope="module")
def server(tmp_path_factory, default_model_path):
    with serve(tmp_path_factory.mktemp("realistic"), model_path=str(default_model_path)) as running:
        yield running


@pytest.mark.parametrize("name", list(SETS))
def test_each_realistic_set_scores_at_least_98_percent(server, mnist_test, name):
    images, labels = (t.numpy() for t in mnist_test)
    samples = list(generate(name, images, labels))
    digits = []
    with httpx.Client(base_url=server.url, timeout=120) as client:
        for chunk in chunks(samples):
            files = [
                ("files", (f"{s.name}.bin", s.data, "application/octet-stream")) for s in chunk
            ]
            response = client.post("/predict/batch", files=files)
            assert response.status_code == 200, response.text
            results = response.json()["results"]
            # A refusal ("no digit found") counts as a wrong answer; nothing else may happen.
            assert {r["status"] for r in results} <= {200, 422}, results
            digits += [r["prediction"]["digit"] if r["status"] == 200 else None for r in results]
    right = sum(d == s.label for d, s in zip(digits, samples, strict=True))
    assert len(digits) == len(samples) == SETS[name][1]
    assert right / len(samples) >= 0.98, f"{name}: {right}/{len(samples)} right"
