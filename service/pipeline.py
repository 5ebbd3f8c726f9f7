"""The one request path: uploaded files in, predictions or per-file rejections out.

Shaped like KServe's model server: :class:`DigitModel` loads the checkpoint once and has
``preprocess`` (bytes -> MNIST-style tensors, :func:`digitcore.preprocess.preprocess`),
``predict`` (one forward pass over the batch) and ``postprocess`` (probabilities -> the
:class:`~service.schemas.Prediction` every client sees). Calling it on a list of
:class:`Upload` runs the three in turn. ``/predict`` and ``/predict/batch`` reach it through
the batcher (:mod:`service.inference`), which hands it the uploads of concurrent requests
together; the command-line predictor and the benchmarks call it directly.
"""

from __future__ import annotations

import base64
import io
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from digitcore import IMAGE_SIZE
from digitcore.checkpoint import Checkpoint, load_model
from digitcore.errors import (
    CorruptImageError,
    ImageInputError,
    ImageTooLargeError,
    NoDigitFoundError,
    TooManyDigitsError,
    UnsupportedImageError,
)
from digitcore.line_reader import LineReading, load_line_reader, pooled
from digitcore.model import Digit, predict_probabilities
from digitcore.preprocess import (
    DEFAULT_MAX_PIXELS,
    Prepared,
    decode_image,
    preprocess,
    preview_png,
    to_tensor,
    upright_size,
    with_colour_contrast,
)
from digitcore.segment import DigitBox, read_digits
from service.schemas import NumberDigit, NumberReading, Prediction

log = logging.getLogger("service")

STATUS_BY_ERROR: tuple[tuple[type[ImageInputError], int], ...] = (
    (UnsupportedImageError, 415),
    (CorruptImageError, 400),
    (ImageTooLargeError, 413),
    (NoDigitFoundError, 422),
    (TooManyDigitsError, 422),
)
MAX_NUMBER_DIGITS = 12  # the longest number /read reads
WIDE_DOUBT = 1.2  # ink this wide for its height, read without confidence: digits that touch


