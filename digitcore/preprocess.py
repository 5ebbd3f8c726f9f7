"""The image pipeline: uploaded bytes -> decoded image -> MNIST-style 28x28 -> model tensor.

Every caller (serving, training-time normalization, the predictor, the benchmarks) uses
these functions, so the model always sees what it was trained on. Each step is a small
function: :func:`decode_image`, :func:`~digitcore.mnistify.mnistify`, :func:`to_tensor` /
:func:`normalize`, and :func:`preview_png` for showing what the model saw; :func:`preprocess`
runs them all over a list of uploads.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from digitcore import IMAGE_SIZE, MNIST_MEAN, MNIST_STD, WORKING_SIZE
from digitcore.errors import (
    CorruptImageError,
    ImageTooLargeError,
    UnsupportedImageError,
)
from digitcore.mnistify import mnistify

SUPPORTED_FORMATS = frozenset({"PNG", "JPEG", "MPO", "GIF", "BMP", "DIB", "TIFF", "WEBP"})
DEFAULT_MAX_PIXELS = 40_000_000
DRAFT_SIZE = WORKING_SIZE // 2  # a large JPEG is decoded reduced, to no less than this long side
MNIST_BOX = 20  # MNIST's digits: the ink's longest side, in pixels
MNIST_CENTRE = 14.0  # and where their centre of mass lies, in pixel indices
_INDICES = np.arange(IMAGE_SIZE, dtype=np.float32)


def decode_image(
    data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, *, gray: bool = False
) -> Image.Image:
    """Decode ``data`` into a loaded, upright PIL image (first frame of animations).

    Checks the declared size against ``max_pixels`` before decoding any pixel data, decodes
    large JPEGs reduced (``draft``: by 2, 4 or 8 in the decoder itself, to no less than
    ``DRAFT_SIZE`` on the longest side), and applies the EXIF orientation. With ``gray``, a colour
    JPEG is decoded to its luminance alone (what the pipeline uses), skipping the colour
    conversion.
    """
    if not data:
        raise UnsupportedImageError("the uploaded file is empty")
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise UnsupportedImageError(
            "the file is not an image in a supported format (PNG, JPEG, GIF, BMP, TIFF, WebP)"
        ) from None
    except Image.DecompressionBombError:
        raise ImageTooLargeError(
            f"the image is too large to decode safely (the limit is {max_pixels:,} pixels)"
        ) from None
    except Exception as exc:
        raise CorruptImageError(f"the image header could not be read: {exc}") from None
    if image.format not in SUPPORTED_FORMATS:
        raise UnsupportedImageError(
            f"image format {image.format} is not supported (use PNG, JPEG, GIF, BMP, TIFF or WebP)"
        )
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"the image is {width}x{height} = {width * height:,} pixels; "
            f"the limit is {max_pixels:,}"
        )
    if width < 1 or height < 1:
        raise CorruptImageError("the image has no pixels")
    try:
        if image.format in {"JPEG", "MPO"}:
            _draft(image, gray)
        image.seek(0)
        image.load()
        image = ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        raise CorruptImageError(
            f"the {image.format} image is corrupt or truncated: {exc}"
        ) from None
    return image


def _draft(image: Image.Image, gray: bool) -> None:
    """Ask the JPEG decoder for a reduced and, with ``gray``, luminance-only decode.

    The decoder scales by 1/2, 1/4 or 1/8 as long as the picture keeps at least
    ``DRAFT_SIZE`` on its longest side: its DCT scaling costs a fraction of decoding in full
    and shrinking afterwards.
    """
    width, height = image.size
    longest = max(width, height)
    target = (width, height)
    if longest > WORKING_SIZE:
        target = (max(1, width * DRAFT_SIZE // longest), max(1, height * DRAFT_SIZE // longest))
    if gray and image.mode in ("L", "RGB"):
        image.draft("L", target)
    elif longest > WORKING_SIZE:
        image.draft(image.mode if image.mode in ("L", "RGB") else "RGB", target)


def normalize(images: torch.Tensor) -> torch.Tensor:
    """[0, 1] ink intensities -> the scaling the model was trained with."""
    return (images - MNIST_MEAN) / MNIST_STD


def to_tensor(mnist: np.ndarray) -> torch.Tensor:
    """A 28x28 float [0, 1] MNIST-style array -> a normalized 1 x 28 x 28 tensor.

    The same float32 arithmetic as :func:`normalize`, done in numpy: cheaper for one image.
    """
    pixels = np.ascontiguousarray(mnist, dtype=np.float32)
    return torch.from_numpy((pixels - MNIST_MEAN) / MNIST_STD).unsqueeze(0)


def mnist_form(image: Image.Image) -> np.ndarray | None:
    """The image as the model's 28x28 [0, 1] input if it already is in MNIST form, else ``None``.

    MNIST form is what MNIST's own normalization produces, so there is nothing left to undo:
    one 8-bit channel, 28x28, white ink on a background of exactly 0, the ink's box 19 or 20 px
    on its longest side and its centre of mass within half a pixel of the centre (every one
    of the 10,000 MNIST test digits). Anything else, even one grey level off, goes through
    :func:`~digitcore.mnistify.mnistify`.
    """
    if image.mode != "L" or image.size != (IMAGE_SIZE, IMAGE_SIZE) or "transparency" in image.info:
        return None
    pixels = np.asarray(image, dtype=np.float32)
    rows, cols = pixels.any(axis=1), pixels.any(axis=0)
    if np.count_nonzero(pixels) > pixels.size // 2 or not rows.any():
        return None
    height = IMAGE_SIZE - rows.argmax() - rows[::-1].argmax()
    width = IMAGE_SIZE - cols.argmax() - cols[::-1].argmax()
    if max(height, width) not in (MNIST_BOX - 1, MNIST_BOX):
        return None
    total = float(pixels.sum())
    centre_y = float(pixels.sum(axis=1) @ _INDICES) / total
    centre_x = float(pixels.sum(axis=0) @ _INDICES) / total
    if max(abs(centre_y - MNIST_CENTRE), abs(centre_x - MNIST_CENTRE)) > 0.5:
        return None
    return pixels / 255


def preprocess(
    uploads: Sequence[bytes], max_pixels: int = DEFAULT_MAX_PIXELS
) -> list[tuple[torch.Tensor, np.ndarray] | Exception]:
    """Each upload -> (normalized 1x28x28 tensor, the 28x28 [0, 1] image the model sees).

    The one entry point of the pipeline; one upload is ``preprocess([data])``. A bad upload's
    exception (an :class:`~digitcore.errors.ImageInputError` for a bad image) takes its place
    in the list, so one bad file never costs the others their answers.
    """
    results: list[tuple[torch.Tensor, np.ndarray] | Exception] = []
    for data in uploads:
        try:
            image = decode_image(data, max_pixels, gray=True)
            mnist = mnist_form(image)
            if mnist is None:
                mnist = mnistify(image)
        except Exception as exc:
            results.append(exc)
            continue
        results.append((to_tensor(mnist), mnist))
    return results


def preview_png(mnist: np.ndarray) -> bytes:
    """The 28x28 image the model saw, as PNG bytes (white ink on black, like MNIST)."""
    pixels = np.clip(np.rint(mnist * 255), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()
