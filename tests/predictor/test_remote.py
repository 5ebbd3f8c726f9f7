"""``--url`` mode against a real service process: the same answers as local mode."""

from __future__ import annotations

import numpy as np
import pytest

from digitcore.preprocess import preprocess
from predictor.engines import Prediction, RemoteEngine
from predictor.local import LocalEngine
from testkit.servers import free_port, serve
from tests.predictor.conftest import truncated, write_digits

SERVICE_MAX_BATCH_FILES = 8  # smaller than the predictor's --batch-size, so chunks get split


@pytest.fixture(scope="module")
def service_url(small_checkpoint, tmp_path_factory):
    settings = {
        "model_path": str(small_checkpoint),
        "device": "cpu",
        "log_level": "warning",
        "max_batch_files": str(SERVICE_MAX_BATCH_FILES),
    }
    with serve(tmp_path_factory.mktemp("service"), **settings) as server:
        yield server.url


def test_remote_answers_equal_local_answers(
    tmp_path, mnist_png_samples, small_checkpoint, service_url, run_json
):
    paths = write_digits(tmp_path, mnist_png_samples[:40])
    (tmp_path / "cut.png").write_bytes(truncated(mnist_png_samples[0][0]))
    (tmp_path / "empty.png").write_bytes(b"")
    common = [str(tmp_path), "--batch-size", "16", "--top-k", "3"]
    local_status, local, _ = run_json([*common, "--model", str(small_checkpoint)])
    remote_status, remote, err = run_json([*common, "--url", service_url])
    assert local_status == remote_status == 1
    assert (
        set(remote)
        == set(local)
        == {str(p) for p in paths}
        | {
            str(tmp_path / "cut.png"),
            str(tmp_path / "empty.png"),
        }
    )
    for path, here in local.items():
        there = remote[path]
        assert there["digit"] == here["digit"], path
        assert there["error"] == here["error"], path
        if here["error"] is None:
            assert there["confidence"] == pytest.approx(here["confidence"], abs=1e-5)
            np.testing.assert_allclose(there["probabilities"], here["probabilities"], atol=1e-5)
            assert [t["digit"] for t in there["top_k"]] == [t["digit"] for t in here["top_k"]]
    assert "corrupt or truncated" in remote[str(tmp_path / "cut.png")]["error"]
    assert f"with service {service_url} (Digit" in err
    assert "predicted 40 of 42 files, 2 failed" in err


def test_remote_model_view_is_the_pipelines(mnist_png_samples, small_checkpoint, service_url):
    items = [(f"{i}.png", data) for i, (data, _) in enumerate(mnist_png_samples[:3])]
    remote = RemoteEngine(service_url)
    try:
        answers = remote.predict(items, with_images=True)
    finally:
        remote.close()
    local = LocalEngine(small_checkpoint, "cpu").predict(items, with_images=True)
    for (_, data), there, here in zip(items, answers, local, strict=True):
        assert isinstance(there, Prediction) and isinstance(here, Prediction)
        expected = preprocess([data])[0].mnist
        np.testing.assert_allclose(here.model_view, expected)
        np.testing.assert_allclose(there.model_view, expected, atol=1 / 255)


def test_remote_figure(tmp_path, mnist_png_samples, service_url, capsys):
    from PIL import Image

    from predictor.__main__ import main

    paths = write_digits(tmp_path, mnist_png_samples[:5])
    out = tmp_path / "remote.png"
    assert main([*map(str, paths), "--url", service_url, "--figure", str(out)]) == 0
    assert "figure written to" in capsys.readouterr().err
    with Image.open(out) as image:
        assert (image.format, image.size) == ("PNG", (1600, 480))


def test_unreachable_service_exits_3(tmp_path, capsys):
    from predictor.__main__ import main

    url = f"http://127.0.0.1:{free_port()}"
    assert main([str(tmp_path), "--url", url]) == 3
    assert f"cannot reach the service at {url}" in capsys.readouterr().err
