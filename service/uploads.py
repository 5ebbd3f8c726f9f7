"""The files of a ``multipart/form-data`` request, read with python-multipart's own parser.

The prediction routes take the :class:`~fastapi.Request` and read the body themselves, as
KServe's REST routes do: the body limit has already bounded it, so each file is collected
as bytes in memory instead of being spooled to a temporary file chunk by chunk (Starlette's
form handling, which cost as much as the rest of a small ``/predict``). The parsing is
python-multipart's :class:`~python_multipart.multipart.MultipartParser`, the parser
Starlette uses; :func:`openapi_form` documents the form in ``/openapi.json`` as FastAPI would.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from service.pipeline import InputRejected


@dataclass
class Part:
    """One part of the form: its field name, its file name (None for a text field), its data."""

    name: str = ""
    filename: str | None = None
    data: bytearray = field(default_factory=bytearray)


def how_to_send(name: str) -> str:
    return f"send it as multipart/form-data field '{name}' (curl -F {name}=@digit.png ...)"


class _Collector:
    """python-multipart's callbacks, collecting each part's headers and data."""

    def __init__(self) -> None:
        self.parts: list[Part] = []
        self.ended = False
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self.on_part_begin,
            "on_part_data": self.on_part_data,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_end": self.on_end,
        }

    def on_end(self) -> None:
        self.ended = True

    def on_part_begin(self) -> None:
        self.parts.append(Part())
        self._disposition = b""

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        self.parts[-1].data += data[start:end]

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = self._header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        part = self.parts[-1]
        part.name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        part.filename = None if filename is None else filename.decode("utf-8", "replace")


def form_parts(body: bytes, content_type: str, expected: str) -> list[Part]:
    """Every part of ``body``; a body that is not a multipart form is rejected (422/400)."""
    kind, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        sent = content_type or "none"
        raise InputRejected(
            422,
            f"the request is not multipart/form-data (Content-Type: {sent}): "
            + how_to_send(expected),
        )
    collector = _Collector()
    try:
        parser = MultipartParser(boundary, collector.callbacks())
        parser.write(body)
        parser.finalize()
    except (FormParserError, ValueError) as exc:
        raise InputRejected(400, f"the multipart/form-data body is malformed: {exc}") from None
    if not collector.ended:
        raise InputRejected(
            400, "the multipart/form-data body is malformed: it ends before its closing boundary"
        )
    return collector.parts


async def uploaded_files(request: Request, name: str) -> list[Part]:
    """The files sent as form field ``name`` (at least one), in order; 422 if there are none."""
    parts = form_parts(await request.body(), request.headers.get("content-type", ""), name)
    named = [part for part in parts if part.name == name]
    if not named:
        raise InputRejected(422, f"multipart field '{name}' is missing: {how_to_send(name)}")
    if any(part.filename is None for part in named):
        raise InputRejected(
            422, f"multipart field '{name}' holds text, not a file: {how_to_send(name)}"
        )
    return named


def openapi_form(name: str, description: str, many: bool = False) -> dict:
    """``openapi_extra`` for a route that reads form field ``name`` (one file, or ``many``)."""
    file = {"type": "string", "contentMediaType": "application/octet-stream"}
    schema = {"type": "array", "items": file} if many else file
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {name: {**schema, "description": description}},
                        "required": [name],
                    }
                }
            },
        }
    }
