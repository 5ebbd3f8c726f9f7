"""Reading a form's files with python-multipart: the same parts as Starlette's form parser."""

from __future__ import annotations

import httpx
import pytest
from starlette.datastructures import Headers, UploadFile
from starlette.formparsers import MultiPartParser

from service.pipeline import InputRejected
from service.uploads import form_parts, openapi_form

pytestmark = pytest.mark.anyio

PNG = b"\x89PNG\r\n\x1a\n not really a png, but bytes with \r\n and -- inside"


def encoded(**kwargs) -> tuple[bytes, str]:
    """The body and Content-Type httpx sends for ``kwargs`` (files=..., data=...)."""
    request = httpx.Request("POST", "http://test/predict", **kwargs)
    return request.read(), request.headers["content-type"]


def handmade(boundary: str, parts: list[tuple[str, bytes]], preamble: bytes = b"") -> bytes:
    body = preamble
    for disposition, content in parts:
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        body += b"Content-Type: application/octet-stream\r\n\r\n" + content + b"\r\n"
    return body + f"--{boundary}--\r\n".encode()


def forms() -> dict[str, tuple[bytes, str]]:
    """Well-formed multipart bodies of every shape clients send."""
    curl = "------------------------d74496d66958873e"
    one = [('form-data; name="file"; filename="digit.png"', PNG)]
    return {
        "httpx": encoded(files={"file": ("digit.png", PNG, "image/png")}),
        "curl": (handmade(curl, one), f"multipart/form-data; boundary={curl}"),
        "quoted-boundary": (handmade("a b", one), 'multipart/form-data; boundary="a b"'),
        "empty-file": encoded(files={"file": ("e.png", b"", "image/png")}),
        "extra-field": encoded(files={"file": ("d.png", PNG)}, data={"note": "x"}),
        "two-files": encoded(files=[("file", ("a.png", PNG)), ("file", ("b.png", PNG))]),
        "text-part": encoded(files={"file": (None, b"not a file")}),
        "other-name": encoded(files={"image": ("d.png", PNG)}),
        "unicode-name": encoded(files={"file": ("zähler ½.png", PNG)}),
    }


async def starlette_parts(body: bytes, content_type: str) -> list[tuple[str, str | None, bytes]]:
    async def stream():
        yield body

    form = await MultiPartParser(Headers({"content-type": content_type}), stream()).parse()
    parts = []
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            parts.append((name, value.filename, await value.read()))
        else:
            parts.append((name, None, value.encode()))
    return parts


@pytest.mark.parametrize("name", list(forms()))
async def test_parts_are_those_starlette_reads(name):
    body, content_type = forms()[name]
    ours = [(p.name, p.filename, bytes(p.data)) for p in form_parts(body, content_type, "file")]
    assert ours == await starlette_parts(body, content_type)


@pytest.mark.parametrize(
    ("body", "content_type", "status", "says"),
    [
        (PNG, "image/png", 422, "not multipart/form-data (Content-Type: image/png)"),
        (b"a=1", "application/x-www-form-urlencoded", 422, "not multipart/form-data"),
        (b"", "", 422, "Content-Type: none"),
        (b"--b\r\n", "multipart/form-data", 422, "not multipart/form-data"),  # no boundary
        (b"garbage without the boundary", "multipart/form-data; boundary=b", 400, "malformed"),
        (
            handmade("b", [('form-data; name="file"', PNG)])[:-9],
            "multipart/form-data; boundary=b",
            400,
            "malformed",
        ),
        (
            handmade("b", [('form-data; name="file"; filename="d.png"', PNG)], b"hello\r\n"),
            "multipart/form-data; boundary=b",
            400,
            "malformed",
        ),
    ],
    ids=["image-body", "url-encoded", "nothing", "no-boundary", "garbage", "truncated", "preamble"],
)
def test_what_is_not_a_form_is_rejected_with_the_reason(body, content_type, status, says):
    with pytest.raises(InputRejected) as caught:
        form_parts(body, content_type, "file")
    assert caught.value.status == status
    assert says in caught.value.detail
    if status == 422:
        assert "curl -F file=@digit.png" in caught.value.detail


def test_openapi_form_declares_one_file_or_many():
    one = openapi_form("file", "the image")["requestBody"]["content"]["multipart/form-data"]
    many = openapi_form("files", "the images", many=True)["requestBody"]["content"]
    assert one["schema"]["required"] == ["file"]
    assert one["schema"]["properties"]["file"]["contentMediaType"] == "application/octet-stream"
    assert many["multipart/form-data"]["schema"]["properties"]["files"]["type"] == "array"
