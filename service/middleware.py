"""Two small pure-ASGI middlewares: the request-body limit and a clean startup failure.

``BodyLimit`` refuses a body over the limit before the multipart parser sees it: at once when
``Content-Length`` declares too much, and while streaming (chunked uploads, lying headers) as
soon as the bytes received pass the limit, so no unbounded body is ever held or spooled.
Before answering 413 it reads and drops what the client is still sending (up to a few times
the limit): a server that closes a connection with unread data resets it, and the client
would see a broken connection instead of the 413.

``QuietStartupFailure`` makes a :class:`StartupError` raised by the lifespan reach the
server as its one-line message instead of a full traceback.
"""

from __future__ import annotations

import sys

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import UploadTooLarge, error_response

DRAIN_FACTOR = 4  # how much of an over-limit body is read and dropped, in limits


class StartupError(RuntimeError):
    """Startup cannot go on; the message alone says why (for example a bad checkpoint)."""


def human_bytes(count: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size and count % size == 0:
            return f"{count // size} {unit}"
    return f"{count:,} bytes"


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.detail = f"the request body is over the {human_bytes(max_bytes)} limit"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            detail = f"{self.detail} (Content-Length: {declared:,} bytes)"
            await self._refuse(scope, receive, send, detail)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise UploadTooLarge(self.detail)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except UploadTooLarge as exc:
            if started:
                raise
            await self._refuse(scope, receive, send, exc.detail)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, detail: str) -> None:
        drained = 0
        finished = False
        while drained <= DRAIN_FACTOR * self.max_bytes:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client has gone
            drained += len(message.get("body", b""))
            if not message.get("more_body", False):
                finished = True
                break
        headers = None if finished else {"connection": "close"}
        await error_response(413, detail, headers)(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class QuietStartupFailure:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def quiet_send(message: Message) -> None:
            # The framework reports a failed startup from inside its ``except`` block, so the
            # exception being handled is the lifespan's own.
            error = sys.exc_info()[1]
            if message["type"] == "lifespan.startup.failed" and isinstance(error, StartupError):
                message = {**message, "message": str(error)}
            await send(message)

        await self.app(scope, receive, quiet_send)