class InputRejected(Exception):
    """An upload that cannot be predicted: the HTTP status and the reason for the client."""

    def __init__(self, status: int, detail: str, cause: BaseException | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.cause = cause  # an unexpected failure behind it (a decoder's bug), to be logged


def rejection(exc: Exception) -> InputRejected:
    """The client-facing rejection for an exception raised while reading a client's image."""
    for error_type, status in STATUS_BY_ERROR:
        if isinstance(exc, error_type):
            return InputRejected(status, str(exc))
    if isinstance(exc, ImageInputError):
        return InputRejected(400, str(exc))
    return InputRejected(400, f"the image could not be decoded ({type(exc).__name__})", exc)


def log_unexpected(outcomes: Sequence[Outcome]) -> None:
    """Log the rejections that an unexpected failure caused; called in the request's own
    context (the batcher's ``on_answers``), so that each line carries its request id."""
    for outcome in outcomes:
        if isinstance(outcome, InputRejected) and outcome.cause is not None:
            cause = outcome.cause
            log.warning("undecodable upload (%s: %s)", type(cause).__name__, cause, exc_info=cause)


@dataclass(frozen=True)
class Upload:
    """One uploaded file, and whether its answer shows the 28x28 image the model saw."""

    data: bytes
    include_image: bool = False


@dataclass(frozen=True)
class Normalized:
    """An image already as the model takes it (a normalized 1x28x28 float32 tensor, e.g. the
    v2 protocol's ``mnist`` model): :meth:`DigitModel.preprocess` passes it through."""

    tensor: torch.Tensor
    include_image: ClassVar[bool] = False


@dataclass(frozen=True)
class NumberUpload:
    """An uploaded picture of a whole number, to be read digit by digit (``POST /read``)."""

    data: bytes
    include_image: ClassVar[bool] = False


Item = Upload | Normalized | NumberUpload
Outcome = Prediction | NumberReading | InputRejected


class ServingDigit(nn.Module):
    """The reference :class:`~digitcore.model.Digit` for inference, its max pooling written as
    elementwise maxima of strided views: the same values (tested), and on CPU a batched
    forward pass about 1.2x as fast at 64 images (42 against 51 µs per image, ``bench.micro``).
    The reference model itself is untouched."""

    def __init__(self, digit: Digit) -> None:
        super().__init__()
        self.digit = digit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        digit = self.digit
        x = digit.conv1(x)
        rows = torch.maximum(x[..., 0::2, :], x[..., 1::2, :])  # conv1's output is 24x24
        x = F.relu(torch.maximum(rows[..., 0::2], rows[..., 1::2]))
        x = F.relu(digit.conv2(x))
        x = F.relu(digit.fc1(x.flatten(1)))
        return F.log_softmax(digit.fc2(x), dim=1)


class DigitModel:
    """The served checkpoint with its pipeline: uploads -> predictions or rejections."""

    def __init__(
        self,
        model: nn.Module,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        checkpoint: Checkpoint | None = None,
        path: str = "(in memory)",
        line_reader: LineReading | None = None,
    ) -> None:
        self.model = model.eval()
        self.line_reader = line_reader  # counts the digits of a number for /read (optional)
        self.serving_model = ServingDigit(model) if type(model) is Digit else model
        self.path = path
        self.device = next(model.parameters()).device
        self.max_pixels = max_pixels
        self.checkpoint = checkpoint or Checkpoint(model.state_dict())
        self.temperature = self.checkpoint.temperature
        self.digit_threshold = self.checkpoint.digit_threshold

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        device: torch.device,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        line_reader: str | os.PathLike[str] | None = None,
    ) -> DigitModel:
        """Load the checkpoint at ``path`` (a :class:`CheckpointError` says what is wrong) and
        the line reader at ``line_reader``, when given (a :class:`LineReaderError`)."""
        model, checkpoint = load_model(path, device)
        reader = load_line_reader(line_reader, device) if line_reader is not None else None
        return cls(model, max_pixels, checkpoint, os.fspath(path), reader)

    def preprocess(self, uploads: Sequence[Upload | Normalized]) -> list[Prepared | InputRejected]:
        """Each upload -> its :class:`~digitcore.preprocess.Prepared` tensor and image, or its
        rejection; a :class:`Normalized` tensor passes through as it is (with no image)."""
        files = [upload.data for upload in uploads if isinstance(upload, Upload)]
        results = iter(preprocess(files, self.max_pixels))
        return [
            Prepared(upload.tensor, None)
            if isinstance(upload, Normalized)
            else (rejection(r) if isinstance(r := next(results), Exception) else r)
            for upload in uploads
        ]

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """One forward pass: N x 1 x 28 x 28 normalized -> N x 10 calibrated probabilities
        (CPU), with the checkpoint's temperature."""
        return predict_probabilities(self.serving_model, images, self.temperature)

    def postprocess(
        self,
        probabilities: list[float],
        view: np.ndarray | None,
        side_by_side: int = 1,
        aspect: float = 1.0,
    ) -> Prediction:
        """One row of probabilities -> the answer; ``view`` becomes ``input_image`` when given.

        The answer is "not a digit" when its confidence is below the checkpoint's threshold,
        or when the picture holds several signs side by side: separate pieces in a row, or
        ink too wide for one digit that the model is not sure of (digits that touch). Then its
        detail points to /read.
        """
        digit = max(range(len(probabilities)), key=probabilities.__getitem__)
        image = base64.b64encode(preview_png(view)).decode("ascii") if view is not None else None
        confidence = probabilities[digit]
        sure = self.is_digit(confidence)
        several = side_by_side > 1 or (not sure and aspect >= WIDE_DOUBT)
        return Prediction.model_construct(
            digit=digit,
            confidence=confidence,
            is_digit=sure and not several,
            probabilities=probabilities,
            input_image=image,
            detail="the picture holds several signs side by side, not one digit: "
            "if it is a number, POST it to /read to read it"
            if several
            else None,
        )

    def is_digit(self, confidence: float) -> bool:
        """Whether an answer this confident is a digit (no threshold: always)."""
        return self.digit_threshold is None or confidence >= self.digit_threshold

    def score(self, forms: list[np.ndarray]) -> np.ndarray:
        """Calibrated probabilities (N x 10) of 28x28 [0, 1] MNIST-form arrays: what the
        number reader asks while it chooses where one digit ends and the next begins."""
        return self.predict(torch.stack([to_tensor(form) for form in forms])).numpy()

    def read(self, upload: NumberUpload) -> NumberReading | InputRejected:
        """The number in a picture: its digits left to right, boxes in the upload's pixels."""

        def digits_in(seen: Image.Image) -> tuple[Image.Image, list[DigitBox]]:
            return seen, read_digits(seen, self.score, MAX_NUMBER_DIGITS, self.line_reader)

        try:
            image = decode_image(upload.data, self.max_pixels, gray=True)
            image, found = with_colour_contrast(digits_in, upload.data, image, self.max_pixels)
        except Exception as exc:
            return rejection(exc)
        width, height = upright_size(upload.data)
        scale_x, scale_y = width / image.width, height / image.height
        rows = self.score([digit.mnist for digit in found])
        digits = []
        for digit, classified in zip(found, rows, strict=True):
            both = classified if digit.line is None else pooled(classified, digit.line)
            probabilities = both.tolist()
            x0, y0, x1, y1 = digit.box
            best = max(range(len(probabilities)), key=probabilities.__getitem__)
            digits.append(
                NumberDigit.model_construct(
                    digit=best,
                    confidence=probabilities[best],
                    is_digit=self.is_digit(probabilities[best]),
                    box=[
                        int(x0 * scale_x),
                        int(y0 * scale_y),
                        min(width, round(x1 * scale_x)),
                        min(height, round(y1 * scale_y)),
                    ],
                )
            )
        number = "".join(str(digit.digit) for digit in digits)
        return NumberReading.model_construct(number=number, digits=digits)

    def __call__(self, uploads: Sequence[Item]) -> list[Outcome]:
        """Answer each upload in order: pictures of numbers are read one by one, the single
        digits preprocessed and predicted together in one forward pass."""
        reads = {i: self.read(u) for i, u in enumerate(uploads) if isinstance(u, NumberUpload)}
        singles = [upload for i, upload in enumerate(uploads) if i not in reads]
        predicted = iter(self._predicted(singles))
        return [reads[i] if i in reads else next(predicted) for i in range(len(uploads))]

    def _predicted(self, uploads: Sequence[Upload | Normalized]) -> list[Outcome]:
        prepared = self.preprocess(uploads)
        good = [item for item in prepared if not isinstance(item, InputRejected)]
        rows = self.predict(torch.stack([item.tensor for item in good])).tolist() if good else []
        answers = iter(rows)
        return [
            item
            if isinstance(item, InputRejected)
            else self.postprocess(
                next(answers),
                item.mnist if upload.include_image else None,
                item.side_by_side,
                item.aspect,
            )
            for upload, item in zip(uploads, prepared, strict=True)
        ]

    def warm_up(self, batch_sizes: Sequence[int]) -> None:
        """Run each batch size once, so that the first requests pay no one-off setup."""
        for size in sorted(set(batch_sizes)):
            self.predict(torch.zeros(size, 1, IMAGE_SIZE, IMAGE_SIZE))
        self([Upload(_sample_png(), include_image=True)])


def _sample_png() -> bytes:
    """A small white-on-black stroke: enough to run every step of the pipeline once."""
    pixels = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    pixels[5:23, 12:16] = 255
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()
