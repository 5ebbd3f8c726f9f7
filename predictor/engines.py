"""Where the predictions come from: the engine interface, and a running service over HTTP.

An engine takes a chunk of ``(name, bytes)`` and gives, per item, a :class:`Prediction` (or,
reading numbers, a :class:`Reading`) or the reason it failed. :class:`RemoteEngine` sends the
chunk as one ``POST /predict/batch`` (each picture to ``POST /read``);
the service runs the shared pipeline, as :class:`predictor.local.LocalEngine` does here, so
the answers agree. This module does not import torch, so ``--url`` starts quickly.
"""

from __future__ import annotations

import base64
import io
import mimetypes
from dataclasses import dataclass
from typing import Protocol

import httpx
import numpy as np
from PIL import Image


@dataclass
class Prediction:
    digit: int
    confidence: float
    probabilities: list[float]
    model_view: np.ndarray | None = None  # the 28x28 [0, 1] image the model saw, when asked
    is_digit: bool = True  # false: the picture does not look like one digit
    detail: str | None = None  # why not, when it is not the confidence (several digits)


@dataclass
class Reading:
    """A number read from one picture (``--read``): the digits left to right, each a dict with
    ``digit``, ``confidence``, ``is_digit`` and ``box`` as ``POST /read`` answers them."""

    number: str
    digits: list[dict]


Answer = Prediction | Reading | str  # a prediction or a reading, or why there is none


class EngineError(RuntimeError):
    """The engine cannot run at all (no model, no service); nothing can be predicted."""


class Engine(Protocol):
    description: str  # which model, where: for the summary

    def predict(self, items: list[tuple[str, bytes]], with_images: bool) -> list[Answer]: ...

    def read(self, items: list[tuple[str, bytes]]) -> list[Answer]: ...

    def close(self) -> None: ...


def describe_model(metadata: dict, architecture: str, sha256: str) -> str:
    text = f"{architecture}, sha256 {sha256[:12]}"
    accuracy = metadata.get("test_accuracy")
    if isinstance(accuracy, int | float):
        text += f", test accuracy {100 * accuracy:.2f}%"
    return text


class RemoteEngine:
    """A running service: one ``POST /predict/batch`` per chunk, split when it is too big."""

    def __init__(self, url: str, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.client = httpx.Client(base_url=self.url, timeout=timeout)
        try:
            ready = self.client.get("/readyz")
            if ready.status_code != 200:
                raise EngineError(f"service at {self.url} is not ready ({_detail(ready)})")
            info = self.client.get("/model").json()
        except httpx.HTTPError as exc:
            self.client.close()
            raise EngineError(f"cannot reach the service at {self.url}: {exc}") from None
        except (ValueError, AttributeError) as exc:
            self.client.close()
            raise EngineError(f"{self.url} does not answer like the digit service: {exc}") from None
        summary = describe_model(
            info.get("metadata") or {}, str(info.get("architecture")), str(info.get("sha256", ""))
        )
        self.description = f"service {self.url} ({summary}) on {info.get('device')}"

    def predict(self, items: list[tuple[str, bytes]], with_images: bool) -> list[Answer]:
        if not items:
            return []
        try:
            response = self.client.post(
                "/predict/batch",
                params={"include_image": "true"} if with_images else None,
                files=[("files", (name, data, _content_type(name))) for name, data in items],
            )
        except httpx.HTTPError as exc:
            return [f"service request failed: {type(exc).__name__}: {exc}"] * len(items)
        if response.status_code == 413 and len(items) > 1:
            half = len(items) // 2
            return self.predict(items[:half], with_images) + self.predict(items[half:], with_images)
        if response.status_code != 200:
            return [f"service answered {response.status_code}: {_detail(response)}"] * len(items)
        try:
            results = sorted(response.json()["results"], key=lambda r: r["index"])
            if len(results) != len(items):
                raise ValueError(f"{len(results)} results for {len(items)} files")
            return [_answer(result) for result in results]
        except (ValueError, KeyError, TypeError, OSError) as exc:
            return [f"unexpected answer from the service: {exc!r}"] * len(items)

    def read(self, items: list[tuple[str, bytes]]) -> list[Answer]:
        """One ``POST /read`` per picture (a reading is not batched)."""
        return [self._read_one(name, data) for name, data in items]

    def _read_one(self, name: str, data: bytes) -> Answer:
        try:
            response = self.client.post("/read", files={"file": (name, data, _content_type(name))})
        except httpx.HTTPError as exc:
            return f"service request failed: {type(exc).__name__}: {exc}"
        if response.status_code != 200:
            return f"service answered {response.status_code}: {_detail(response)}"
        try:
            return reading_from(response.json())
        except (ValueError, KeyError, TypeError) as exc:
            return f"unexpected answer from the service: {exc!r}"

    def close(self) -> None:
        self.client.close()


def prediction_from(answer: dict) -> Prediction:
    """The service's prediction JSON (``digit``, ``confidence``, ``is_digit``,
    ``probabilities``, ``input_image``), as one :class:`Prediction`; both engines read it."""
    view = None
    if answer.get("input_image"):
        png = base64.b64decode(answer["input_image"])
        view = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float32) / 255
    return Prediction(
        int(answer["digit"]),
        float(answer["confidence"]),
        [float(p) for p in answer["probabilities"]],
        view,
        bool(answer.get("is_digit", True)),
        answer.get("detail"),
    )


def reading_from(answer: dict) -> Reading:
    """The service's ``/read`` JSON as a :class:`Reading`; both engines read it."""
    keys = ("digit", "confidence", "is_digit", "box")
    return Reading(str(answer["number"]), [{k: d[k] for k in keys} for d in answer["digits"]])


def _answer(result: dict) -> Answer:
    prediction = result.get("prediction")
    if result.get("status") != 200 or not prediction:
        return str(result.get("error") or f"service status {result.get('status')}")
    return prediction_from(prediction)


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json()["detail"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200] or response.reason_phrase


def _content_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"
