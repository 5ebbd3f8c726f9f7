"""``POST /read`` with the real default model: numbers read, boxes in the upload's own pixels
(after EXIF orientation, whatever size the decoder worked at), errors as ``/predict`` gives
them; and ``/predict`` pointing a picture of several digits to ``/read``."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from digitcore.preprocess import DRAFT_SIZE
from testkit.numbers import generate
from tests.conftest import png_bytes
from tests.service.conftest import LifespanFailed, make_settings, running

pytestmark = pytest.mark.anyio

SAMPLES = 30


@pytest.fixture(scope="module")
def numbers(mnist_test):
    images, labels = (t.numpy() for t in mnist_test)
    return {
        family: list(generate(family, images, labels, SAMPLES)) for family in ("apart", "touching")
    }


def overlap(a, b) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(width, 0) * max(height, 0)
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / area


async def read(client, data: bytes, name: str = "number.png"):
    return await client.post("/read", files={"file": (name, data)})


async def test_numbers_are_read_left_to_right_with_their_boxes(default_model_path, numbers):
    async with running(make_settings(model_path=default_model_path)) as (_, client):
        right = 0
        for sample in numbers["apart"]:
            response = await read(client, sample.data)
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["number"] == "".join(str(d["digit"]) for d in body["digits"])
            lefts = [d["box"][0] for d in body["digits"]]
            assert lefts == sorted(lefts)
            for digit in body["digits"]:
                assert 0 <= digit["confidence"] <= 1 and isinstance(digit["is_digit"], bool)
            if body["number"] == sample.number:
                right += 1
                for box, truth in zip(body["digits"], sample.boxes, strict=True):
                    assert overlap(box["box"], truth) >= 0.5, (sample.name, box, truth)
        assert right >= 0.9 * SAMPLES
        metrics = (await client.get("/metrics")).text
        assert f"numbers_read_total {float(SAMPLES)}" in metrics


def photo(pixels: np.ndarray, scale: int, orientation: int) -> bytes:
    """``pixels`` enlarged ``scale`` times as a JPEG whose EXIF orientation turns it upright."""
    image = Image.fromarray(pixels).convert("L")
    image = image.resize((image.width * scale, image.height * scale), Image.Resampling.BICUBIC)
    stored = {1: image, 6: image.transpose(Image.Transpose.ROTATE_90)}[orientation]
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    stored.save(buffer, format="JPEG", quality=92, exif=exif)
    return buffer.getvalue()


async def test_boxes_are_in_the_uploads_upright_pixels(default_model_path, numbers):
    async with running(make_settings(model_path=default_model_path)) as (_, client):
        checked = 0
        for sample in numbers["apart"][:10]:
            image = Image.open(io.BytesIO(sample.data)).convert("RGBA")
            paper = Image.new("RGBA", image.size, "white")
            pixels = np.asarray(Image.alpha_composite(paper, image).convert("L"))
            base = (await read(client, png_bytes(pixels))).json()
            scale = 2 * DRAFT_SIZE // min(pixels.shape) + 1  # decoded reduced, at least by 2
            for orientation in (1, 6):
                body = (await read(client, photo(pixels, scale, orientation), "n.jpg")).json()
                if body.get("number") != base["number"]:
                    continue  # a reading that changes with the resolution has no boxes to compare
                for small, big in zip(base["digits"], body["digits"], strict=True):
                    expected = [scale * v for v in small["box"]]
                    assert overlap(big["box"], expected) >= 0.6, (sample.name, orientation)
                checked += 1
        assert checked >= 15


async def test_touching_digits_are_split(default_model_path, default_line_reader_path, numbers):
    settings = make_settings(
        model_path=default_model_path, line_reader_path=default_line_reader_path
    )
    async with running(settings) as (_, client):
        info = (await client.get("/model")).json()["line_reader"]
        assert info["path"] == str(default_line_reader_path) and len(info["sha256"]) == 64
        assert 0.8 <= info["metadata"]["validation_exact"] <= 1
        counts_right = exact = 0
        for sample in numbers["touching"]:
            body = (await read(client, sample.data)).json()
            counts_right += len(body["digits"]) == len(sample.number)
            exact += body["number"] == sample.number
        assert counts_right >= 0.9 * SAMPLES and exact >= 0.8 * SAMPLES


async def test_without_a_line_reader_numbers_are_still_read(tmp_path, default_model_path, numbers):
    """No line reader file: /read cuts by the digit model alone, and says so in GET /model."""
    settings = make_settings(model_path=default_model_path, line_reader_path=tmp_path / "none.pth")
    async with running(settings) as (_, client):
        assert (await client.get("/model")).json()["line_reader"] is None
        right = 0
        for sample in numbers["apart"]:
            right += (await read(client, sample.data)).json()["number"] == sample.number
        assert right >= 0.8 * SAMPLES


async def test_a_broken_line_reader_is_refused_at_startup(tmp_path, default_model_path):
    broken = tmp_path / "lines.pth"
    broken.write_bytes(b"not a checkpoint")
    settings = make_settings(model_path=default_model_path, line_reader_path=broken)
    with pytest.raises(LifespanFailed, match="line reader"):
        async with running(settings):
            pass


async def test_what_cannot_be_read_is_refused_as_predict_refuses_it(default_model_path, mnist_test):
    blank = png_bytes(np.full((60, 200), 255, np.uint8))
    row = np.hstack([mnist_test[0][i].numpy() for i in range(13)])  # thirteen digits
    async with running(make_settings(model_path=default_model_path)) as (_, client):
        response = await read(client, blank)
        assert response.status_code == 422 and "no digit" in response.json()["detail"]
        response = await read(client, png_bytes(255 - row))
        assert response.status_code == 422 and "12" in response.json()["detail"]
        response = await read(client, b"not an image at all")
        assert response.status_code == 415
        response = await client.post("/read", files={"image": ("n.png", blank)})
        assert response.status_code == 422 and "'file'" in response.json()["detail"]
        assert (await client.get("/healthz")).status_code == 200


async def test_predict_points_a_picture_of_several_digits_to_read(
    default_model_path, numbers, mnist_png_samples
):
    async with running(make_settings(model_path=default_model_path)) as (_, client):
        for family, share in (("apart", 0.95), ("touching", 0.8)):
            pointed = 0
            for sample in numbers[family]:
                files = {"file": ("n.png", sample.data)}
                body = (await client.post("/predict", files=files)).json()
                assert body["is_digit"] is False or body["detail"] is None
                if body["detail"] is not None:
                    assert "/read" in body["detail"]
                    pointed += 1
            assert pointed >= share * SAMPLES, family
        for data, _ in mnist_png_samples[:50]:
            body = (await client.post("/predict", files={"file": ("d.png", data)})).json()
            assert body["detail"] is None


async def test_read_is_documented_with_an_example(default_model_path):
    async with running(make_settings(model_path=default_model_path)) as (_, client):
        spec = (await client.get("/openapi.json")).json()
    operation = spec["paths"]["/read"]["post"]
    assert {"200", "415", "422"} <= set(operation["responses"])
    schema = spec["components"]["schemas"]["NumberReading"]
    assert schema["examples"][0]["number"] == "4096"


async def test_a_number_in_a_pen_as_bright_as_its_paper_is_read(default_model_path, numbers):
    """Each number's ink redrawn in a red as bright as the green paper under it (one grey in
    luminance: every one was refused) is read by its colours, its boxes where they were."""
    paper, pen = np.array([90.0, 170.0, 90.0]), np.array([230.0, 80.0, 80.0])
    async with running(make_settings(model_path=default_model_path)) as (_, client):
        right = 0
        for sample in numbers["apart"]:
            upload = Image.open(io.BytesIO(sample.data)).convert("RGBA")
            white = Image.new("RGBA", upload.size, "white")
            grey = np.asarray(Image.alpha_composite(white, upload).convert("L"), np.float32)
            level = np.median(grey)
            ink = np.clip((level - grey) / (level - grey.min()), 0, 1)[..., None]
            rgb = paper * (1 - ink) + pen * ink
            response = await read(client, png_bytes(rgb.astype(np.uint8)))
            assert response.status_code == 200, response.text
            body = response.json()
            if body["number"] == sample.number:
                right += 1
                for box, truth in zip(body["digits"], sample.boxes, strict=True):
                    assert overlap(box["box"], truth) >= 0.5, (sample.name, box, truth)
        assert right >= 0.9 * SAMPLES
