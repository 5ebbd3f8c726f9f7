"""Every accepted format and image mode decodes to the right digit (in-process, small model)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tests.service.conftest import image_bytes, make_settings, running

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
async def client(small_checkpoint):
    async with running(make_settings(model_path=small_checkpoint)) as (_, client):
        yield client


@pytest.fixture(scope="module")
async def sample(client, digit_samples):
    """A digit the small model gets right as a plain PNG, drawn dark on white at 4x size."""
    for pixels, label in digit_samples:
        paper = Image.fromarray(255 - pixels).resize((112, 112), Image.Resampling.BILINEAR)
        files = {"file": ("d.png", image_bytes(paper, "PNG"), "image/png")}
        if (await client.post("/predict", files=files)).json()["digit"] == label:
            return paper, label
    pytest.fail("the small model got none of the sample digits right")


def in_mode(paper: Image.Image, mode: str) -> Image.Image:
    """The dark-on-white digit ``paper`` (mode L) as an image of ``mode``."""
    if mode == "1":
        return paper.point(lambda v: 255 if v > 128 else 0).convert("1", dither=Image.Dither.NONE)
    if mode == "I;16":
        return Image.fromarray(np.asarray(paper, dtype=np.uint16) * 257)
    if mode == "F":  # a float image in [0, 1], as numpy, scikit-image or tifffile write one
        return Image.fromarray(np.asarray(paper, dtype=np.float32) / 255)
    if mode in ("LA", "RGBA"):  # a canvas export: black ink, transparent background
        ink = Image.eval(paper, lambda v: 255 - v)
        layered = Image.new(mode, paper.size)
        layered.putalpha(ink)
        return layered
    return paper.convert(mode)


CASES = [
    ("PNG", "1"),
    ("PNG", "L"),
    ("PNG", "LA"),
    ("PNG", "P"),
    ("PNG", "RGB"),
    ("PNG", "RGBA"),
    ("PNG", "I;16"),
    ("JPEG", "L"),
    ("JPEG", "RGB"),
    ("JPEG", "CMYK"),
    ("GIF", "P"),
    ("BMP", "1"),
    ("BMP", "L"),
    ("BMP", "RGB"),
    ("TIFF", "1"),
    ("TIFF", "L"),
    ("TIFF", "RGBA"),
    ("TIFF", "CMYK"),
    ("TIFF", "I;16"),
    ("TIFF", "F"),
    ("WEBP", "RGB"),
    ("WEBP", "RGBA"),
    ("HEIF", "RGB"),
    ("HEIF", "RGBA"),
    ("AVIF", "RGB"),
    ("AVIF", "RGBA"),
]
LOSSLESS = {"WEBP": {"lossless": True}, "HEIF": {"quality": -1}, "AVIF": {"quality": 95}}


@pytest.mark.parametrize(("fmt", "mode"), CASES, ids=[f"{f}-{m}" for f, m in CASES])
async def test_format_and_mode_decode_to_the_right_digit(client, sample, fmt, mode):
    paper, label = sample
    image = in_mode(paper, mode)
    assert image.mode == mode
    data = image_bytes(image, fmt, **LOSSLESS.get(fmt, {}))
    response = await client.post("/predict", files={"file": (f"d.{fmt.lower()}", data, "image/x")})
    assert response.status_code == 200, response.text
    assert response.json()["digit"] == label


async def test_animated_gif_uses_the_first_frame(client, sample, digit_samples):
    paper, label = sample
    other = next(
        Image.fromarray(255 - p).resize(paper.size) for p, lbl in digit_samples if lbl != label
    )
    data = image_bytes(paper.convert("P"), "GIF", save_all=True, append_images=[other.convert("P")])
    assert Image.open(io.BytesIO(data)).n_frames == 2
    response = await client.post("/predict", files={"file": ("anim.gif", data, "image/gif")})
    assert response.status_code == 200 and response.json()["digit"] == label


@pytest.mark.parametrize("fmt", ["JPEG", "HEIF"])
async def test_the_cameras_rotation_is_applied(client, sample, fmt):
    paper, label = sample
    rotated = paper.rotate(90, expand=True)  # as a phone stores it, "turn right" to see it
    exif = Image.Exif()
    exif[0x0112] = 6
    # JPEG keeps the orientation in its EXIF; pillow-heif writes it as the HEIF's own rotation
    data = image_bytes(rotated.convert("RGB"), fmt, exif=exif.tobytes(), quality=95)
    assert Image.open(io.BytesIO(data)).format == fmt
    name = f"phone.{fmt.lower()}"
    response = await client.post("/predict", files={"file": (name, data, "image/x")})
    assert response.status_code == 200 and response.json()["digit"] == label
