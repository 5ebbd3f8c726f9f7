"""The quick way to the file in a ``multipart/form-data`` body that holds nothing else.

FastAPI parses forms with python-multipart through Starlette's streaming parser: general, and
for a small upload about as costly as the rest of a ``/predict`` request together (spooled
temporary file, callbacks per chunk, validation). :func:`sole_file` reads the common upload,
``curl -F file=@digit.png``, with a few ``bytes.find`` calls, and answers ``None`` whenever the
body is anything else (more parts, a text field, a preamble, malformed), so that the caller
falls back to the full parser and every unusual request is handled exactly as before.
"""

from __future__ import annotations

import re

from python_multipart.multipart import parse_options_header

CRLF = b"\r\n"
# The shapes curl, browsers and httpx send, read without the general header parser.
SIMPLE_TYPE = re.compile(rb"multipart/form-data; ?boundary=([0-9A-Za-z'()+_,./:=?-]{1,70})")
SIMPLE_DISPOSITION = re.compile(rb'form-data; ?name="([^"\\]*)"; ?filename="([^"\\]+)"')


def _options(header: bytes, simple: re.Pattern) -> tuple[bytes, dict[bytes, bytes]]:
    """``parse_options_header(header)`` (what Starlette uses), quicker for the usual shapes."""
    match = simple.fullmatch(header)
    if match is None:
        return parse_options_header(header)
    if simple is SIMPLE_TYPE:
        return b"multipart/form-data", {b"boundary": match[1]}
    return b"form-data", {b"name": match[1], b"filename": match[2]}


def sole_file(body: bytes, content_type: str | None, field: str) -> bytes | None:
    """The content of file field ``field`` when it is the body's only part, else ``None``."""
    if not content_type:
        return None
    kind, params = _options(content_type.encode("latin-1"), SIMPLE_TYPE)
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        return None
    delimiter = b"--" + boundary
    if not body.startswith(delimiter + CRLF):
        return None
    headers_start = len(delimiter) + 2
    headers_end = body.find(CRLF + CRLF, headers_start)
    if headers_end < 0:
        return None
    content_start = headers_end + 4
    content_end = body.find(CRLF + delimiter, content_start)
    closing = content_end + 2 + len(delimiter)
    if content_end < 0 or body[closing : closing + 2] != b"--":
        return None  # not found, or another part follows
    disposition = None
    for line in body[headers_start:headers_end].split(CRLF):
        name, colon, value = line.partition(b":")
        if not colon:
            return None
        if name.strip().lower() == b"content-disposition":
            disposition = value.strip()
    if disposition is None:
        return None
    kind, options = _options(disposition, SIMPLE_DISPOSITION)
    if kind != b"form-data" or options.get(b"name") != field.encode():
        return None
    if not options.get(b"filename"):
        return None  # a text field, or a file without a name: FastAPI's parser decides
    return body[content_start:content_end]
