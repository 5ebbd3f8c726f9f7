"""The image pipeline: uploaded bytes -> decoded image -> MNIST-style 28x28 -> model tensor.

Every caller (serving, training-time normalization, the predictor, the benchmarks) uses
these functions, so the model always sees what it was trained on. Each step is a small
function: :func:`decode_image`, :func:`~digitcore.mnistify.mnistify`, :func:`to_tensor` /
:func:`normalize`, and :func:`preview_png` for showing what the model saw; :func:`preprocess`
runs them all over a list of uploads.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable, Sequence
from typing import NamedTuple, TypeVar

import numpy as np
import torch
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

from digitcore import IMAGE_SIZE, MNIST_MEAN, MNIST_STD, WORKING_SIZE
from digitcore.errors import (
    CorruptImageError,
    ImageTooLargeError,
    NoDigitFoundError,
    UnsupportedImageError,
)
from digitcore.formats import FORMAT_NAMES, SUPPORTED_FORMATS
from digitcore.mnistify import MnistDigit, colour_contrast, mnist_digit
from digitcore.paper import otsu_threshold

DEFAULT_MAX_PIXELS = 40_000_000
DRAFT_SIZE = WORKING_SIZE // 2  # a large JPEG is decoded reduced, to no less than this long side
MNIST_DARK_SHARE = 0.3  # a 28x28 picture this dark or darker is light ink on a dark ground
MIN_INK_LEVELS = 8  # grey levels between a 28x28 picture's darkest and lightest pixel
CLEAN_SHARE = 0.4  # a 28x28 picture this much of it black (under BLACK) has a clean ground,
BLACK = 5  # grey levels: black, to a PNG's or a JPEG's rounding
FAINT_INK = 26  # grey levels: a tenth of full ink, where a digit's box is measured
OFF_CENTRE = 3.0  # px: where a digit's centre of mass this far from the middle (MNIST's: 1.5),
SMALL_DIGIT = 15  # px: or its box this small (MNIST's: 20; MNIST-C's scaled ones: 13-14),
LARGE_DIGIT = 22  # px: but no larger than this, is a digit not placed as MNIST places them
SOLID_INK = 64  # grey levels: a quarter of full ink, where a stroke's solid middle is measured
FILLING = 22  # px: a digit whose solid ink spans this much is larger than MNIST's 20 px box
BANDED_BORDER = 0.5  # share of the border inked: MNIST-C's inverted side bands, not a digit
_CROSS = ndimage.generate_binary_structure(2, 1)  # a pixel and its four neighbours
REREAD_SPAN = 48  # px: a digit smaller than this in the working copy is read again ...
REREAD_GAIN = 1.5  # ... from the full picture when that has this many times the resolution,
REREAD_MARGIN = 1.0  # ... from its box grown by this share of its size on every side

Reading = TypeVar("Reading")  # what a reader of a picture gives (one digit, or a number's)


def decode_image(
    data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, *, gray: bool = False, reduce: bool = True
) -> Image.Image:
    """Decode ``data`` into a loaded, upright PIL image (first frame of animations).

    Checks the declared size against ``max_pixels`` before decoding any pixel data, decodes
    large JPEGs reduced (``draft``: by 2, 4 or 8 in the decoder itself, to no less than
    ``DRAFT_SIZE`` on the longest side; not with ``reduce=False``), and applies the EXIF
    orientation. With ``gray``, a colour JPEG is decoded to its luminance alone (what the
    pipeline uses), skipping the colour conversion.
    """
    if not data:
        raise UnsupportedImageError("the uploaded file is empty")
    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise ImageTooLargeError(
            f"the image is too large to decode safely (the limit is {max_pixels:,} pixels)"
        ) from None
    except Exception as exc:  # UnidentifiedImageError among them: no opener took the file
        raise _unopened(data, exc) from None
    if image.format not in SUPPORTED_FORMATS:
        raise UnsupportedImageError(
            f"image format {image.format} is not supported (use {FORMAT_NAMES})"
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
            _draft(image, gray, reduce)
        image.seek(0)
        image.load()
        image = ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        raise CorruptImageError(
            f"the {image.format} image is corrupt or truncated: {str(exc).strip()}"
        ) from None
    return image


def _unopened(data: bytes, exc: Exception) -> UnsupportedImageError | CorruptImageError:
    """Why Pillow could not open ``data``: not an image it reads, or a damaged one (a
    supported format's signature, and a header cut short or spoiled)."""
    claimed = _signature_of(data)
    if claimed is None and isinstance(exc, UnidentifiedImageError):
        return UnsupportedImageError(
            f"the file is not an image in a supported format ({FORMAT_NAMES})"
        )
    what = f"{claimed} image" if claimed else "image"
    why = "" if isinstance(exc, UnidentifiedImageError) else f" ({str(exc).strip()})"
    return CorruptImageError(
        f"the {what} is corrupt or truncated: its header could not be read{why}"
    )


def _signature_of(data: bytes) -> str | None:
    """The supported format whose signature ``data`` starts with (by Pillow's own check), for
    a file Pillow could not open: a truncated or damaged image rather than some other file."""
    for name in sorted(SUPPORTED_FORMATS & Image.OPEN.keys()):
        accept = Image.OPEN[name][1]
        try:
            if accept is not None and accept(data[:16]):
                return name
        except (struct.error, IndexError, ValueError):  # a check that reads past a short file
            continue
    return None


def upright_size(data: bytes) -> tuple[int, int]:
    """The upload's width and height once turned upright by its EXIF orientation: the pixels
    that boxes on it refer to, whatever size :func:`decode_image` decoded it at."""
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
        orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _draft(image: Image.Image, gray: bool, reduce: bool = True) -> None:
    """Ask the JPEG decoder for a reduced and, with ``gray``, luminance-only decode.

    The decoder scales by 1/2, 1/4 or 1/8 as long as the picture keeps at least
    ``DRAFT_SIZE`` on its longest side: its DCT scaling costs a fraction of decoding in full
    and shrinking afterwards.
    """
    width, height = image.size
    longest = max(width, height)
    target = (width, height)
    if reduce and longest > WORKING_SIZE:
        target = (max(1, width * DRAFT_SIZE // longest), max(1, height * DRAFT_SIZE // longest))
    if gray and image.mode in ("L", "RGB"):
        image.draft("L", target)
    elif reduce and longest > WORKING_SIZE:
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

    MNIST form is MNIST's own format: one grey channel (or grey-looking RGB) of 28x28, light
    ink on a dark background, no transparency. The network was trained on exactly such
    pictures, shifted, scaled, rotated, distorted, noisy, blurred, fogged, striped and crossed
    out, so it reads them as they are better than any re-normalization would: cleaning up a
    28x28 picture that is already what the network expects only loses what it would have
    seen (inverted side bands taken for paper, fog for a shadow). Two things are checked: the
    polarity (the darker side of the brightness split, Otsu, must cover at least
    ``MNIST_DARK_SHARE`` of the picture, which every MNIST digit does, two thirds or more, and
    no dark digit on light paper does) and, on a clean picture, MNIST's placement
    (:func:`_placed_as_mnist`). Anything else, a blank 28x28 picture included, goes through
    :func:`~digitcore.mnistify.mnistify`.
    """
    if image.size != (IMAGE_SIZE, IMAGE_SIZE) or image.mode not in ("L", "RGB"):
        return None
    if "transparency" in image.info:
        return None
    pixels = np.asarray(image.convert("L") if image.mode == "RGB" else image)
    if int(pixels.max()) - int(pixels.min()) < MIN_INK_LEVELS:
        return None
    dark_share = float(np.mean(pixels < otsu_threshold(pixels)))
    if dark_share < MNIST_DARK_SHARE or not _placed_as_mnist(pixels):
        return None
    return pixels.astype(np.float32) / 255


def _placed_as_mnist(pixels: np.ndarray) -> bool:
    """Unless a clean 28x28 digit is small or off-centre: a picture cut or scaled to 28x28
    with the digit as it was drawn, not as MNIST places them (20 px, centred by mass), which
    the network never saw, nor is one that fills the frame (:func:`_fills_the_frame`). Such a
    digit goes through the pipeline. A corrupted one (noise, fog, a line through it) is
    MNIST's own, shifted or shrunk as the network learnt them."""
    ink = pixels.astype(np.float64)
    if np.mean(ink <= BLACK) < CLEAN_SHARE:
        return True
    if _fills_the_frame(ink):
        return False
    rows, cols = np.nonzero(ink >= FAINT_INK)
    if rows.size == 0:
        return True
    extent = max(rows.max() - rows.min(), cols.max() - cols.min()) + 1
    ys, xs = np.indices(ink.shape)
    middle = (IMAGE_SIZE - 1) / 2
    off = np.hypot((ink * ys).sum() / ink.sum() - middle, (ink * xs).sum() / ink.sum() - middle)
    return extent > LARGE_DIGIT or (off <= OFF_CENTRE and extent > SMALL_DIGIT)


def _fills_the_frame(ink: np.ndarray) -> bool:
    """Whether a clean 28x28 picture holds a digit larger than MNIST's: a drawing scaled to
    28x28 whole, its strokes reaching the edges. The largest piece of its solid ink (a quarter
    of full strength, eroded by a pixel: a line through an MNIST digit or a zigzag over it is
    thin and breaks off) spans ``FILLING`` px or more, where MNIST's 20 px digits span 18 at
    most, and most of the border is not ink, as MNIST-C's inverted side bands are."""
    solid = ndimage.grey_erosion(ink, footprint=_CROSS) >= SOLID_INK
    pieces, count = ndimage.label(solid)
    if count == 0:
        return False
    rows, cols = np.nonzero(pieces == np.argmax(np.bincount(pieces.ravel())[1:]) + 1)
    span = max(np.ptp(rows), np.ptp(cols)) + 1
    border = np.concatenate([ink[0], ink[-1], ink[:, 0], ink[:, -1]])
    return bool(span >= FILLING and np.mean(border >= 2 * SOLID_INK) < BANDED_BORDER)


class Prepared(NamedTuple):
    """One upload made ready for the model."""

    tensor: torch.Tensor  # normalized 1x28x28
    mnist: np.ndarray | None  # the 28x28 [0, 1] image the model sees (None: a tensor as sent)
    side_by_side: int = 1  # digits seen in a row: 2 or more is a number, for /read
    aspect: float = 1.0  # the ink's width over its height (MNIST form: not measured)


def preprocess(
    uploads: Sequence[bytes], max_pixels: int = DEFAULT_MAX_PIXELS
) -> list[Prepared | Exception]:
    """Each upload -> its :class:`Prepared` tensor and image.

    The one entry point of the pipeline; one upload is ``preprocess([data])``. A bad upload's
    exception (an :class:`~digitcore.errors.ImageInputError` for a bad image) takes its place
    in the list, so one bad file never costs the others their answers.
    """
    results: list[Prepared | Exception] = []
    for data in uploads:
        try:
            image = decode_image(data, max_pixels, gray=True)
            mnist = mnist_form(image)
            digit = MnistDigit(mnist) if mnist is not None else read_digit(data, image, max_pixels)
        except Exception as exc:
            results.append(exc)
            continue
        prepared = Prepared(to_tensor(digit.mnist), digit.mnist, digit.side_by_side, digit.aspect)
        results.append(prepared)
    return results


def read_digit(data: bytes, image: Image.Image, max_pixels: int) -> MnistDigit:
    """The digit of an upload decoded as ``image``, read again from the full picture when it
    came out small in the working copy.

    Large pictures are decoded reduced and analysed at most ``WORKING_SIZE`` long, where a
    digit written small on a photographed page spans only a few pixels: enough to find it,
    not to read it. Such a digit (under ``REREAD_SPAN`` working pixels, in a picture with more
    resolution than the copy) is read again from its own part of the full picture: its box
    grown by ``REREAD_MARGIN`` of its size on every side, decoded at full size. When that
    finds nothing, the first reading stands.
    """
    digit = with_colour_contrast(mnist_digit, data, image, max_pixels)
    if digit.span >= REREAD_SPAN:
        return digit  # most uploads: the header is not read again
    width, height = upright_size(data)
    if max(width, height) / min(max(image.size), WORKING_SIZE) < REREAD_GAIN:
        return digit
    full = (
        image
        if image.size == (width, height)
        else decode_image(data, max_pixels, gray=True, reduce=False)
    )
    x0, y0, x1, y1 = digit.box
    grow = REREAD_MARGIN * max(x1 - x0, (y1 - y0) * height / width)
    area = (
        max(0, round((x0 - grow) * width)),
        max(0, round((y0 - grow * width / height) * height)),
        min(width, round((x1 + grow) * width)),
        min(height, round((y1 + grow * width / height) * height)),
    )
    try:
        return mnist_digit(full.crop(area))
    except NoDigitFoundError:
        return digit


def with_colour_contrast(
    read: Callable[[Image.Image], Reading], data: bytes, image: Image.Image, max_pixels: int
) -> Reading:
    """``read(image)`` or, where the luminance shows no digit, ``read`` of the picture's
    colour contrast (:func:`~digitcore.mnistify.colour_contrast`: a pen as bright as its
    paper; a JPEG is decoded again in colour for it). Only a picture that would be refused
    pays for the second look; when that finds nothing either, the first refusal stands."""
    try:
        return read(image)
    except NoDigitFoundError as blank:
        coloured = image if image.mode != "L" else decode_image(data, max_pixels)
        contrast = colour_contrast(coloured)
        if contrast is None:
            raise
        try:
            return read(contrast)
        except NoDigitFoundError:
            raise blank from None


def preview_png(mnist: np.ndarray) -> bytes:
    """The 28x28 image the model saw, as PNG bytes (white ink on black, like MNIST)."""
    pixels = np.clip(np.rint(mnist * 255), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()
