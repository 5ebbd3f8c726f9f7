"""Response models: the JSON shapes of SPEC section 3, with examples for /docs."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from digitcore.formats import FORMAT_NAMES

_PROBABILITIES = [0.0001, 0.0002, 0.0009, 0.0003, 0.0001, 0.0002, 0.0, 0.9978, 0.0001, 0.0003]


class Prediction(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "digit": 7,
                    "confidence": 0.9978,
                    "is_digit": True,
                    "probabilities": _PROBABILITIES,
                    "input_image": None,
                    "detail": None,
                }
            ]
        }
    )

    digit: int = Field(ge=0, le=9, description="the predicted digit")
    confidence: float = Field(
        ge=0,
        le=1,
        description="calibrated softmax probability of `digit`: of answers given with "
        "confidence c, about a share c is right",
    )
    is_digit: bool = Field(
        True,
        description="false when the picture does not look like one handwritten digit (a "
        "letter, a word, a drawing, several digits): `confidence` is then below the model's "
        "threshold and `digit` means little",
    )
    probabilities: list[float] = Field(
        min_length=10, max_length=10, description="calibrated probability of each digit 0-9"
    )
    input_image: str | None = Field(
        None,
        description="with ?include_image=true: the 28x28 image the model saw, as base64 PNG "
        "(white ink on black, like MNIST); null otherwise",
    )
    detail: str | None = Field(
        None,
        description="why `is_digit` is false when the reason is not the confidence: a picture "
        "of several digits side by side, which `POST /read` reads as a number",
    )


class NumberDigit(BaseModel):
    digit: int = Field(ge=0, le=9, description="the digit read")
    confidence: float = Field(ge=0, le=1, description="calibrated probability of `digit`")
    is_digit: bool = Field(
        description="false when this part of the picture does not look like a digit"
    )
    box: list[int] = Field(
        min_length=4,
        max_length=4,
        description="where the digit is: [x0, y0, x1, y1] in the uploaded image's pixels "
        "(after its EXIF orientation), x1 and y1 exclusive",
    )


class NumberReading(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "number": "4096",
                    "digits": [
                        {"digit": d, "confidence": c, "is_digit": True, "box": box}
                        for d, c, box in (
                            (4, 0.998, [12, 30, 58, 101]),
                            (0, 0.995, [66, 28, 118, 99]),
                            (9, 0.991, [127, 25, 170, 97]),
                            (6, 0.996, [181, 27, 229, 98]),
                        )
                    ],
                }
            ]
        }
    )

    number: str = Field(description="the digits read, left to right", examples=["4096"])
    digits: list[NumberDigit] = Field(
        min_length=1, max_length=12, description="each digit, left to right"
    )


class BatchItem(BaseModel):
    index: int = Field(ge=0, description="position of the file in the request")
    filename: str | None = Field(description="the file's name as sent by the client")
    status: int = Field(description="HTTP status this file alone would have got from /predict")
    prediction: Prediction | None = Field(description="the prediction when status is 200")
    error: str | None = Field(description="what was wrong with the file when status is not 200")


class BatchResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "results": [
                        {
                            "index": 0,
                            "filename": "seven.png",
                            "status": 200,
                            "prediction": {
                                "digit": 7,
                                "confidence": 0.9978,
                                "is_digit": True,
                                "probabilities": _PROBABILITIES,
                                "input_image": None,
                            },
                            "error": None,
                        },
                        {
                            "index": 1,
                            "filename": "notes.txt",
                            "status": 415,
                            "prediction": None,
                            "error": "the file is not an image in a supported format "
                            f"({FORMAT_NAMES})",
                        },
                    ]
                }
            ]
        }
    )

    results: list[BatchItem] = Field(description="one result per uploaded file, in order")


class ModelInfo(BaseModel):
    model_config = ConfigDict(
        protected_namespaces=(),
        json_schema_extra={
            "examples": [
                {
                    "architecture": "Digit",
                    "parameters": 1007590,
                    "sha256": "3f5a0c...e91b",
                    "path": "models/mnist_cnn.pth",
                    "device": "cpu",
                    "epoch": 5,
                    "test_accuracy": 0.9912,
                    "epochs": 5,
                    "temperature": 1.21,
                    "digit_threshold": 0.82,
                    "calibration_error": 0.0021,
                    "corruption_calibration_error": 0.018,
                    "created": "2026-01-01T12:00:00+00:00",
                    "loaded_at": "2026-01-02T08:30:00+00:00",
                    "metadata": {"architecture": "Digit", "test_accuracy": 0.9912, "epochs": 5},
                    "line_reader": {
                        "path": "models/mnist_lines.pth",
                        "sha256": "9b01d2...77c4",
                        "metadata": {"validation_exact": 0.93, "rows": 30000},
                    },
                }
            ]
        },
    )

    architecture: str = Field(description="model architecture name")
    parameters: int = Field(description="number of trainable parameters")
    sha256: str = Field(description="sha256 of the checkpoint file")
    path: str = Field(description="checkpoint file the model was loaded from")
    device: str = Field(description="device the model runs on")
    epoch: int = Field(description="epoch recorded in the checkpoint")
    test_accuracy: float | None = Field(None, description="MNIST test accuracy at save time")
    epochs: int | None = Field(None, description="epochs trained")
    temperature: float = Field(
        1.0, description="T of the calibrated softmax(logits / T) the answers use (1: none)"
    )
    digit_threshold: float | None = Field(
        None,
        description="answers with a lower confidence have `is_digit: false` (null: every "
        "answer is a digit)",
    )
    calibration_error: float | None = Field(
        None, description="expected calibration error (15 bins) on MNIST test, calibrated"
    )
    corruption_calibration_error: float | None = Field(
        None, description="the same, averaged over the corruption suite (trainer.corruptions)"
    )
    created: str | None = Field(None, description="when the checkpoint was written (ISO 8601)")
    loaded_at: str | None = Field(None, description="when this process loaded it (ISO 8601)")
    metadata: dict[str, Any] = Field(description="the training metadata stored in the checkpoint")
    line_reader: dict[str, Any] | None = Field(
        None,
        description="the line reader that counts a number's digits for /read: its path, sha256 "
        "and training metadata (null: none, /read cuts by the digit model alone)",
    )


class Health(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})

    status: str = Field(description="always `ok` while the process serves requests")


class Ready(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ready"}]})

    status: str = Field(description="`ready` once the model is loaded")


class ReloadResult(BaseModel):
    model_config = ConfigDict(
        protected_namespaces=(),
        json_schema_extra={
            "examples": [{"status": "reloaded", "sha256": "3f5a0c...e91b", "workers": 1}]
        },
    )

    status: str = Field(
        description="`reloaded` (this process serves the new model now) or `reloading` (it "
        "was checked here and every worker is being replaced in turn)"
    )
    sha256: str = Field(description="sha256 of the checkpoint now (or soon) served")
    workers: int = Field(description="worker processes that serve it")


class ErrorDetail(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"detail": "the uploaded image is corrupt or truncated"}]}
    )

    detail: str = Field(description="what was wrong, for a person to read")
